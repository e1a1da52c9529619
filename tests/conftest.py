import os
import subprocess
import sys
import time

import pytest

import workqueue as wq

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture
def manager():
    m = wq.Manager(port=0, keepalive_interval=0.5, keepalive_timeout=3)
    yield m
    m.close()


@pytest.fixture
def worker(manager):
    """A real worker process with two cores, connected to ``manager``."""
    process = start_worker(manager.port, "--cores", "2")
    yield process
    stop(process)


def dealer(port):
    """A raw DEALER socket on the master's port: a stranger, a fake worker, or a status client."""
    import zmq
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://localhost:{port}")
    return sock


def start_worker(port, *args, stderr=None):
    """A real worker process from this installation."""
    return subprocess.Popen([sys.executable, "-m", "workqueue.worker", "localhost", str(port), "-t", "60", *args],
                            stderr=stderr)


def stop(process, grace=10):
    if process.poll() is None:
        process.terminate()
    try:
        return process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def wait_for(predicate, timeout=10.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def drain(manager, timeout=30.0):
    """Every task the manager returns until it is empty."""
    done = []
    deadline = time.monotonic() + timeout
    while not manager.empty():
        assert time.monotonic() < deadline, f"tasks still pending after {timeout} s: {manager.tasks()}"
        task = manager.wait(1)
        if task is not None:
            done.append(task)
    return done
