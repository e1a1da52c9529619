"""The worker's own guards, tested below the wire (whatever protocol.decode lets through): names and
digests from the master never become paths outside the workspace, a task that cannot run is
reported failed, one failing message never ends the worker, and sizes stay within their bounds."""
import logging
import os

import cloudpickle
import pytest

from workqueue.constants import Result
from workqueue.data import fastio
from workqueue.data.cache import Cache
from workqueue.data.transfer import Incoming, TransferError
from workqueue.wire import protocol
from workqueue.worker.files import FileReceiver
from workqueue.worker.main import Options, Worker, WorkerRejected
from workqueue.worker.resources import detect_resources
from workqueue.worker.sandbox import Sandbox, SandboxDirs, UnsafeName, truncated_stdout
from workqueue.worker.tasks import TaskRunner

DIGEST = "0" * 32


class FakeSession:
    """What the task runner and the file receiver use of a session: results and messages are kept."""

    def __init__(self):
        self.results = []
        self.sent = []
        self.incoming = {}
        self.welcomed = True

    def hold_result(self, frames):
        self.results.append(protocol.decode(frames))

    def send(self, frames):
        self.sent.append(protocol.decode(frames))

    def send_now(self, frames):
        self.sent.append(protocol.decode(frames))

    def release_results(self, queued):
        pass


def task(task_id=1, **fields):
    spec = {"task_id": task_id, "attempt": 1, "command": "true", "kind": "command", "env": {},
            "resources": {"cores": 1}, "declared": {}, "inputs": [], "outputs": [], "limits": {}, "call": {}}
    spec.update(fields)
    return spec


def cached_file(cache, data=b"payload"):
    digest = fastio.hash_bytes(data)
    incoming = cache.receive(digest, len(data), 1)
    assert incoming.add(0, data, True, digest)
    cache.admit(digest, incoming, 0o644)
    return digest


@pytest.fixture
def workspace(tmp_path):
    path = tmp_path / "outer" / "work" / "ws"
    path.mkdir(parents=True)
    return path


def everything_below(root):
    return {os.path.join(parent, name) for parent, dirs, files in os.walk(root) for name in dirs + files}


# -- names: Sandbox.stage ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../x", "../x", "a/../../x", "/abs-victim", "./x", "a//b", "", "x/"])
def test_stage_refuses_a_name_that_is_not_plain_and_writes_nothing(workspace, tmp_path, name):
    cache = Cache(str(workspace / "cache"))
    digest = cached_file(cache)
    before = everything_below(tmp_path)
    for entry in ([digest, name, 0o644, False], ["", name, 0o755, False]):  # a file, a directory
        sandbox = Sandbox(SandboxDirs(str(workspace)), task(inputs=[entry]))
        with pytest.raises(UnsafeName):
            sandbox.stage(cache)
        sandbox.cleanup(cache)
    assert everything_below(tmp_path) - before <= everything_below(workspace)
    assert not os.path.exists("/abs-victim")


def test_stage_refuses_a_name_that_resolves_outside_through_a_symlink(workspace, tmp_path):
    cache = Cache(str(workspace / "cache"))
    digest = cached_file(cache)
    outside = tmp_path / "outside"
    outside.mkdir()
    sandbox = Sandbox(SandboxDirs(str(workspace)), task(inputs=[[digest, "link/x", 0o644, False],
                                                               ["", "link/d", 0o755, False]]))
    os.symlink(outside, os.path.join(sandbox.dir, "link"))
    with pytest.raises(UnsafeName, match="outside the sandbox"):
        sandbox.stage(cache)
    assert os.listdir(outside) == []


def test_stage_links_plain_names_and_refuses_a_name_given_twice(workspace):
    cache = Cache(str(workspace / "cache"))
    digest = cached_file(cache)
    sandbox = Sandbox(SandboxDirs(str(workspace)), task(inputs=[[digest, "sub/in.txt", 0o644, False]]))
    assert sandbox.stage(cache) is None
    assert open(os.path.join(sandbox.dir, "sub", "in.txt"), "rb").read() == b"payload"
    twice = Sandbox(SandboxDirs(str(workspace)), task(2, inputs=[[digest, "a", 0o644, False]] * 2))
    with pytest.raises(ValueError, match="given twice"):
        twice.stage(cache)


