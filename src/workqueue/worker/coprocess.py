"""The worker side of the CCTools/Parsl coprocess protocol (``work_queue_worker --coprocess CMD``).

A coprocess is a long-lived program the worker starts once:

1. ``/bin/sh -c CMD`` with cwd = the worker's workspace, in its own process group (see
   :func:`_launch_argv` for how it dies with the worker);
2. it writes ``<len>\\n{"name": NAME, "port": N}`` on its stdout and listens on localhost:N;
3. per call the worker sends ``<fn_name> <taskid> <len>\\n<json>`` on one TCP connection it keeps
   open, and reads back ``<len>\\n<json>`` (Parsl: ``{"Result": ..., "StatusCode": 200}``, or 500).
   The coprocess chdirs into ``t.<taskid>`` under its cwd for the call, so task sandboxes must be
   named that way and ``taskid`` must be an integer.
4. Closing kills the whole process group (``/bin/sh -c`` may have forked).

Lengths count characters (Parsl's coprocess uses text-mode streams), which for the ASCII JSON of
``json.dumps`` equals bytes; replies are decoded incrementally as UTF-8 to count them right anyway.

Non-blocking use, like :class:`workqueue.worker.pyfunc.FunctionPool` (no threads): ``submit``, poll
``fileno()``, ``collect()``. :meth:`Coprocess.call` is a blocking convenience built on the same.
"""
from __future__ import annotations

import codecs
import json
import logging
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Tuple

logger = logging.getLogger(__name__)

START_TIMEOUT = 30.0
READ_SIZE = 64 << 10  # a recv of 1 MiB allocates 1 MiB first: 15 us where 64 KiB costs 1.3 us
Outcome = Tuple[str, str, str]  # (task_id, status "ok" | "error" | "died", reply JSON text)


class CoprocessError(RuntimeError):
    """The coprocess could not be started, or broke the protocol."""


