"""Small files inside the task and result messages (inline_files.py): which inputs go inline, that
the worker writes them only inside the sandbox, that outputs land where the task said and nowhere
else, and that coprocess sandboxes are reused empty."""
import os
import stat

import pytest
from conftest import drain
from test_worker_guards import everything_below, task, workspace  # noqa: F401 (a fixture)

import workqueue as wq
from workqueue.constants import Result
from workqueue.data import inline_files
from workqueue.data.cache import Cache
from workqueue.data.outputs import land_inline
from workqueue.files import File
from workqueue.wire import protocol
from workqueue.worker.sandbox import Sandbox, SandboxDirs, UnsafeName

SMALL = protocol.INLINE_FILE_MAX


# -- the master: which inputs go inline --------------------------------------------------------
def test_only_small_uncached_local_files_and_buffers_go_inline(tmp_path):
    small, big = tmp_path / "small.sh", tmp_path / "big.bin"
    small.write_bytes(b"#!/bin/sh\necho hi\n")
    small.chmod(0o750)
    big.write_bytes(bytes(SMALL + 1))
    budget = inline_files.Budget()
    assert inline_files.read_input(File(str(small), "run.sh"), budget) == ["run.sh", 0o750, small.read_bytes()]
    assert inline_files.read_input(File(None, "buf", data=b"abc"), budget) == ["buf", 0o644, b"abc"]
    for f in (File(str(small), cache=True), File(str(big)), File(str(tmp_path)), File(str(tmp_path / "gone")),
              File.temp(), File.url("http://localhost/x"), File.untar(str(small))):
        assert inline_files.read_input(f, budget) is None, f


