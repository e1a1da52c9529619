"""The seed tutorial's code cells, run verbatim in order, against real worker processes."""
import os
import re
import shutil
import socket
import subprocess

import pytest
from conftest import DATA, stop, wait_for

TUTORIAL = os.path.join(DATA, "workqueue-tutorial.txt")


def code_cells(text):
    """The code after each 'In [ ]:' marker (its spaces may be non-breaking).

    A cell may hold blank lines, and the text export sometimes runs a heading into the line above,
    so a cell is its first block plus each following block while the whole still compiles, cut back
    to the longest prefix that compiles.
    """
    cells = []
    for chunk in re.split(r"^In[\s\u00a0]\[[\s\u00a0]\]:\n", text, flags=re.M)[1:]:
        blocks = chunk.split("\n\n")
        lines = _compilable_prefix(blocks[0].split("\n"))
        for block in blocks[1:]:
            if not block.strip() or _compiles(lines + [""] + block.split("\n")) is False:
                break
            lines = lines + [""] + block.split("\n")
        cells.append("\n".join(lines))
    return cells


def _compiles(lines):
    try:
        compile("\n".join(lines), "<tutorial>", "exec")
        return True
    except SyntaxError:
        return False


def _compilable_prefix(lines):
    while lines and not _compiles(lines):
        lines = lines[:-1]
    if not lines:
        raise ValueError("a tutorial cell with no valid code")
    return lines


def cells_between(cells_text, start_marker, end_marker):
    text = open(TUTORIAL).read()
    start = text.index(start_marker)
    end = text.index(end_marker, start) if end_marker else len(text)
    return code_cells(text[start:end])


@pytest.fixture
def tutorial_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as ZeroMQ binds
        try:
            s.bind(("", port))
            return True
        except OSError:
            return False


KILLALL = """#!/bin/sh
# The tutorial's "killall work_queue_worker", limited to the tutorial's own workers: the real one
# would stop every worker on the machine, other tests' and benchmarks' (Parsl's, seen failing so).
if [ "$1" = work_queue_worker ] && [ $# -eq 1 ]; then
    exec pkill -f "work_queue_worker localhost 9123"
fi
exec {real} "$@"
"""


@pytest.fixture
def namespace(tutorial_dir, capsys, monkeypatch):
    if not port_free(9123):
        pytest.skip("the tutorial's port 9123 is in use on this machine")
    shim = tutorial_dir / "shim"
    shim.mkdir()
    (shim / "killall").write_text(KILLALL.format(real=shutil.which("killall") or "false"))
    (shim / "killall").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ.get('PATH', '')}")
    ns = {}
    yield ns
    q = ns.get("q")
    if q is not None:
        q.close()
    subprocess.run(["pkill", "-f", "work_queue_worker localhost 9123"], check=False)


def run_cells(cells, ns):
    for cell in cells:
        exec(compile(cell, "<tutorial>", "exec"), ns)


def test_tutorial_master_worker_and_local_workers(namespace, tutorial_dir, capsys):
    if shutil.which("work_queue_worker") is None:
        pytest.skip("work_queue_worker is not on PATH: install the package first")
    ns = namespace
    master = cells_between(None, "Installation and Import", "Submit a Worker")
    observe = cells_between(None, "Observing the Results", "Beyond the Basics")
    local = cells_between(None, "1. Local Master and Worker", "2. Master on a Remote Head Node")
    same_node = cells_between(None, "2. Master on a Remote Head Node", "3. Master on a Remote Head Node")

    run_cells(master[:-1], ns)  # import, port, WorkQueue(port), files, rev, submit three tasks
    out = capsys.readouterr().out
    assert "Congrats! WorkQueue is properly installed :)" in out
    assert "9123" in out
    assert out.count("Submitted task") == 3
    assert ns["q"].empty() is False

    # "open up a terminal and run: work_queue_worker localhost 9123"
    worker = subprocess.Popen(["work_queue_worker", "localhost", "9123"])
    try:
        run_cells(master[-1:], ns)  # the wait loop
        run_cells(observe, ns)
    finally:
        assert stop(worker) == 0, "the worker did not exit cleanly on SIGTERM"
    out = capsys.readouterr().out
    assert "all tasks complete!" in out
    assert out.count("(return code 0)") == 3
    for i in range(3):
        assert f".{i} rebmun elif si sihT" in out
        assert open(f"file{i}.txt.reversed").read() == f".{i} rebmun elif si sihT"

    # Section 1: tr, a worker started with os.popen, stopped with killall
    run_cells(local, ns)
    out = capsys.readouterr().out
    assert out.count("(return code 0)") == 3
    for i in range(3):
        assert f"THIS IS FILE NUMBER {i}." in out
    assert wait_for(lambda: subprocess.run(["pgrep", "-f", "work_queue_worker localhost 9123"],
                                           capture_output=True).returncode != 0, timeout=10), \
        "killall work_queue_worker left a worker running"

    # Section 2: the same on one node, words on their own lines
    run_cells(same_node, ns)
    out = capsys.readouterr().out
    assert out.count("(return code 0)") == 3
    for i in range(3):
        assert open(f"file{i}.txt.newlines").read() == f"This\nis\nfile\nnumber\n{i}."


def test_tutorial_section4_three_sleeps_on_several_workers(namespace, tutorial_dir, capsys):
    ns = namespace
    setup = cells_between(None, "Installation and Import", "When working at the command line")
    tr = cells_between(None, "First, run the following code to find the path to tr.", "Now, let's define")
    section4 = cells_between(None, "4. Master on a Remote Head Node, Multiple Workers", "Parsl and Coffea")
    submit, submit_workers, wait_loop, observe = section4
    assert "_submit_workers" in submit_workers
    run_cells(setup[:4], ns)  # import, port, WorkQueue(port), input files
    run_cells(tr, ns)
    run_cells([submit], ns)
    from workqueue import local_workers
    # instead of '{cluster}_submit_workers ... 10': three local workers
    with local_workers(3, 9123):
        run_cells([wait_loop, observe], ns)
    out = capsys.readouterr().out
    elapsed = float(re.search(r"all tasks complete in ([\d.]+) seconds", out).group(1))
    assert 5.0 <= elapsed < 10.0, f"three 5 s tasks on three workers took {elapsed} s"
    for i in range(3):
        assert open(f"file{i}.txt.special").read() == f"Th1s 1s f1l3 n-mb3r {i}."
