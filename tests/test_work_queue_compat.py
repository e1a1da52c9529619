"""The CCTools skin: names, constants, units, and subclassing as Coffea does it."""
import sys

import zmq
from conftest import dealer, start_worker, stop

import work_queue
import workqueue as wq
from workqueue.wire import protocol


def test_both_names_are_one_module_with_a_version():
    from ndcctools import work_queue as nd
    assert nd is work_queue
    assert isinstance(work_queue.__version__, str)
    assert work_queue.WORK_QUEUE_DEFAULT_PORT == 9123 and isinstance(work_queue.WORK_QUEUE_DEFAULT_PORT, int)
    assert work_queue.WORK_QUEUE_RESULT_SUCCESS == 0 and work_queue.WORK_QUEUE_RESULT_OUTPUT_MISSING == 2
    assert work_queue.WORK_QUEUE_RESULT_RESOURCE_EXHAUSTION == 16
    assert work_queue.WORK_QUEUE_ALLOCATION_MODE_MAX_THROUGHPUT == 3


def test_importing_starts_no_thread_and_no_socket():
    import subprocess
    code = ("import threading, work_queue, ndcctools.work_queue; "
            "assert threading.active_count() == 1, threading.enumerate(); print('clean')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.stdout.strip() == "clean", done.stderr


def test_cctools_task_calls_map_onto_the_native_task(tmp_path):
    q = work_queue.WorkQueue(0)
    worker = start_worker(q.port, "--cores", "2")
    try:
        (tmp_path / "in.txt").write_text("hi")
        t = work_queue.Task("cat in.txt buf.txt > out.txt; echo $FOO; exit 2")
        t.specify_input_file(str(tmp_path / "in.txt"), cache=True)
        t.specify_buffer("there", "buf.txt")
        t.specify_output_file(str(tmp_path / "out.txt"))
        t.specify_tag("tag-1")
        t.specify_category("cat")
        t.specify_cores(1)
        t.specify_memory(10)
        t.specify_max_retries(1)
        t.specify_environment_variable("FOO", "bar")
        task_id = q.submit(t)
        assert task_id == t.id
        done = q.wait(30)
        assert done is t
        assert t.return_status == 2 and t.result == work_queue.WORK_QUEUE_RESULT_SUCCESS
        assert t.result_str == "SUCCESS" and t.output.strip() == "bar" and t.std_output == t.output
        assert t.tag == "tag-1" and t.category == "cat"
        assert (tmp_path / "out.txt").read_text() == "hithere"
        assert t.resources_allocated.cores == 1 and t.resources_measured.memory >= 0
        assert t.cmd_execution_time > 0 and t.total_submissions == 1
        assert t.resources_measured.gpus == 0  # never None
        assert q.stats.tasks_done == 1
        assert q.empty() and q.wait(0) is None
    finally:
        stop(worker)
        q.close()


def test_cancel_by_taskid_and_tasktag():
    q = work_queue.WorkQueue(0)
    try:
        a, b = work_queue.Task("sleep 100"), work_queue.Task("sleep 100")
        b.specify_tag("doomed")
        q.submit(a)
        q.submit(b)
        assert q.cancel_by_tasktag("doomed") is b
        assert q.cancel_by_taskid(a.id) is a
        assert q.empty()
    finally:
        q.close()


def test_password_file_after_construction_as_parsl_does(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("secret\n")
    q = work_queue.WorkQueue(0)
    try:
        q.specify_password_file(str(pw))
        q.specify_transactions_log(str(tmp_path / "tx.log"))
        import subprocess
        bad = subprocess.run([sys.executable, "-m", "workqueue.worker", "localhost", str(q.port), "-t", "10"],
                             capture_output=True, text=True, timeout=30)
        assert "requires a password" in bad.stderr
        good = start_worker(q.port, "-P", str(pw))
        try:
            q.submit(work_queue.Task("echo ok"))
            assert q.wait(30).output.strip() == "ok"
        finally:
            stop(good)
        log = (tmp_path / "tx.log").read_text()
        assert " TASK 1 WAITING" in log and " TASK 1 RUNNING" in log and " TASK 1 DONE SUCCESS" in log
        assert " WORKER " in log and "CONNECTION" in log
    finally:
        q.close()


class CoffeaLikeQueue(work_queue.WorkQueue):
    def __init__(self, executor, **kwargs):
        self.executor = executor
        self.stats_coffea = {"done": 0}
        self.console = object()
        super().__init__(**kwargs)

    def application_info(self):
        return {"application": "coffea"}

    def __del__(self):
        super().__del__()


class CoffeaLikeTask(work_queue.Task):
    def __init__(self, itemid, command):
        self.itemid = itemid
        self.size = 1
        self._stdout = None
        super().__init__(command)

    @property
    def std_output(self):
        return "overridden"

    def clone(self):
        raise AssertionError("the base class must never call clone()")


def test_a_coffea_style_subclass_keeps_its_own_attributes():
    q = CoffeaLikeQueue("exec", port=0, name=None)
    worker = start_worker(q.port, "--cores", "1")
    try:
        assert q.executor == "exec" and q.application_info() == {"application": "coffea"}
        t = CoffeaLikeTask(7, "echo coffea")
        q.submit(t)
        done = q.wait(30)
        assert done is t and done.itemid == 7 and done.output.strip() == "coffea"
        assert done.std_output == "overridden"
    finally:
        stop(worker)
        q.__del__()


def test_hungry_throttles_submission():
    q = work_queue.WorkQueue(0)
    try:
        submitted = 0
        while q.hungry() and submitted < 1000:
            q.submit(work_queue.Task("true"))
            submitted += 1
        assert 0 < submitted < 1000, "with no workers, hungry() must stop the submit loop early"
    finally:
        q.close()


def test_results_for_tasks_a_worker_was_never_given_are_ignored():
    m = wq.Manager(port=0)
    try:
        fake = dealer(m.port)
        fake.send_multipart(protocol.hello("fake", "fakehost", {"cores": 1, "memory": 1, "disk": 1, "gpus": 0}))
        assert fake.poll(5000) and protocol.decode(fake.recv_multipart()).type == "welcome"
        tid = m.submit(wq.Task("true", cores=1))
        task_msg = _next_non_heartbeat(fake)
        assert task_msg.type == "task" and task_msg["task_id"] == tid
        for wrong_id, attempt in ((tid + 100, 1), (tid, 99)):
            fake.send_multipart(protocol.encode("result", [b"forged"], task_id=wrong_id, attempt=attempt,
                                                result=0, exit_code=0))
        fake.send_multipart(protocol.encode("result", [b"real"], task_id=tid, attempt=1, result=0, exit_code=0))
        done = m.wait(10)
        assert done.output == "real"
        fake.send_multipart(protocol.encode("result", [b"again"], task_id=tid, attempt=1, result=0, exit_code=0))
        assert m.wait(1) is None
        fake.close()
    finally:
        m.close()


def _next_non_heartbeat(sock):
    while sock.poll(5000):
        message = protocol.decode(sock.recv_multipart())
        if message.type != "heartbeat":
            return message
    raise AssertionError("nothing but heartbeats")


def test_a_worker_drops_nonsense_from_a_fake_master_and_keeps_going():
    ctx = zmq.Context.instance()
    master = ctx.socket(zmq.ROUTER)
    master.setsockopt(zmq.LINGER, 0)
    port = master.bind_to_random_port("tcp://127.0.0.1")
    worker = start_worker(port, "--cores", "1")
    try:
        assert master.poll(10000)
        identity, *frames = master.recv_multipart()
        assert protocol.decode(frames).type == "hello"
        master.send_multipart([identity, *protocol.encode("welcome", version=protocol.PROTOCOL_VERSION)])
        for junk in ([b"\x00\xff"], [b"not msgpack at all"], [b"\x81\xa1t\xa4task"]):
            master.send_multipart([identity, *junk])
        master.send_multipart([identity, *protocol.encode("task", [b""], task_id=1, command="echo alive",
                                                         resources={"cores": 1})])
        deadline_ok = False
        for _ in range(50):
            if not master.poll(200):
                continue
            identity, *frames = master.recv_multipart()
            message = protocol.decode(frames)
            if message.type == "result":
                assert message.payload[0] == b"alive\n"
                deadline_ok = True
                break
        assert deadline_ok, "the worker stopped serving after garbage"
    finally:
        stop(worker)
        master.close()


def test_cctools_python_task_with_specify_calls():
    q = work_queue.WorkQueue(0)
    worker = start_worker(q.port, "--cores", "1")
    try:
        t = work_queue.PythonTask(lambda x: print("doubling", x) or x * 2, 21)
        t.specify_tag("double")
        t.specify_cores(1)
        q.submit(t)
        done = q.wait(30)
        assert done is t and t.output == 42 and t.tag == "double"
        assert t.std_output == "doubling 21\n"
    finally:
        stop(worker)
        q.close()


def test_task_state_follows_a_task_from_ready_to_done_and_stats_category_counts_one_category():
    from conftest import start_worker, stop, wait_for

    import work_queue
    q = work_queue.WorkQueue(0)
    try:
        gate = work_queue.Task("sleep 30")
        gate.specify_cores(1)
        gate.specify_category("slow")
        quick = work_queue.Task("true")
        quick.specify_cores(1)
        gone = work_queue.Task("true")
        gone.specify_cores(1)
        ids = [q.submit(t) for t in (gate, quick, gone)]
        assert [q.task_state(i) for i in ids] == [work_queue.WORK_QUEUE_TASK_READY] * 3
        q.cancel_by_taskid(ids[2])
        assert q.task_state(ids[2]) == work_queue.WORK_QUEUE_TASK_CANCELED
        assert q.task_state(999) == work_queue.WORK_QUEUE_TASK_UNKNOWN
        slow = q.stats_category("slow")
        assert (slow.tasks_waiting, slow.tasks_running) == (1, 0)
        worker = start_worker(q.port, "--cores", "2")
        try:
            assert wait_for(lambda: q.task_state(ids[0]) == work_queue.WORK_QUEUE_TASK_RUNNING, timeout=30)
            assert wait_for(lambda: q.task_state(ids[1]) == work_queue.WORK_QUEUE_TASK_RETRIEVED, timeout=30)
            assert q.stats_category("slow").tasks_running == 1
            assert q.wait(5).id == ids[1]
            assert q.task_state(ids[1]) == work_queue.WORK_QUEUE_TASK_DONE
            assert q.stats_category("default").tasks_done == 1
        finally:
            stop(worker)
    finally:
        q.shutdown_workers(0)
        q.close()
