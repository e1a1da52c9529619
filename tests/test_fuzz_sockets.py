"""Fuzzing over real sockets: hostile messages (those of test_fuzz_protocol, and valid ones out of
place) sent to a real master by strangers and by admitted workers, and to a real worker process by
a fake master. Neither ever stops serving: afterwards a real worker completes tasks on the master,
and the worker runs a task of its fake master; the worker writes nothing outside its workspace.

The default run is one round of hypothesis examples each (a few hundred messages); the soak (marked
slow) runs rounds for about a minute each when WORKQUEUE_SOAK_SCALE=ci.
"""
import os
import time

import msgpack
import pytest
import zmq
from conftest import dealer, drain, start_worker, stop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_protocol import hostile_messages, valid_messages

import workqueue as wq
from workqueue.constants import PROTOCOL_VERSION, Result
from workqueue.wire import protocol

SOAK_SECONDS = {"ci": 60.0}.get(os.environ.get("WORKQUEUE_SOAK_SCALE", ""), 10.0)
RESOURCES = {"cores": 1, "memory": 100, "disk": 100, "gpus": 0}
# what a master may legitimately send to end a worker or its session: not fuzzed; and tasks, whose
# commands the worker would run (random text is not for /bin/sh)
NOT_TO_WORKERS = {"shutdown", "reject", "reset", "bye", "task"}


def valid_frames():
    return valid_messages().map(_packed).filter(lambda frames: frames is not None)


def _packed(typed):
    """Frames of a valid message, or None for one msgpack cannot pack (a lone surrogate in a str)."""
    msg_type, fields = typed
    try:
        header = msgpack.packb({"t": msg_type, **fields}, use_bin_type=True)
    except UnicodeEncodeError:
        return None
    return [header] + ([b"payload"] if msg_type in ("result", "task", "chunk") else [])


batches = st.lists(st.one_of(hostile_messages(), valid_frames()), min_size=1, max_size=16)
FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


ROUND_EXAMPLES = 50


def run_until(attack, deadline):
    """Run the hypothesis test in rounds of ROUND_EXAMPLES examples, at least one, until ``deadline``."""
    attack()
    while time.monotonic() < deadline:
        attack()


def message_type(frames):
    try:
        header = msgpack.unpackb(frames[0], raw=False, strict_map_key=False)
    except Exception:
        return None
    kind = header.get("t") if isinstance(header, dict) else None
    return kind if isinstance(kind, str) else None


def join(m):
    sock = dealer(m.port)
    sock.send_multipart(protocol.hello("fuzzer", "fuzzhost", RESOURCES))
    return sock


def fuzz_master(seconds):
    with wq.Manager(port=0, keepalive_interval=0.5, keepalive_timeout=5) as m:
        m.submit(wq.Task("true", cores=1, outputs=["never"]))  # something for fake workers to be given
        deadline = time.monotonic() + seconds
        sent = [0]

        @settings(FUZZ, max_examples=ROUND_EXAMPLES)
        @given(batches, st.booleans())
        def attack(batch, as_worker):
            sock = join(m) if as_worker else dealer(m.port)
            for frames in batch:
                sock.send_multipart(frames)
            sent[0] += len(batch)
            time.sleep(0.005)
            sock.close()
            assert m._loop.failure is None and m._thread.is_alive()

        run_until(attack, deadline)
        time.sleep(0.5)
        assert m._loop.failure is None and m._thread.is_alive()
        m.cancel_by_category("default")
        process = start_worker(m.port, "--cores", "1")
        try:
            for i in range(5):
                m.submit(wq.Task(f"echo {i}"))
            done = drain(m, timeout=60)
            assert sorted(t.output.strip() for t in done) == [str(i) for i in range(5)]
            assert all(t.result == Result.SUCCESS for t in done)
        finally:
            stop(process)
        return sent[0], m.stats


def test_a_master_survives_hostile_messages_and_still_serves():
    sent, stats = fuzz_master(seconds=0)
    assert sent > 0 and stats["messages_dropped"] > 0