def test_a_call_file_outside_the_sandbox_is_never_read(workspace):
    sandbox = Sandbox(SandboxDirs(str(workspace)), task(kind="function", call={"file": "../../secret"}))
    with pytest.raises(UnsafeName):
        sandbox.call()


# -- digests: Cache ------------------------------------------------------------------------------
@pytest.mark.parametrize("digest", ["../../x", "/etc/passwd", "A" * 32, "0" * 31, "0" * 33, "g" * 32, "", 7, None])
def test_the_cache_refuses_anything_but_a_plain_lowercase_hex_digest(workspace, digest):
    cache = Cache(str(workspace / "cache"))
    with pytest.raises(ValueError):
        cache.path(digest)
    with pytest.raises(ValueError):
        cache.receive(digest, 10, 1)
    assert os.listdir(workspace / "cache" / "tmp") == []


def test_the_cache_refuses_a_negative_size(workspace):
    with pytest.raises(ValueError):
        Cache(str(workspace / "cache")).receive(DIGEST, -1, 1)


# -- sizes: Incoming -----------------------------------------------------------------------------
def test_incoming_refuses_a_chunk_past_the_declared_size_before_writing_it(tmp_path):
    path = tmp_path / "partial"
    incoming = Incoming(str(path), expected_size=10)
    assert not incoming.add(0, b"x" * 6, False, "")
    with pytest.raises(TransferError, match="past its declared 10 bytes"):
        incoming.add(1, b"y" * 5, False, "")
    assert incoming.size == 6
    incoming.abort()


def test_incoming_takes_a_file_of_exactly_its_declared_size(tmp_path):
    data = b"z" * 10
    incoming = Incoming(str(tmp_path / "partial"), expected_size=10)
    assert not incoming.add(0, data[:4], False, "")
    assert incoming.add(1, memoryview(data[4:]), True, fastio.hash_bytes(data))
    incoming.finish(str(tmp_path / "done"))
    assert (tmp_path / "done").read_bytes() == data


# -- stdout --------------------------------------------------------------------------------------
def test_stdout_over_the_limit_is_cut_with_a_note_and_never_exceeds_it(tmp_path):
    path = tmp_path / "out"
    path.write_bytes(b"a" * 5000)
    cut = truncated_stdout(str(path), limit=1000)
    assert len(cut) <= 1000 and cut.startswith(b"a" * 900)
    assert cut.endswith(b"... [stdout truncated at %d bytes]\n" % cut.index(b"\n"))
    path.write_bytes(b"b" * 1000)
    assert truncated_stdout(str(path), limit=1000) == b"b" * 1000


# -- the task runner ---------------------------------------------------------------------------
@pytest.fixture
def runner(workspace):
    cache = Cache(str(workspace / "cache"))
    tasks = TaskRunner(str(workspace), {"cores": 2.0, "memory": 100.0, "disk": 100.0, "gpus": 0.0}, cache)
    yield tasks
    tasks.close()


def never_missing(sandbox, digest):
    raise AssertionError("no input is missing in these tests")


def only_result(session):
    assert len(session.results) == 1, session.results
    return session.results.pop()


