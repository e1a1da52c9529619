"""Parsl's Work Queue executor, unmodified, on workqueue: the tutorial's cells and coprocess mode.

Each scenario runs as its own script (Parsl starts a spawn-context process that re-imports __main__)."""
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("parsl")
pytestmark = pytest.mark.skipif(shutil.which("work_queue_worker") is None,
                                reason="work_queue_worker is not on PATH: install the package first")

from test_tutorial import TUTORIAL, code_cells  # noqa: E402


def run_script(tmp_path, body, timeout=240):
    script = tmp_path / "run.py"
    script.write_text("if __name__ == '__main__':\n" + textwrap.indent(body, "    "))
    env = dict(os.environ, WORKQUEUE_CATALOG_DIR=str(tmp_path / "catalog"))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=timeout, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done.stdout


def test_the_tutorial_parsl_cells_with_wqex_local(tmp_path):
    text = open(TUTORIAL).read()
    cells = code_cells(text[text.index("Parsl and Coffea"):])
    imports, load, app, loop, submit_workers = cells
    assert "wqex_local" in imports and "_submit_workers" in submit_workers
    # the cluster cell is the only one left out: wqex_local's own provider starts a local worker
    out = run_script(tmp_path, "\n".join([imports, load, app, loop, "parsl.dfk().cleanup()", "print('clean exit')"]))
    assert "[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]" in out
    assert "clean exit" in out


def test_coprocess_mode_bash_app_with_files_and_a_failing_app(tmp_path):
    body = textwrap.dedent('''
        import parsl
        from parsl.config import Config
        from parsl.data_provider.files import File
        from parsl.executors import WorkQueueExecutor
        from parsl.app.app import bash_app, python_app

        parsl.load(Config(executors=[WorkQueueExecutor(label="wq", port=0, coprocess=True, shared_fs=False)]))

        @python_app
        def cube(x):
            return x ** 3

        @python_app
        def broken():
            raise ValueError("this app fails on purpose")

        @bash_app
        def shout(inputs=(), outputs=()):
            return f"tr a-z A-Z < {inputs[0]} > {outputs[0]}"

        print("cubes", [cube(i).result() for i in range(5)])
        with open("words.txt", "w") as f:
            f.write("hello parsl")
        shout(inputs=[File("words.txt")], outputs=[File("loud.txt")]).result()
        print("loud", open("loud.txt").read())
        try:
            broken().result()
        except ValueError as error:
            print("caught", error)
        parsl.dfk().cleanup()
        print("clean exit")
    ''')
    out = run_script(tmp_path, body)
    assert "cubes [0, 1, 8, 27, 64]" in out
    assert "loud HELLO PARSL" in out
    assert "caught this app fails on purpose" in out
    assert "clean exit" in out
