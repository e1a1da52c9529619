"""The worker's malloc thresholds: set where the C library is glibc, and a worker receiving a file
takes no page fault per chunk once its buffers are warm."""
import os
import platform

import pytest
from conftest import drain

import workqueue as wq
from workqueue.worker.malloc_tuning import steady_malloc


def minor_faults(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


@pytest.mark.skipif(platform.system() != "Linux" or not platform.libc_ver()[0] == "glibc",
                    reason="glibc's mallopt and /proc")
def test_a_worker_receiving_inputs_reuses_its_buffers(tmp_path):
    assert steady_malloc()
    data = tmp_path / "in.bin"
    data.write_bytes(os.urandom(64 << 20))
    with wq.Manager(port=0, host="127.0.0.1") as m, wq.local_workers(1, m, cores=1) as pool:
        pid = pool.processes[0].pid
        for _ in range(2):  # the first transfer grows the heap
            m.submit(wq.Task("true", inputs=[(str(data), "in")], cores=1))
            assert drain(m, 60)[0].succeeded
        before = minor_faults(pid)
        m.submit(wq.Task("true", inputs=[(str(data), "in")], cores=1))
        assert drain(m, 60)[0].succeeded
        faults = minor_faults(pid) - before
    assert faults < (64 << 20) // 4096 // 10, f"{faults} page faults for 64 MiB received"
