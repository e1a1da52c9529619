"""Several GiB through a real master and worker, both ways, in bounded memory (slow: CI's slow phase)."""
import os
import threading

import psutil
import pytest
from conftest import drain, start_worker, stop

import workqueue as wq
from workqueue.constants import Result
from workqueue.data import fastio

GIB = int(os.environ.get("WORKQUEUE_BIG_TRANSFER_GIB", "4"))
RSS_GROWTH_LIMIT = 100 << 20


class PeakRss(threading.Thread):
    """Samples the resident memory of some processes until stopped; keeps each one's peak growth."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.before = [p.memory_info().rss for p in self.processes]
        self.peaks = list(self.before)
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.05):
            for i, process in enumerate(self.processes):
                try:
                    self.peaks[i] = max(self.peaks[i], process.memory_info().rss)
                except psutil.Error:
                    pass

    def growth_mib(self):
        self.done.set()
        self.join()
        return [(peak - before) >> 20 for peak, before in zip(self.peaks, self.before)]


def write_big_file(path, size):
    block = bytearray(os.urandom(1 << 20))
    with open(path, "wb") as f:
        for i in range(size >> 20):
            block[:8] = i.to_bytes(8, "big")  # every MiB differs, so a misplaced chunk changes the digest
            f.write(block)


@pytest.mark.slow
def test_several_gib_in_and_out_with_bounded_memory(tmp_path):
    size = GIB << 30
    source, back = str(tmp_path / "big.in"), str(tmp_path / "big.out")
    write_big_file(source, size)
    digest = fastio.hash_file(source)
    with wq.Manager(port=0) as m:
        worker = start_worker(m.port, "--cores", "1", "-s", str(tmp_path))
        try:
            rss = PeakRss([os.getpid(), worker.pid])
            rss.start()
            t = wq.Task("cp big.in big.out", cores=1, inputs=[wq.File(source, "big.in", cache=False)],
                        outputs=[(back, "big.out")])
            m.submit(t)
            drain(m, timeout=1200)
            master_growth, worker_growth = rss.growth_mib()
            print(f"{GIB} GiB in and out: RSS grew by {master_growth} MiB (master), {worker_growth} MiB (worker)")
        finally:
            stop(worker)
    assert t.result == Result.SUCCESS, t.output
    assert os.path.getsize(back) == size and fastio.hash_file(back) == digest
    assert t.bytes_sent == size and t.bytes_received == size
    assert not [n for n in os.listdir(tmp_path) if "wq-partial" in n]
    assert master_growth * (1 << 20) < RSS_GROWTH_LIMIT, f"the master's RSS grew by {master_growth} MiB"
    assert worker_growth * (1 << 20) < RSS_GROWTH_LIMIT, f"the worker's RSS grew by {worker_growth} MiB"