@pytest.mark.parametrize("hostile, why", [
    (dict(inputs=[["", "../../escape", 0o755, False]]), "not a plain relative path"),
    (dict(inputs=[[DIGEST.replace("0", "A"), "in", 0o644, False]]), "not a digest"),
    (dict(inputs=[["", "/abs-escape", 0o755, False]]), "not a plain relative path"),
    (dict(resources={"cores": float("nan")}), "not a finite non-negative number"),
    (dict(resources={"cores": -4}), "not a finite non-negative number"),
    (dict(resources={"cores": 64}), "more than this worker has"),
    (dict(resources={"cores": [1]}), "unhashable"),
    (dict(resources={"cores": 1, "unicorns": 1}), "more than this worker has"),
    (dict(inputs="not a list"), ""),
])
def test_a_task_the_worker_refuses_at_arrival_is_reported_failed(runner, workspace, tmp_path, hostile, why):
    session = FakeSession()
    runner.accept(session, task(7, **hostile), b"", never_missing)
    result = only_result(session)
    assert (result["task_id"], result["result"]) == (7, Result.UNKNOWN)
    assert why.encode() in result.payload[0]
    assert not runner.queued
    assert not (tmp_path / "outer" / "escape").exists() and not os.path.exists("/abs-escape")


@pytest.mark.parametrize("hostile, why", [
    (dict(kind="no-such-kind"), "unknown task kind"),
    (dict(kind="remote", call={"fn_name": "f", "payload": "{}"}), "runs no coprocess"),
    (dict(kind="function", call={"file": "../../secret"}), "not a plain relative path"),
    (dict(command="echo \0 nul"), "could not start"),
    (dict(env={"A=B": "1"}), "could not start"),
])
def test_a_task_that_cannot_start_is_reported_failed_and_the_next_one_runs(runner, hostile, why):
    session = FakeSession()
    runner.accept(session, task(7, **hostile), b"", never_missing)
    runner.accept(session, task(8, command="exit 3"), b"", never_missing)
    runner.start_queued(session)
    failed = only_result(session)
    assert (failed["task_id"], failed["result"]) == (7, Result.UNKNOWN)
    assert why.encode() in failed.payload[0]
    assert list(runner.running) == [8]
    sandbox = runner.running[8]
    os.waitid(os.P_PID, sandbox.pid, os.WEXITED | os.WNOWAIT)
    runner.task_exited(session, runner.by_pidfd.pop(sandbox.pidfd))
    ran = only_result(session)
    assert (ran["task_id"], ran["result"], ran["exit_code"]) == (8, Result.SUCCESS, 3)


def test_a_message_that_says_it_is_a_task_but_does_not_decode_is_reported_failed(runner):
    session = FakeSession()
    import msgpack
    runner.refuse_undecodable(session, [msgpack.packb({"t": "task", "task_id": 5, "kind": 3})], ValueError("bad kind"))
    runner.refuse_undecodable(session, [b"\xc1garbage"], ValueError("garbage"))
    runner.refuse_undecodable(session, [msgpack.packb({"t": "task", "task_id": "five"})], ValueError("bad id"))
    result = only_result(session)
    assert (result["task_id"], result["attempt"], result["result"]) == (5, 1, Result.UNKNOWN)
    assert b"bad kind" in result.payload[0]


def test_a_function_outcome_too_large_for_a_result_becomes_a_failure_that_says_so(runner):
    from workqueue.worker.tasks import _outcome_too_large
    sandbox = Sandbox(runner.dirs, task(kind="function"))
    status, error, _, _ = cloudpickle.loads(_outcome_too_large(sandbox, 70 << 20))
    assert status == "error"
    assert str(error) == (f"the return value pickles to {70 << 20} bytes, over the 64 MiB a result may carry: "
                          "write it to an output file")


# -- the file receiver -------------------------------------------------------------------------
def put(digest, size, xfer=1):
    return protocol.Message("put", {"xfer": xfer, "digest": digest, "size": size, "mode": 0o644})


def chunk(data, xfer=1, seq=0, last=True, digest=""):
    return protocol.Message("chunk", {"xfer": xfer, "seq": seq, "last": last, "digest": digest}, [data])


@pytest.mark.parametrize("digest", ["../../x", "/x", "../" * 10 + "x", "A" * 32])
def test_a_put_with_a_digest_that_is_not_one_opens_nothing_and_writes_nothing(workspace, tmp_path, digest):
    receiver = FileReceiver(Cache(str(workspace / "cache")), "w")
    session = FakeSession()
    before = everything_below(tmp_path)
    receiver.on_put(session, put(digest, 4))
    receiver.on_chunk(session, chunk(b"evil", digest=digest))
    assert session.incoming == {}
    assert [m.type for m in session.sent] == ["ack"], "the chunk is acknowledged, so the window never stalls"
    assert everything_below(tmp_path) == before