def test_a_message_carries_at_most_its_budget(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(bytes(SMALL))
    budget = inline_files.Budget()
    taken = [inline_files.read_input(File(str(f), f"f{i}"), budget) for i in range(protocol.INLINE_FILES_MAX)]
    fitting = protocol.INLINE_BYTES_MAX // SMALL
    assert all(taken[:fitting]) and not any(taken[fitting:])
    assert protocol.decode(protocol.encode("task", [b""], task_id=1, files=taken[:fitting]))["files"] == taken[:fitting]


# -- the worker: inline inputs only inside the sandbox -----------------------------------------
def test_inline_inputs_are_written_with_their_mode_beside_linked_ones(workspace):  # noqa: F811
    cache = Cache(str(workspace / "cache"))
    sandbox = Sandbox(SandboxDirs(str(workspace)), task(files=[["run.sh", 0o750, b"#!/bin/sh\n"], ["d/map", 0o600, b"m"]]))
    assert sandbox.stage(cache) is None
    assert open(os.path.join(sandbox.dir, "d", "map"), "rb").read() == b"m"
    assert stat.S_IMODE(os.stat(os.path.join(sandbox.dir, "run.sh")).st_mode) == 0o750


def test_an_inline_input_given_twice_or_through_a_symlink_is_refused(workspace, tmp_path):  # noqa: F811
    cache = Cache(str(workspace / "cache"))
    twice = Sandbox(SandboxDirs(str(workspace)), task(files=[["a", 0o644, b"1"], ["a", 0o644, b"2"]]))
    with pytest.raises(ValueError, match="given twice"):
        twice.stage(cache)
    outside = tmp_path / "outside"
    outside.mkdir()
    sandbox = Sandbox(SandboxDirs(str(workspace)), task(2, files=[["link/x", 0o644, b"x"]]))
    os.symlink(outside, os.path.join(sandbox.dir, "link"))
    with pytest.raises(UnsafeName, match="outside the sandbox"):
        sandbox.stage(cache)
    assert os.listdir(outside) == []


def test_coprocess_sandboxes_are_reused_empty_under_the_next_calls_name(workspace):  # noqa: F811
    dirs = SandboxDirs(str(workspace))
    first = dirs.take(1, coprocess_name=True)
    open(os.path.join(first, "result"), "w").write("r")
    inode = os.stat(first).st_ino
    dirs.give_back(first)
    assert not os.path.exists(first)
    os.makedirs(os.path.join(workspace, "t.2", "left"))  # a stale directory under the next name
    second = dirs.take(2, coprocess_name=True)
    assert second == os.path.join(workspace, "t.2") and os.listdir(second) == []
    third = dirs.take(3, coprocess_name=True)
    assert os.stat(third).st_ino == inode and os.listdir(third) == []
    dirs.give_back(third, reuse=False)  # a call that was stopped may still write there: removed
    assert os.listdir(workspace) == ["t.2"]


# -- the master: inline outputs where the task said --------------------------------------------
class Record:
    def __init__(self, outputs):
        self.task_id = 7
        self.spec = {"outputs": outputs}
        self.incoming = {}


def test_inline_outputs_land_in_place_replacing_a_symlink_and_never_elsewhere(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "out.txt").symlink_to(victim)
    record = Record([File(str(tmp_path / "out.txt"), "out.txt"), File(str(tmp_path / "dir"), "dir")])
    written, failed, undeclared = land_inline(record, [["out.txt", 0o755, b"new"], ["dir/sub/x", 0o644, b"x"],
                                                      ["other", 0o644, b"o"], ["dir/../../y", 0o644, b"y"]])
    assert (written, failed, undeclared) == (4, [], ["other", "dir/../../y"])
    assert victim.read_text() == "keep"
    assert not (tmp_path / "out.txt").is_symlink() and (tmp_path / "out.txt").read_bytes() == b"new"
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o755
    assert (tmp_path / "dir" / "sub" / "x").read_bytes() == b"x"
    assert not (tmp_path / "other").exists() and not (tmp_path.parent / "y").exists()


# -- end to end ----------------------------------------------------------------------------------
def test_small_and_large_files_both_ways_on_a_real_worker(manager, worker, tmp_path):
    script, big = tmp_path / "run.sh", tmp_path / "big.bin"
    script.write_text("#!/bin/sh\ncat msg > small.out && cp big.bin big.out && echo done\n")
    script.chmod(0o755)
    big.write_bytes(os.urandom(SMALL * 2))
    t = wq.Task("./run.sh", inputs=[str(script), str(big), File(None, "msg", data=b"hello")],
                outputs=[str(tmp_path / "small.out"), str(tmp_path / "big.out")])
    manager.submit(t)
    drain(manager)
    assert t.result == Result.SUCCESS, t.output
    assert t.output == "done\n"
    assert (tmp_path / "small.out").read_bytes() == b"hello"
    assert (tmp_path / "big.out").read_bytes() == big.read_bytes()


# -- coprocess sandboxes in memory -------------------------------------------------------------
def test_a_call_that_needs_room_gets_its_sandbox_on_disk_behind_a_symlink(workspace, tmp_path):  # noqa: F811
    from test_worker_guards import cached_file

    from workqueue.worker.sandbox import CACHED_IN_MEMORY_MAX, ROOM_IN_MEMORY_MAX
    cache = Cache(str(workspace / "cache"))
    big = cached_file(cache, bytes(CACHED_IN_MEMORY_MAX + 1))
    small = cached_file(cache, b"small")
    dirs = SandboxDirs(str(workspace))
    dirs.coprocess_root = str(tmp_path / "memory")
    os.mkdir(dirs.coprocess_root)
    remote = dict(kind="remote", call={"fn_name": "f", "payload": "{}"})
    light = Sandbox(dirs, task(1, inputs=[[small, "in", 0o644, True]], **remote), cache=cache)
    heavy = [Sandbox(dirs, task(2, inputs=[[big, "in", 0o644, True]], **remote), cache=cache),
             Sandbox(dirs, task(3, declared={"disk": ROOM_IN_MEMORY_MAX + 1}, **remote), cache=cache)]
    assert light.dir == os.path.join(dirs.coprocess_root, "t.1")
    assert light.stage(cache) is None and open(os.path.join(light.dir, "in"), "rb").read() == b"small"
    for sandbox in heavy:
        link = os.path.join(dirs.coprocess_root, f"t.{sandbox.task_id}")
        assert os.path.dirname(sandbox.dir) == str(workspace) and os.path.realpath(link) == sandbox.dir
        assert sandbox.stage(cache) is None
        sandbox.cleanup(cache)
        assert not os.path.lexists(link) and not os.path.exists(sandbox.dir)
    light.cleanup(cache)
    assert [name[:2] for name in os.listdir(dirs.coprocess_root)] == ["c."]


def test_the_coprocess_root_is_a_locked_directory_of_its_own_released_at_exit(tmp_path):
    from workqueue.worker.workspace import coprocess_root, memory_parent
    assert coprocess_root("workspace", "/ws") == ("/ws", None)
    assert memory_parent(str(tmp_path), free_min=1 << 62) is None
    assert memory_parent(str(tmp_path / "absent")) is None
    root, scratch = coprocess_root(str(tmp_path), "/ws")
    assert os.path.dirname(root) == str(tmp_path) and os.path.isdir(root)
    scratch.release()
    assert os.listdir(tmp_path) == []
