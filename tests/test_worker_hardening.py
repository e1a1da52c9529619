"""A real worker process against a hostile master: a raw ROUTER socket on 127.0.0.1 that speaks the
protocol (or not). The worker must stay alive, write nothing outside its workspace, report what it
cannot run, and still run the next valid task."""
import os
import signal
import subprocess
import sys
import time

import cloudpickle
import msgpack
import pytest
import zmq
from conftest import stop, wait_for

from workqueue.constants import Result
from workqueue.data import fastio
from workqueue.wire import protocol

UID = os.getuid()


class FakeMaster:
    """Plays the master on a ROUTER socket: welcomes the worker, sends it anything, and reads its
    messages (bundles taken apart)."""

    def __init__(self):
        self.socket = zmq.Context.instance().socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.identity = None
        self.waiting = []  # messages read but not yet asked for

    def welcome(self, wait=15.0, silence=30.0):
        """Wait for a hello and answer it; the worker gives up on a master ``silence`` s quiet."""
        hello = self.next("hello", wait)
        assert hello is not None, "the worker never said hello"
        self.send(*protocol.encode("welcome", version=protocol.PROTOCOL_VERSION, keepalive=0.5, timeout=silence))
        return hello

    def send(self, *frames):
        self.socket.send_multipart([self.identity, *frames])

    def task(self, task_id, payload=b"", **fields):
        fields.setdefault("resources", {"cores": 1})
        self.send(*protocol.encode("task", [payload], task_id=task_id, **fields))

    def put(self, data, xfer, name_digest=None):
        digest = name_digest or fastio.hash_bytes(data)
        self.send(*protocol.encode("put", xfer=xfer, digest=digest, size=len(data)))
        self.send(*protocol.encode("chunk", [data], xfer=xfer, seq=0, last=True, digest=fastio.hash_bytes(data)))
        return digest

    def next(self, msg_type, timeout=15.0):
        """The next message of this type from the worker, or None."""
        deadline = time.monotonic() + timeout
        while True:
            for i, message in enumerate(self.waiting):
                if message.type == msg_type:
                    return self.waiting.pop(i)
            left = deadline - time.monotonic()
            if left <= 0 or not self.socket.poll(int(left * 1000) + 1):
                return None
            self.identity, *frames = self.socket.recv_multipart()
            self.waiting.extend(protocol.decode(part) for part in protocol.split(frames))

    def results(self, count, timeout=30.0):
        found = {}
        deadline = time.monotonic() + timeout
        while len(found) < count:
            result = self.next("result", deadline - time.monotonic())
            assert result is not None, f"only {sorted(found)} of {count} results came back"
            found[result["task_id"]] = result
        return found

    def close(self):
        self.socket.close(0)


@pytest.fixture
def master():
    fake = FakeMaster()
    yield fake
    fake.close()


def start_worker(port, workdir, *args):
    """A worker process; what it logs goes to a file beside its -s directory."""
    log = open(f"{workdir}.{len(os.listdir(os.path.dirname(workdir)))}.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "workqueue.worker", "127.0.0.1", str(port), "-t", "60",
                                "-s", str(workdir), "--cores", "1", *args], stderr=log)
    process.log_path = log.name
    log.close()
    return process


def workspaces(workdir):
    return sorted(name for name in os.listdir(workdir) if name.startswith(f"worker-{UID}-"))


def paths_outside(root, workdir):
    """Every path below ``root`` that is not a worker's workspace, inside one, or a worker's log."""
    inside = [os.path.join(workdir, name) for name in workspaces(workdir)]
    return sorted(path for parent, dirs, files in os.walk(root) for path in
                  (os.path.join(parent, name) for name in dirs + files)
                  if not path.endswith(".log") and not any(path == w or path.startswith(w + os.sep) for w in inside))


@pytest.fixture
def layout(tmp_path):
    """tmp/outer/work is the worker's -s: a sandbox's ../../x is work/x, ../../../x is outer/x."""
    workdir = tmp_path / "outer" / "work"
    workdir.mkdir(parents=True)
    return tmp_path, workdir


