"""Workers on this machine, started and stopped from Python: no terminal, no ``os.popen``.

They are quiet (``--quiet``): their state changes, which a batch job's output should show, would
only interleave with the program that started them; warnings and errors still come through.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any, List, Optional, Sequence


class LocalWorkers:
    """``n`` worker processes connected to ``host:port``; stopped (and their tasks with them) on exit."""

    def __init__(self, n: int, port: int, host: str = "localhost", *, cores: Optional[float] = None,
                 memory: Optional[int] = None, disk: Optional[int] = None, timeout: float = 900,
                 password_file: Optional[str] = None, extra: Sequence[str] = (),
                 stderr: Any = None) -> None:
        self.command = worker_command(host, port, cores=cores, memory=memory, disk=disk, timeout=timeout,
                                      password_file=password_file, extra=extra)
        self.n = n
        self.stderr = stderr
        self.processes: List[subprocess.Popen] = []

    def start(self) -> "LocalWorkers":
        for _ in range(self.n):
            self.processes.append(subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stderr=self.stderr))
        return self

    def stop(self, grace: float = 10.0) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def __enter__(self) -> "LocalWorkers":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def worker_command(host: str, port: int, *, cores: Optional[float] = None, memory: Optional[int] = None,
                   disk: Optional[int] = None, timeout: float = 900, password_file: Optional[str] = None,
                   extra: Sequence[str] = ()) -> List[str]:
    """The command line that starts one worker from this very installation."""
    command = [sys.executable, "-m", "workqueue.worker", host, str(port), "-t", str(timeout), "--quiet"]
    for flag, value in (("--cores", cores), ("--memory", memory), ("--disk", disk), ("-P", password_file)):
        if value is not None:
            command += [flag, str(value)]
    return command + list(extra)


def local_workers(n: int, port: Any, **options: Any) -> LocalWorkers:
    """``with local_workers(2, manager): ...`` (a Manager or a port number)."""
    port = getattr(port, "port", port)
    return LocalWorkers(n, port, **options)