@pytest.mark.slow
def test_soak_a_master_under_hostile_messages():
    sent, stats = fuzz_master(seconds=SOAK_SECONDS)
    print(f"\nmaster fuzz soak: {sent} messages, {stats['messages_dropped']} dropped, "
          f"{stats['messages_failed']} failed handlers, {stats['workers_removed']} workers removed")


class FakeMaster:
    """A ROUTER socket that admits one real worker process and then says what it likes."""

    def __init__(self, tmp_path):
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        port = self.sock.bind_to_random_port("tcp://127.0.0.1")
        self.workdir = tmp_path / "work"
        self.cwd = tmp_path / "cwd"
        self.workdir.mkdir()
        self.cwd.mkdir()
        here = os.getcwd()
        os.chdir(self.cwd)
        try:
            self.process = start_worker(port, "--cores", "1", "-s", str(self.workdir))
        finally:
            os.chdir(here)
        assert self.sock.poll(15000), "the worker never said hello"
        self.identity, *frames = self.sock.recv_multipart()
        assert protocol.decode(frames).type == "hello"
        self.send(protocol.encode("welcome", version=PROTOCOL_VERSION, keepalive=1.0, timeout=60.0))

    def send(self, frames):
        self.sock.send_multipart([self.identity, *frames])

    def drain(self):
        while self.sock.poll(0):
            self.sock.recv_multipart()

    def run_a_task(self):
        """The worker runs a valid task and reports it."""
        self.send(protocol.encode("task", [b""], task_id=10 ** 9, attempt=1, command="echo alive",
                                  resources={"cores": 1}))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.sock.poll(1000):
                continue
            _, *frames = self.sock.recv_multipart()
            for part in protocol.split(frames):
                message = protocol.decode(part)
                if message.type == "result" and message["task_id"] == 10 ** 9:
                    return message
        raise AssertionError("the worker did not report the task")

    def close(self):
        stop(self.process)
        self.sock.close(0)


def fuzz_worker(tmp_path, seconds):
    master = FakeMaster(tmp_path)
    try:
        deadline = time.monotonic() + seconds
        sent = [0]

        @settings(FUZZ, max_examples=ROUND_EXAMPLES)
        @given(batches)
        def attack(batch):
            for frames in batch:
                if message_type(frames) not in NOT_TO_WORKERS:
                    master.send(frames)
                    sent[0] += 1
            master.drain()
            assert master.process.poll() is None, "the worker died"

        run_until(attack, deadline)
        assert master.process.poll() is None, "the worker died"
        result = master.run_a_task()
        assert result["result"] == Result.SUCCESS and protocol.as_bytes(result.payload[0]) == b"alive\n"
        assert os.listdir(master.cwd) == [], "the worker wrote in its working directory"
        assert [p for p in os.listdir(master.workdir) if not p.startswith("worker-")] == []
        assert sorted(os.listdir(tmp_path)) == ["cwd", "work"]
        return sent[0]
    finally:
        master.close()


def test_a_worker_survives_hostile_messages_and_still_runs_tasks(tmp_path):
    assert fuzz_worker(tmp_path, seconds=0) > 0


@pytest.mark.slow
def test_soak_a_worker_under_hostile_messages(tmp_path):
    sent = fuzz_worker(tmp_path, seconds=SOAK_SECONDS)
    print(f"\nworker fuzz soak: {sent} messages")


def test_a_challenge_after_the_welcome_is_dropped(tmp_path):
    """Found by the fuzzer: a worker without a password quit on a challenge that came after its welcome."""
    master = FakeMaster(tmp_path)
    try:
        master.send(protocol.encode("challenge", nonce=b"n" * 32))
        master.send(protocol.encode("welcome", version=PROTOCOL_VERSION, keepalive=1.0, timeout=60.0))
        assert master.run_a_task()["result"] == Result.SUCCESS
        assert master.process.poll() is None
    finally:
        master.close()