def test_a_hostile_master_cannot_make_the_worker_write_outside_its_workspace_or_die(master, layout):
    root, workdir = layout
    before = paths_outside(root, workdir)
    worker = start_worker(master.port, workdir)
    try:
        master.welcome()
        victim = str(root / "abs-victim")
        digest = master.put(b"evil bytes", xfer=1)
        hostile = {
            1: dict(command="true", inputs=[[digest, "../../x", 0o644, False]]),
            2: dict(command="true", inputs=[[digest, "../../../x", 0o644, False]]),
            3: dict(command="true", inputs=[[digest, victim, 0o644, False]]),
            4: dict(command="true", inputs=[["", "../../dir-escape", 0o755, False]]),
            5: dict(command="true", inputs=[["", victim + "-dir", 0o755, False]]),
            6: dict(command="true", inputs=[["../../x", "in", 0o644, False]]),
            7: dict(command="true", kind="no-such-kind"),
            8: dict(kind="function", call={"file": "../../../x"}),
            9: dict(command="true", resources={"cores": float("nan")}),
        }
        for task_id, fields in hostile.items():
            master.task(task_id, **fields)
        master.put(b"more evil", xfer=2, name_digest="../../x")
        master.put(b"more evil", xfer=3, name_digest="/" + str(root / "abs-digest"))
        for junk in ([b""], [b"\x00\xff"], [b"not msgpack at all"], [b"\x81\xa1t\xa4task"],
                     [msgpack.packb({"t": "task", "task_id": "ten"})],
                     [msgpack.packb({"t": "chunk", "xfer": 1, "seq": 0})],
                     [msgpack.packb({"t": "bundle", "n": [5]}), b"x"],
                     [msgpack.packb({"t": "put", "xfer": 9, "digest": 5, "size": -1})],
                     [msgpack.packb([1, 2, 3])], [b"\x92" * 50_000]):
            master.send(*junk)
        master.task(100, command="echo alive")
        results = master.results(len(hostile) + 1)
        assert results[100]["result"] == Result.SUCCESS and results[100].payload[0] == b"alive\n"
        for task_id in hostile:
            assert results[task_id]["result"] == Result.UNKNOWN, (task_id, results[task_id].payload)
        assert worker.poll() is None
        assert paths_outside(root, workdir) == before
        assert not os.path.exists(victim) and not os.path.exists(victim + "-dir")
    finally:
        stop(worker)


def test_a_frame_over_the_largest_legitimate_one_drops_the_connection_not_the_worker(master, layout):
    _, workdir = layout
    worker = start_worker(master.port, workdir)
    try:
        master.welcome(silence=2.0)
        first = master.identity
        master.send(b"\x00" * (protocol.MAX_FRAME_BYTES + 1))
        # ZeroMQ ends a connection that breaks the protocol for good (no reconnection): our
        # heartbeats no longer reach the worker, which gives us up after the silence and says
        # hello again. Had it read the frame, the heartbeats would have kept its session going.
        deadline = time.monotonic() + 20
        while master.next("hello", timeout=0.3) is None:
            assert time.monotonic() < deadline, "the worker kept its connection"
            master.send(*protocol.encode("heartbeat"))
        assert master.identity != first
        master.send(*protocol.encode("welcome", version=protocol.PROTOCOL_VERSION, keepalive=0.5, timeout=30.0))
        master.task(1, command="echo still here")
        assert master.results(1)[1].payload[0] == b"still here\n"
        assert worker.poll() is None
    finally:
        stop(worker)


def test_stdout_larger_than_a_result_may_carry_is_cut_with_a_note(master, layout):
    _, workdir = layout
    worker = start_worker(master.port, workdir)
    try:
        master.welcome()
        master.task(1, command=f"head -c {protocol.RESULT_PAYLOAD_MAX + 5000} /dev/zero; echo end")
        result = master.results(1, timeout=60)[1]
        stdout = bytes(result.payload[0])
        assert result["result"] == Result.SUCCESS
        assert len(stdout) <= protocol.RESULT_PAYLOAD_MAX
        kept = len(stdout) - len(stdout.rsplit(b"\n... [", 1)[1]) - len(b"\n... [")
        assert stdout.endswith(b"\n... [stdout truncated at %d bytes]\n" % kept)
        assert stdout[:kept] == b"\x00" * kept
    finally:
        stop(worker)


