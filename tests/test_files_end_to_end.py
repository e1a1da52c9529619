"""Files on real workers: directories, the cache across tasks and reconnects, vanished inputs, full disks."""
import os
import subprocess
import time

import pytest
from conftest import drain, start_worker, stop, wait_for

import workqueue as wq
from workqueue.constants import Result


def test_directories_travel_both_ways_recursively(manager, worker, tmp_path):
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "a.txt").write_text("A")
    (src / "sub" / "deeper" / "b.txt").write_text("B")
    t = wq.Task("ls -R data > /dev/null && test -d data/empty && mkdir -p out/x && "
                "cat data/a.txt data/sub/deeper/b.txt > out/x/ab.txt && echo top > out/top.txt",
                inputs=[(str(src), "data")], outputs=[(str(tmp_path / "result"), "out")])
    manager.submit(t)
    drain(manager)
    assert t.result == Result.SUCCESS, t.output
    assert (tmp_path / "result" / "x" / "ab.txt").read_text() == "AB"
    assert (tmp_path / "result" / "top.txt").read_text() == "top\n"


def test_an_input_that_vanishes_before_dispatch_gives_input_missing(manager, tmp_path):
    doomed = tmp_path / "doomed.txt"
    doomed.write_text("x")
    t = wq.Task("cat doomed.txt", inputs=[str(doomed)], cores=1)
    manager.submit(t)  # no worker yet: it waits
    doomed.unlink()
    worker = start_worker(manager.port, "--cores", "1")
    try:
        drain(manager)
    finally:
        stop(worker)
    assert t.result == Result.INPUT_MISSING
    assert "doomed.txt" in t.output


def test_a_changed_local_file_is_sent_again_never_stale(manager, worker, tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("version one")
    manager.submit(wq.Task("cat data.txt", inputs=[wq.File(str(data), cache=True)], cores=1))
    assert drain(manager)[0].output == "version one"
    time.sleep(0.01)
    data.write_text("version two!")
    manager.submit(wq.Task("cat data.txt", inputs=[wq.File(str(data), cache=True)], cores=1))
    assert drain(manager)[0].output == "version two!"


def test_the_cache_survives_a_master_restart(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(2 << 20))
    first = wq.Manager(port=0, keepalive_interval=0.5, keepalive_timeout=2)
    port = first.port
    worker = start_worker(port, "--cores", "1", "-i", "0.2", "-b", "0.5")
    try:
        first.submit(wq.Task("wc -c < big.bin", inputs=[wq.File(str(big), cache=True)], cores=1))
        assert drain(first)[0].output.strip() == str(2 << 20)
        first.close()
        second = wq.Manager(port=port, keepalive_interval=0.5, keepalive_timeout=2)
        try:
            t = wq.Task("wc -c < big.bin", inputs=[wq.File(str(big), cache=True)], cores=1)
            second.submit(t)
            assert drain(second, timeout=30)[0].output.strip() == str(2 << 20)
            assert second.stats["bytes_sent"] == 0, "the worker's cache should have served the file"
            assert second.stats["cache_hits"] == 1
        finally:
            second.close()
    finally:
        stop(worker)


def test_invalidate_cache_file_makes_workers_drop_it(manager, worker, tmp_path):
    data = tmp_path / "d"
    data.write_text("x" * 1000)
    for _ in range(2):
        manager.submit(wq.Task("cat d > /dev/null", inputs=[wq.File(str(data), cache=True)], cores=1))
        drain(manager)
    sent = manager.stats["bytes_sent"]
    assert sent == 1000
    manager.invalidate_cache_file(str(data))
    manager.submit(wq.Task("cat d > /dev/null", inputs=[wq.File(str(data), cache=True)], cores=1))
    drain(manager)
    assert manager.stats["bytes_sent"] == 2000


@pytest.fixture
def tiny_disk(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tiny tmpfs here: {done.stderr.decode().strip()}")
    yield str(mount)
    subprocess.run(["umount", "-l", str(mount)])


def test_a_full_worker_disk_fails_the_task_clearly_and_the_worker_keeps_serving(manager, tmp_path, tiny_disk):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 << 20))
    worker = start_worker(manager.port, "--cores", "1", "--disk", "100", "-s", tiny_disk)
    try:
        t = wq.Task("wc -c < big.bin", inputs=[str(big)], cores=1)
        manager.submit(t)
        drain(manager)
        assert t.result == Result.DISK_ALLOC_FULL
        assert "no space left" in t.output
        left = [f for _, _, fs in os.walk(tiny_disk) for f in fs if f != "worker.lock"]  # the live worker's lock
        assert not left, "a partial file was left on the worker"
        manager.submit(wq.Task("echo still-here", cores=1))
        assert drain(manager)[0].output.strip() == "still-here"
    finally:
        stop(worker)


def test_a_short_idle_timeout_never_cuts_an_output_transfer(manager, tmp_path):
    worker = start_worker(manager.port, "--cores", "1", "-t", "1")
    try:
        t = wq.Task("head -c 300000000 /dev/zero > big.out", outputs=[str(tmp_path / "big.out")], cores=1)
        manager.submit(t)
        drain(manager, timeout=120)
        assert t.result == Result.SUCCESS
        assert (tmp_path / "big.out").stat().st_size == 300_000_000
    finally:
        stop(worker)


def test_workers_receiving_files_at_once_share_the_link_evenly(manager, tmp_path):
    workers = [start_worker(manager.port, "--cores", "1") for _ in range(3)]
    try:
        wait_for(lambda: manager.stats["workers_connected"] == 3)
        tasks = []
        for i in range(3):
            path = tmp_path / f"in.{i}"
            path.write_bytes(os.urandom(48 << 20))
            tasks.append(wq.Task("true", cores=1, inputs=[(str(path), "in")]))
        for t in tasks:
            manager.submit(t)
        drain(manager, timeout=120)
    finally:
        for w in workers:
            stop(w)
    assert all(t.result == Result.SUCCESS for t in tasks)
    assert len({t.worker_id for t in tasks}) == 3
    dispatched = min(t.times["dispatch"] for t in tasks)
    first, *_, last = sorted(t.times["start"] - dispatched for t in tasks)
    # one file after another, the first task would start a third of the way in; shared, near the end
    assert first > 0.6 * last, (first, last)


def test_many_outputs_of_one_task_hold_no_descriptor_until_its_result(manager, worker, tmp_path):
    """Each received output is closed once complete: with a limit of 256 descriptors, a task that
    returns 600 files used to fail the master's receive (EMFILE) and was requeued for ever."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        t = wq.Task("mkdir out && for i in $(seq 600); do echo $i > out/f$i; done",
                    outputs=[(str(tmp_path / "out"), "out")])
        manager.submit(t)
        drain(manager, timeout=60)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert t.result == Result.SUCCESS, t.output
    assert len(os.listdir(tmp_path / "out")) == 600
    assert (tmp_path / "out" / "f600").read_text() == "600\n"