class Coprocess:
    """One coprocess: ``start()`` -> its name; ``submit``/``collect`` or ``call``; ``close()``."""

    def __init__(self, command: str, workdir: str, env: Optional[Dict[str, str]] = None) -> None:
        self.command = command
        self.workdir = os.path.abspath(workdir)
        self.env = dict(os.environ, **{str(k): str(v) for k, v in (env or {}).items()})
        self.name: Optional[str] = None
        self.port: Optional[int] = None
        self.process: Optional[subprocess.Popen] = None
        self.task_id: Optional[str] = None  # the call in flight, if any
        self._sock: Optional[socket.socket] = None
        self._selector: Optional[selectors.BaseSelector] = None
        self._reset_reply()

    # -- life cycle ----------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> str:
        """Start the program, read its name and port, connect. Blocks up to ``timeout`` seconds."""
        self.process = subprocess.Popen(_launch_argv(self.command), cwd=self.workdir, env=self.env,
                                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            config = json.loads(self._read_announcement(deadline))
            self.name, self.port = str(config["name"]), int(config["port"])
            self._sock = self._connect(deadline)
        except BaseException:
            self.close()
            raise
        os.set_blocking(self.process.stdout.fileno(), False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._sock, selectors.EVENT_READ, "reply")
        self._selector.register(self.process.stdout, selectors.EVENT_READ, "stdout")
        logger.info("coprocess %r (pid %d) listening on port %d", self.name, self.process.pid, self.port)
        return self.name

    def close(self) -> None:
        """Kill the coprocess's process group and wait for it. Safe to call twice."""
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.process is not None:
            _kill_group(self.process)
            if self.process.stdout:
                self.process.stdout.close()
            self.process = None

    def __enter__(self) -> "Coprocess":
        if self.process is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and self._sock is not None

    # -- calls ---------------------------------------------------------------------------------
    def fileno(self) -> int:
        """Readable when a reply (or the coprocess's own stdout chatter, or its death) is waiting."""
        if self._selector is None:
            raise CoprocessError("coprocess is not running")
        return self._selector.fileno()

    def submit(self, fn_name: str, task_id: str, payload_json: str) -> bool:
        """Send one call; False if a call is already in flight. The send itself blocks (loopback)."""
        if self._sock is None:
            raise CoprocessError("coprocess is not running")
        if self.task_id is not None:
            return False
        if not str(task_id).isdigit() or not fn_name or any(c.isspace() for c in fn_name):
            raise ValueError(f"bad coprocess call {fn_name!r} {task_id!r}")
        self.task_id = str(task_id)
        self._reset_reply()
        data = f"{fn_name} {task_id} {len(payload_json)}\n{payload_json}".encode("utf-8")
        try:
            self._sock.sendall(data)
        except OSError as exc:
            logger.warning("coprocess %s: send failed: %s", self.name, exc)  # collect() reports it
        return True

    def collect(self) -> List[Outcome]:
        """The finished call, if any, without blocking: ``[(task_id, status, reply_json)]``."""
        if self._selector is None:
            return []
        outcomes: List[Outcome] = []
        for key, _ in self._selector.select(0):
            if self._selector is None:
                break  # it died and was closed
            if key.data == "stdout":
                self._drain_stdout()
            else:
                outcome = self._read_reply()
                if outcome is not None and outcome[0]:
                    outcomes.append(outcome)
        return outcomes

    def call(self, fn_name: str, task_id: str, payload_json: str, timeout: Optional[float] = None) -> str:
        """Blocking call; returns the reply JSON. On timeout the coprocess is killed (TimeoutError)."""
        if not self.submit(fn_name, task_id, payload_json):
            raise CoprocessError("a call is already in flight")
        deadline = None if timeout is None else time.monotonic() + timeout
        poller = selectors.DefaultSelector()
        poller.register(self.fileno(), selectors.EVENT_READ)
        try:
            while True:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    self.close()
                    raise TimeoutError(f"coprocess call {fn_name} {task_id} took longer than {timeout} s")
                poller.select(left)
                for _, status, reply in self.collect():
                    if status == "died":
                        raise CoprocessError(reply)
                    return reply
        finally:
            poller.close()

    # -- internals -------------------------------------------------------------------------------
    def _read_announcement(self, deadline: float) -> str:
        """``<len>\\n<json>`` from the coprocess's stdout, read without blocking past the deadline."""
        fd = self.process.stdout.fileno()
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                if b"\n" in buf:
                    head, rest = buf.split(b"\n", 1)
                    try:
                        size = int(head)
                    except ValueError:
                        raise CoprocessError(f"coprocess {self.command!r} said {head[:80]!r}, not a length")
                    if len(rest) >= size:
                        return rest[:size].decode("utf-8")
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise CoprocessError(f"coprocess {self.command!r} did not announce its port in time")
                chunk = os.read(fd, 4096)  # one byte too many is harmless: stdout is drained later
                if not chunk:
                    code = self.process.wait()
                    raise CoprocessError(f"coprocess {self.command!r} exited ({code}) before announcing a port")
                buf += chunk

    def _connect(self, deadline: float) -> socket.socket:
        """Parsl's coprocess announces the port before it calls listen(): retry refused connects."""
        while True:
            try:
                sock = socket.create_connection(("localhost", self.port), timeout=5)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setblocking(False)
                return sock
            except ConnectionRefusedError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise CoprocessError(f"coprocess {self.command!r} refused connections on port {self.port}")
                time.sleep(0.01)

    def _reset_reply(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._size: Optional[int] = None

    def _drain_stdout(self) -> None:
        try:
            data = os.read(self.process.stdout.fileno(), 65536)
        except BlockingIOError:
            return
        if data:
            logger.debug("coprocess %s stdout: %r", self.name, data[:200])
        else:
            self._selector.unregister(self.process.stdout)  # closed its stdout; the socket tells death

    def _read_reply(self) -> Optional[Outcome]:
        eof = False
        while True:
            try:
                data = self._sock.recv(READ_SIZE)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:
                eof = True
                break
            self._text += self._decoder.decode(data)
        if self._size is None and "\n" in self._text:
            head, self._text = self._text.split("\n", 1)
            try:
                self._size = int(head)
            except ValueError:
                return self._died(f"coprocess {self.name} sent {head[:80]!r}, not a length")
        if self._size is not None and len(self._text) >= self._size:
            reply = self._text[:self._size]
            task_id, self.task_id = self.task_id or "", None
            self._reset_reply()
            return (task_id, _status_of(reply), reply)
        if eof:
            return self._died(f"coprocess {self.name} closed the connection"
                              f"{' (exit ' + str(self.process.poll()) + ')' if self.process.poll() is not None else ''}")
        return None

    def _died(self, why: str) -> Outcome:
        logger.warning("%s", why)
        task_id, self.task_id = self.task_id or "", None
        self.close()
        return (task_id, "died", json.dumps({"Result": why, "StatusCode": 500}))


_SIMPLE_COMMAND = re.compile(r"[\w./+-]+( +[\w./+=:,@%-]+)*")


def _launch_argv(command: str) -> List[str]:
    """``/bin/sh -c CMD``; for a simple command on Linux, ``setpriv --pdeathsig KILL /bin/sh -c 'exec CMD'``
    so that the coprocess itself (the shell execs it) dies with the worker even on SIGKILL. The
    death signal fires when the *thread* that started it ends: start coprocesses from the worker's
    main thread. Compound commands keep a forking shell (killed with its group by ``close()``)."""
    if sys.platform.startswith("linux") and _SIMPLE_COMMAND.fullmatch(command) and shutil.which("setpriv"):
        return ["setpriv", "--pdeathsig", "KILL", "/bin/sh", "-c", "exec " + command]
    return ["/bin/sh", "-c", command]


def _status_of(reply: str) -> str:
    try:
        return "ok" if json.loads(reply).get("StatusCode") == 200 else "error"
    except (ValueError, AttributeError):
        return "error"


def _kill_group(process: subprocess.Popen, grace: float = 1.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left after ``grace`` seconds."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            process.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # the group may outlive its leader (a forked grandchild): finish it
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class CoprocessPool:
    """``size`` coprocesses of one command (``--coprocess``: one per core by default).

    Same shape as FunctionPool: ``submit(task_id, fn_name, payload_json) -> bool``, ``fileno()``
    (one stable fd), ``collect() -> [(task_id, status, reply_json, None)]`` (the shape of
    :meth:`workqueue.worker.pyfunc.FunctionPool.collect`, with no times), ``kill(task_id)``, ``close()``.
    A coprocess that dies is restarted (synchronously, in ``collect``/``kill``).
    """

    def __init__(self, command: str, workdir: str, size: int, env: Optional[Dict[str, str]] = None) -> None:
        if size < 1:
            raise ValueError("a CoprocessPool needs at least one coprocess")
        self.command, self.workdir, self.env = command, workdir, env
        self._selector = selectors.DefaultSelector()
        self._members: List[Coprocess] = []
        self.name: Optional[str] = None
        try:
            for _ in range(size):
                self._start_one()
        except BaseException:
            self.close()
            raise

    def _start_one(self) -> Coprocess:
        member = Coprocess(self.command, self.workdir, self.env)
        self.name = member.start()
        self._selector.register(member.fileno(), selectors.EVENT_READ, member)
        self._members.append(member)
        return member

    def _drop(self, member: Coprocess) -> None:
        for key in list(self._selector.get_map().values()):
            if key.data is member:
                self._selector.unregister(key.fileobj)
        self._members.remove(member)
        member.close()

    @property
    def size(self) -> int:
        return len(self._members)

    def fileno(self) -> int:
        return self._selector.fileno()

    def idle(self) -> int:
        return sum(1 for m in self._members if m.task_id is None)

    def submit(self, task_id: str, fn_name: str, payload_json: str) -> bool:
        member = next((m for m in self._members if m.task_id is None), None)
        return member is not None and member.submit(fn_name, task_id, payload_json)

    def collect(self) -> List[Tuple[str, str, str, None]]:
        outcomes: List[Tuple[str, str, str, None]] = []
        for key, _ in self._selector.select(0):
            member: Coprocess = key.data
            outcomes.extend((*outcome, None) for outcome in member.collect())
            if not member.alive():
                self._drop(member)
                self._start_one()
        return outcomes

    def kill(self, task_id: str) -> bool:
        """Stop a call: its coprocess is killed and a new one started. No outcome is reported."""
        member = next((m for m in self._members if m.task_id == str(task_id)), None)
        if member is None:
            return False
        self._drop(member)
        self._start_one()
        return True

    def close(self) -> None:
        for member in list(self._members):
            self._drop(member)
        self._selector.close()

    def __enter__(self) -> "CoprocessPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