def test_a_function_outcome_larger_than_a_result_may_carry_fails_with_a_clear_message(master, layout):
    _, workdir = layout
    worker = start_worker(master.port, workdir)
    try:
        master.welcome()
        master.task(1, cloudpickle.dumps((bytes, (protocol.RESULT_PAYLOAD_MAX + 1,), {})), kind="function")
        master.task(2, cloudpickle.dumps((len, ("fine",), {})), kind="function")
        results = master.results(2, timeout=60)
        assert results[1]["result"] == Result.UNKNOWN
        status, error, _, _ = cloudpickle.loads(results[1].payload[0])
        assert status == "error" and "over the 64 MiB a result may carry: write it to an output file" in str(error)
        assert results[2]["result"] == Result.SUCCESS and cloudpickle.loads(results[2].payload[0])[1] == 4
    finally:
        stop(worker)


def test_an_input_larger_than_the_disk_budget_is_disk_alloc_full_not_forsaken(master, layout):
    _, workdir = layout
    worker = start_worker(master.port, workdir, "--disk", "1")
    try:
        master.welcome()
        data = os.urandom((1 << 20) + 1)
        digest = fastio.hash_bytes(data)
        master.send(*protocol.encode("put", xfer=1, digest=digest, size=len(data)))
        for seq, start in enumerate(range(0, len(data), 1 << 19)):
            piece = data[start:start + (1 << 19)]
            last = start + len(piece) == len(data)
            master.send(*protocol.encode("chunk", [piece], xfer=1, seq=seq, last=last,
                                         digest=digest if last else ""))
        master.task(1, command="true", inputs=[[digest, "big.dat", 0o644, True]])
        result = master.results(1)[1]
        assert result["result"] == Result.DISK_ALLOC_FULL
        message = result.payload[0].decode()
        assert "'big.dat'" in message and f"{len(data)} bytes" in message and f"{1 << 20} bytes" in message
        assert not any(os.scandir(os.path.join(workdir, workspaces(workdir)[0], "cache", "tmp")))
    finally:
        stop(worker)


def test_a_killed_workers_workspace_is_removed_by_the_next_worker_and_a_live_ones_kept(master, layout):
    _, workdir = layout
    others = [f"worker-{UID + 1}-5", "worker-x", f"worker-{UID}-77", f"not-worker-{UID}-5"]
    for name in others:  # another user's, not a workspace's name, one without a lock (an older worker)
        os.makedirs(workdir / name)
    open(workdir / f"worker-{UID + 1}-5" / "worker.lock", "w").close()
    dead = start_worker(master.port, workdir)
    live = start_worker(master.port, workdir)
    try:
        dead_space, live_space = f"worker-{UID}-{dead.pid}", f"worker-{UID}-{live.pid}"
        assert wait_for(lambda: {dead_space, live_space} <= set(workspaces(workdir)))
        dead.send_signal(signal.SIGKILL)
        dead.wait()
        assert dead_space in workspaces(workdir), "SIGKILL leaves the workspace behind"
        latest = start_worker(master.port, workdir, "-d", "all")
        try:
            assert wait_for(lambda: f"worker-{UID}-{latest.pid}" in workspaces(workdir))
            assert dead_space not in workspaces(workdir)
            assert live_space in workspaces(workdir)
            assert all(os.path.isdir(workdir / name) for name in others)
        finally:
            stop(latest)
        with open(latest.log_path) as log_file:
            log = log_file.read()
        assert f"removed {workdir / dead_space}, the workspace of a worker that is gone" in log
        assert f"worker-{UID}-{latest.pid}" not in workspaces(workdir), "a worker removes its own on exit"
    finally:
        for process in (dead, live):
            stop(process)
