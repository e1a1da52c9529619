"""Archives unpacked once per worker (File.untar), shared by every task that uses them."""
import io
import os
import tarfile

from conftest import drain

import workqueue as wq
from workqueue.constants import Result


def make_archive(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))


def test_an_archive_is_unpacked_once_per_worker_and_seen_by_every_task(manager, tmp_path):
    archive = tmp_path / "env.tar.gz"
    make_archive(archive, {"env/bin/tool": b"#!/bin/sh\necho tool ran\n", "env/README": b"data\n"})
    with wq.local_workers(2, manager, cores=1):
        for _ in range(6):
            manager.submit(wq.Task("sw/env/bin/tool && cat sw/env/README",
                                   inputs=[wq.File.untar(str(archive), "sw")], cores=1))
        done = drain(manager, 120)
    assert [t.output for t in done] == ["tool ran\ndata\n"] * 6
    assert 1 <= manager.stats["archives_unpacked"] <= 2  # once on each worker that ran one


def test_a_file_that_is_not_a_tar_archive_fails_the_task_with_input_missing(manager, tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"certainly not a tar archive")
    with wq.local_workers(1, manager, cores=1):
        manager.submit(wq.Task("ls x", inputs=[wq.File.untar(str(bad), "x")]))
        task = drain(manager, 60)[0]
        manager.submit(wq.Task("echo still here"))
        after = drain(manager, 60)[0]
    assert task.result == Result.INPUT_MISSING and "not a tar archive" in task.output
    assert after.output == "still here\n"


def test_a_member_that_would_land_outside_is_refused(manager, tmp_path):
    evil = tmp_path / "evil.tar"
    make_archive(evil, {"../../escaped": b"gotcha\n"})
    with wq.local_workers(1, manager, cores=1, extra=["-s", str(tmp_path)]):
        manager.submit(wq.Task("ls x", inputs=[wq.File.untar(str(evil), "x")]))
        task = drain(manager, 60)[0]
    assert task.result == Result.INPUT_MISSING
    assert not any(p.name == "escaped" for p in tmp_path.rglob("escaped"))


def test_an_archive_made_by_a_task_as_a_temporary_file_is_unpacked_where_it_is_read(manager):
    temp = manager.declare_temp()
    with wq.local_workers(1, manager, cores=1):
        manager.submit(wq.Task("mkdir d && echo inside > d/f && tar czf out d", outputs=[(temp, "out")]))
        manager.submit(wq.Task("cat t/d/f", inputs=[wq.File.untar(temp, "t")]))
        done = drain(manager, 60)
    assert done[-1].succeeded and done[-1].output == "inside\n"
    assert manager.stats["bytes_sent"] == 0


def test_untar_refuses_what_it_cannot_unpack(tmp_path):
    import pytest
    with pytest.raises(ValueError, match="URL"):
        wq.File.untar(wq.File.url("http://example.org/a.tar"))
    with pytest.raises(ValueError, match="directory"):
        wq.Task("true", inputs=[wq.File.untar(str(tmp_path), "x")])
    assert not os.path.exists(tmp_path / "x")
