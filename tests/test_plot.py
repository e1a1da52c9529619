"""``workqueue plot``: the performance log a master writes (``specify_log``) drawn as a PNG."""
import pytest
from click.testing import CliRunner
from conftest import wait_for

import work_queue
import workqueue as wq
from workqueue.cli.main import main
from workqueue.web import perflog

PNG = b"\x89PNG\r\n\x1a\n"


def test_plot_draws_the_log_a_master_wrote(tmp_path):
    log = tmp_path / "performance.log"
    q = work_queue.WorkQueue(port=0, stats_log=str(log))
    try:
        with wq.local_workers(2, q.port, cores=1):
            for i in range(12):
                t = work_queue.Task("sleep 0.25")
                t.specify_cores(1)
                q.submit(t)
            while not q.empty():
                q.wait(1)

            def logged_all():  # the skin writes a line from wait(), at most one a second
                q.wait(0)
                return perflog.read(str(log)).get("tasks_done")[-1:] == [12]
            assert wait_for(logged_all, timeout=10, interval=0.2)
    finally:
        q.close()
    read = perflog.read(str(log))
    assert len(read.seconds) >= 2 and read.get("tasks_done")[0] < 12
    assert read.get("workers_connected")[-1] == 2
    out = tmp_path / "out.png"
    result = CliRunner().invoke(main, ["plot", str(log), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert out.read_bytes().startswith(PNG) and out.stat().st_size > 10_000


def test_a_file_that_is_not_a_performance_log_is_named(tmp_path):
    bad = tmp_path / "transactions.log"
    bad.write_text("1700000000 42 TASK 1 WAITING default\n")
    result = CliRunner().invoke(main, ["plot", str(bad), "-o", str(tmp_path / "x.png")])
    assert result.exit_code != 0 and "line 1: no '# timestamp ...' header" in result.output
    empty = tmp_path / "empty.log"
    empty.write_text("# timestamp tasks_done\n")
    result = CliRunner().invoke(main, ["plot", str(empty)])
    assert result.exit_code != 0 and "no sample yet" in result.output


def test_parse_reads_cctools_shaped_logs_and_rates():
    log = perflog.parse(["# timestamp workers_connected tasks_done\n", "1000000 1 0\n", "\n", "3000000 2 10\n"])
    assert log.seconds == [0.0, 2.0] and log.get("workers_connected") == [1.0, 2.0]
    assert log.rate("tasks_done") == [0.0, 5.0]
    with pytest.raises(ValueError, match="line 2: 1 values for 2 columns"):
        perflog.parse(["#timestamp tasks_done\n", "1\n"])
    with pytest.raises(ValueError, match="line 2: not all numbers"):
        perflog.parse(["# timestamp tasks_done\n", "1 x\n"])