def test_a_chunk_past_the_declared_size_fails_the_transfer(workspace):
    cache = Cache(str(workspace / "cache"))
    receiver = FileReceiver(cache, "w")
    session = FakeSession()
    data = b"0123456789"
    receiver.on_put(session, put(fastio.hash_bytes(data), 4))
    receiver.on_chunk(session, chunk(data, digest=fastio.hash_bytes(data)))
    assert session.incoming == {} and not cache.has(fastio.hash_bytes(data))
    assert [m.type for m in session.sent] == ["ack", "cache-update"]
    assert os.listdir(workspace / "cache" / "tmp") == []


def test_an_input_larger_than_the_disk_budget_fails_its_task_with_disk_alloc_full(workspace):
    cache = Cache(str(workspace / "cache"), budget_bytes=1000)
    receiver = FileReceiver(cache, "worker-x (host)")
    session = FakeSession()
    receiver.on_put(session, put(DIGEST, 5000))
    assert session.incoming == {}, "nothing is written of a file that could never be kept"
    sandbox = Sandbox(SandboxDirs(str(workspace)), task(inputs=[[DIGEST, "big.dat", 0o644, True]]))
    result, message = receiver.why_missing(sandbox, DIGEST)
    assert result == Result.DISK_ALLOC_FULL
    assert "'big.dat'" in message and "5000 bytes" in message and "1000 bytes" in message


def test_a_damaged_transfer_is_still_forsaken_to_be_sent_again(workspace):
    receiver = FileReceiver(Cache(str(workspace / "cache")), "w")
    session = FakeSession()
    receiver.on_put(session, put(DIGEST, 4))
    receiver.on_chunk(session, chunk(b"abcd", digest=DIGEST))  # not the digest of these bytes
    sandbox = Sandbox(SandboxDirs(str(workspace)), task(inputs=[[DIGEST, "in", 0o644, False]]))
    assert receiver.why_missing(sandbox, DIGEST)[0] == Result.FORSAKEN


def test_open_transfers_are_bounded(workspace):
    from workqueue.worker.files import INCOMING_MAX
    receiver = FileReceiver(Cache(str(workspace / "cache")), "w")
    session = FakeSession()
    for xfer in range(INCOMING_MAX + 5):
        receiver.on_put(session, put(DIGEST, 4, xfer))
    assert len(session.incoming) == INCOMING_MAX
    for incoming, _, _ in session.incoming.values():
        incoming.abort()


# -- one message never ends the worker -------------------------------------------------------
class HandlerSession(FakeSession):
    def __init__(self):
        super().__init__()
        self.socket = self

    def flush(self):
        pass

    def setsockopt(self, option, value):
        pass


def test_a_handler_that_fails_drops_its_message_with_few_log_lines(tmp_path, caplog):
    worker = Worker(Options(workdir=str(tmp_path)))
    calls = []

    def broken(session, message):
        calls.append(message)
        raise KeyError("boom")

    worker.handlers = {"heartbeat": broken}
    session = HandlerSession()
    with caplog.at_level(logging.WARNING, logger="workqueue.worker"):
        for _ in range(500):
            assert worker._handle(session, protocol.encode("heartbeat")) is None
    assert len(calls) == 500
    lines = [r for r in caplog.records if "handling it failed" in r.getMessage()]
    assert 1 <= len(lines) <= 10


def test_a_rejection_still_ends_the_worker(tmp_path):
    worker = Worker(Options(workdir=str(tmp_path)))

    def reject(session, message):
        raise WorkerRejected("no")

    worker.handlers = {"heartbeat": reject}
    with pytest.raises(WorkerRejected):
        worker._handle(HandlerSession(), protocol.encode("heartbeat"))


def test_garbage_is_dropped_with_few_log_lines(tmp_path, caplog):
    worker = Worker(Options(workdir=str(tmp_path)))
    worker.handlers = {}
    worker.tasks = TaskRunner(str(tmp_path), {"cores": 1.0}, Cache(str(tmp_path / "cache")))
    with caplog.at_level(logging.WARNING, logger="workqueue.worker"):
        for _ in range(300):
            assert worker._handle(HandlerSession(), [b"\xc1 not msgpack"]) is None
    assert 1 <= len(caplog.records) <= 10


# -- resources from the environment -----------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "-3", "1e999", "lots"])
def test_resources_in_the_environment_that_are_not_finite_non_negative_numbers_are_ignored(
        tmp_path, monkeypatch, caplog, value):
    detected = detect_resources(str(tmp_path), Options())
    for name in ("CORES", "MEMORY", "DISK", "GPUS"):
        monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="workqueue.worker"):
        offered = detect_resources(str(tmp_path), Options())
    assert offered["cores"] == detected["cores"]
    assert all(0 <= amount < float("inf") for amount in offered.values())
    assert sum("ignoring" in r.getMessage() for r in caplog.records) == 4


def test_resources_in_the_environment_that_are_numbers_are_offered(tmp_path, monkeypatch):
    monkeypatch.setenv("CORES", "1")  # never more than this process may use: 1 always fits
    monkeypatch.setenv("GPUS", "0")
    offered = detect_resources(str(tmp_path), Options())
    assert offered["cores"] == 1.0 and offered["gpus"] == 0.0


# -- workspaces ----------------------------------------------------------------------------------
def test_a_workspace_is_locked_for_its_life_and_only_dead_ones_are_swept(tmp_path):
    from workqueue.worker.workspace import KEEP_NAME, LOCK_NAME, Workspace, remove_stale
    uid = os.getuid()
    live = Workspace(str(tmp_path))
    path = live.claim()
    assert os.path.basename(path) == f"worker-{uid}-{os.getpid()}"
    assert [name for name in os.listdir(tmp_path)] == [os.path.basename(path)], "no staging directory is left"
    dead, kept, unlocked_other = (tmp_path / f"worker-{uid}-1", tmp_path / f"worker-{uid}-2", tmp_path / f"worker-{uid + 1}-3")
    for directory in (dead, kept, unlocked_other):
        directory.mkdir()
        (directory / LOCK_NAME).touch()
    (kept / KEEP_NAME).touch()
    (tmp_path / f"worker-{uid}-4").symlink_to(dead)
    assert remove_stale(str(tmp_path)) == [str(dead)]
    assert os.path.isdir(path) and kept.is_dir() and unlocked_other.is_dir()
    live.release()
    assert not os.path.exists(path)
    keeper = Workspace(str(tmp_path), keep=True)
    kept_path = keeper.claim()
    keeper.release()
    assert remove_stale(str(tmp_path)) == [] and os.path.isdir(kept_path), "--keep-cache keeps it"


def test_a_master_cannot_queue_tasks_without_bound(runner, monkeypatch):
    from workqueue.worker import tasks as worker_tasks
    monkeypatch.setattr(worker_tasks, "QUEUED_MAX", 3)
    session = FakeSession()
    for task_id in range(5):
        runner.accept(session, task(task_id, resources={"cores": 2}), b"", never_missing)
    assert len(runner.queued) == 3
    assert sorted(r["task_id"] for r in session.results) == [3, 4]
    assert all(b"waiting here already" in r.payload[0] for r in session.results)


@pytest.mark.parametrize("asked, used", [(0.5, 0.5), (1e-9, 0.05), (float("nan"), 3600.0), (1e12, 3600.0)])
def test_a_keepalive_the_master_asks_for_is_kept_within_bounds(asked, used):
    from workqueue.worker.main import KEEPALIVE_BOUNDS, _within
    assert _within(asked, *KEEPALIVE_BOUNDS) == used
