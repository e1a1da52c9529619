"""Running one task: its directory, its process group, its limits, and what it used."""
from __future__ import annotations

import os
import shutil
import signal
import time
from typing import Any, Dict, List, Optional, Tuple

import psutil

from ..constants import Result
from ..data.cache import Cache, is_digest
from ..wire.names import is_clean_remote_name
from ..wire.protocol import RESULT_PAYLOAD_MAX
from .archives import link_unpacked
from .gpus import device_env

MB = 1 << 20
SAMPLE_INTERVAL = 0.5  # seconds between measurements of a task's process tree


class SandboxDirs:
    """Empty task directories, kept for the next task instead of removed.

    On a journaled local disk a mkdir and an rmdir cost more than running a trivial task (240 us
    against ~300 us on this project's test machine), so a finished task's directory is emptied and
    handed to the next one. Each directory ``s.<n>`` has its task's stdout beside it in ``s.<n>.out``,
    outside the sandbox, where the task cannot mistake it for one of its own files.
    """

    def __init__(self, workspace: str, keep: int = 256) -> None:
        self.workspace = workspace
        self.coprocess_root = workspace  # where coprocesses look for ``t.<task_id>`` (the worker may move it)
        self.keep = keep
        self._free: List[str] = []
        self._spare_named: List[str] = []  # emptied ``t.<n>`` directories, parked as ``c.<n>``
        self._made = 0

    def take(self, task_id: int, coprocess_name: bool = False, on_disk: bool = False) -> str:
        """An empty directory; ``t.<task_id>`` in the coprocess root when a coprocess must find it by
        that name (a spare one renamed: a rename costs a tenth of a mkdir here). ``on_disk``: in the
        workspace, the coprocess root holding a symlink to it, for a call that needs room."""
        if coprocess_name:
            path = os.path.join(self.coprocess_root, f"t.{task_id}")
            if on_disk and self.coprocess_root != self.workspace:
                return self._linked(path)
            if self._spare_named:
                try:
                    os.rename(self._spare_named[-1], path)  # fails if ``path`` is there and not empty
                    self._spare_named.pop()
                    return path
                except OSError:
                    pass
            _remove(path)
            os.makedirs(path)
            return path
        if self._free:
            return self._free.pop()
        self._made += 1
        path = os.path.join(self.workspace, f"s.{self._made}")
        _remove(path)
        os.makedirs(path)
        return path

    def give_back(self, path: str, known_empty: bool = False, reuse: bool = True) -> None:
        """Empty the directory (unless the caller has just seen it empty); keep it for reuse, or
        remove it."""
        base = os.path.basename(path)
        named = base.startswith("t.")
        if named and os.path.dirname(path) != self.coprocess_root:  # on disk, behind a symlink
            _remove(os.path.join(self.coprocess_root, base))
            _remove(path)
            return
        reusable = reuse and (named or base.startswith("s.")) and \
            len(self._spare_named if named else self._free) < self.keep and (known_empty or _empty(path))
        if not reusable:
            _remove(path)
            _remove(path + ".out")
        elif not named:
            self._free.append(path)
        elif not self._park(path):
            _remove(path)

    def _linked(self, link: str) -> str:
        path = os.path.join(self.workspace, os.path.basename(link))
        _remove(path)
        os.makedirs(path)
        _remove(link)
        os.symlink(path, link)
        return path

    def _park(self, path: str) -> bool:
        """Keep an emptied ``t.<n>`` directory as a spare under a name of its own."""
        self._made += 1
        spare = os.path.join(self.coprocess_root, f"c.{self._made}")
        try:
            os.rename(path, spare)
        except OSError:
            return False
        self._spare_named.append(spare)
        return True


ROOM_IN_MEMORY_MAX = 64  # MB: a coprocess call that declares more disk gets its sandbox on disk
CACHED_IN_MEMORY_MAX = 1 << 20  # bytes of cached inputs copied into a sandbox in memory, at most


def _needs_room(task: Dict[str, Any], cache: Optional[Cache]) -> bool:
    """Whether a coprocess call belongs on disk rather than in memory: it declares more disk than a
    few small files need, it has archives to unpack, or its cached inputs (which a sandbox in
    memory gets as copies, not links) are large."""
    if (task["declared"].get("disk") or 0) > ROOM_IN_MEMORY_MAX or task.get("unpack"):
        return True
    total = 0
    for digest, _, _, _ in task["inputs"]:
        if digest and cache is not None and cache.has(digest):
            try:
                total += os.stat(cache.path(digest)).st_size
            except OSError:
                pass
    return total > CACHED_IN_MEMORY_MAX


def _empty(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
        return True
    except OSError:
        return False


def _tree_size(path: str) -> Tuple[int, int]:
    """Bytes in the files below ``path`` and how many entries it holds (-1 if it cannot be read),
    symlinks not followed (one scandir for an empty sandbox)."""
    total = count = 0
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                count += 1
                total += _entry_size(entry)
    except OSError:
        count = -1
    return total, count


def _entry_size(entry: os.DirEntry) -> int:
    """0 for an entry that vanished meanwhile (a task deleting its temporary files), so that the
    rest of the tree is still counted."""
    try:
        if entry.is_dir(follow_symlinks=False):
            return _tree_size(entry.path)[0]
        return entry.stat(follow_symlinks=False).st_size
    except OSError:
        return 0


class UnsafeName(ValueError):
    """A file name from the master that would take a write (or a read) outside the sandbox."""


def inside(root: str, name: str) -> str:
    """The real path of ``name`` in the sandbox whose real path is ``root``.

    The name must be a plain relative path (see ``names.is_clean_remote_name``), and its resolved
    path, symlinks included, must still be below ``root``: an earlier input, or anything else in
    the sandbox, may be a symlink. Raises UnsafeName otherwise."""
    if not is_clean_remote_name(name):
        raise UnsafeName(f"file name {str(name)[:200]!r} is not a plain relative path inside the sandbox")
    real = os.path.realpath(os.path.join(root, name))
    if not real.startswith(root + os.sep):
        raise UnsafeName(f"file name {name[:200]!r} resolves to {real[:200]!r}, outside the sandbox")
    return real


_TRUNCATED = b"\n... [stdout truncated at %d bytes]\n"


def truncated_stdout(path: str, limit: int = RESULT_PAYLOAD_MAX) -> bytes:
    """The file's bytes, or its first ones and a note saying where it was cut, at most ``limit``
    bytes in all: a result may carry no more."""
    size = os.stat(path).st_size  # read(limit) would allocate limit bytes up front
    if not size:
        return b""
    with open(path, "rb") as f:
        if size <= limit:
            return f.read(size)
        kept = limit - len(_TRUNCATED % limit)
        return f.read(kept) + _TRUNCATED % kept


def _write_new(target: str, mode: int, data: bytes) -> None:
    """An input that came inside the task message (inline_files.py), written where no file is yet."""
    parent = os.path.dirname(target)
    if not os.path.isdir(parent):
        os.makedirs(parent)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode & 0o777 | 0o400)
    except FileExistsError:
        raise ValueError(f"input {os.path.basename(target)!r} is given twice") from None
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.unlink(path)


class Sandbox:
    """A task's private directory and the shell that runs its command in it."""

    def __init__(self, dirs: SandboxDirs, task: Dict[str, Any], call_payload: bytes = b"",
                 cache: Optional[Cache] = None) -> None:
        self.task = task
        self.call_payload = call_payload
        self.task_id: int = task["task_id"]
        self.attempt: int = task["attempt"]
        self.allocation: Tuple = tuple(sorted(task["resources"].items()))  # hashable: compared often
        self._dirs = dirs
        remote = task["kind"] == "remote"
        self.dir = dirs.take(self.task_id, coprocess_name=remote, on_disk=remote and _needs_room(task, cache))
        self.pid = 0
        self.exit_code: Optional[int] = None
        self.pidfd = -1
        self.start_time = 0.0
        self.killed_for: Optional[Tuple[Result, Dict[str, float]]] = None
        self.in_pool = False  # a function call already waiting in a pooled process's pipe
        self.devices: Tuple[str, ...] = ()  # the GPUs this task holds while it runs (see gpus.py)
        self._linked: List[str] = []
        self.peak_memory = 0.0
        self.peak_disk = 0.0
        self.next_sample = 0.0
        self._left_empty = False

    @property
    def linked(self) -> Tuple[str, ...]:
        """The digests of the cached inputs this task has staged (and pinned)."""
        return tuple(self._linked)

    def stage(self, cache: Cache) -> Optional[str]:
        """Write the inputs that came inline, and link every other input from the cache into the
        sandbox; return the digest of one that is absent.

        Raises UnsafeName for an input that would land outside the sandbox, and ValueError for a
        digest that is not one; nothing is written for either."""
        inputs = self.task["inputs"]
        files = self.task.get("files")
        if not inputs and not files:
            return None
        root = os.path.realpath(self.dir)
        for name, mode, data in files or ():
            _write_new(inside(root, name), mode, data)
        unpack = self.task.get("unpack")
        for digest, name, mode, keep in inputs:
            target = inside(root, name)
            if not digest:
                os.makedirs(target, exist_ok=True)
                continue
            if not cache.has(digest):
                if not is_digest(digest):
                    raise ValueError(f"input {name!r}: {str(digest)[:80]!r} is not a digest")
                return digest
            if unpack and name in unpack:
                if not link_unpacked(cache, digest, target):
                    return digest
                cache.use(digest, keep)  # the archive, held while the task runs
                self._linked.append(digest)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            cache.use(digest, keep)
            self._linked.append(digest)
            try:
                os.link(cache.path(digest), target)
            except FileExistsError:
                raise ValueError(f"input {name!r} is given twice") from None
            except OSError:
                shutil.copyfile(cache.path(digest), target)
            os.chmod(target, mode & 0o777 | 0o400)
        return None

    def task_env(self) -> Dict[str, Optional[str]]:
        """What this task adds to the worker's environment (None: remove the variable)."""
        env: Dict[str, Optional[str]] = {name: None if value is None else str(value)
                                         for name, value in self.task["env"].items()}
        for name, value in self.task["resources"].items():
            env[name.upper()] = str(int(value)) if float(value).is_integer() else str(value)
        if self.devices:
            env.update(device_env(self.devices))
        env["WORK_QUEUE_SANDBOX"] = env["WORKQUEUE_SANDBOX"] = self.dir
        return env

    @property
    def stdout_path(self) -> str:
        return self.dir + ".out"

    def mark_started(self) -> None:
        """For calls that run in a long-lived process rather than a process of their own."""
        self.start_time = time.time()

    def call(self) -> bytes:
        """A function task's pickled call: in the message, or staged as a file when large."""
        name = self.task["call"].get("file")
        if not name:
            return self.call_payload
        with open(inside(os.path.realpath(self.dir), name), "rb") as f:
            return f.read()

    def finish_call(self, times: Optional[Tuple[float, float]] = None) -> Dict[str, float]:
        """What a pooled call used; ``times`` are its start and end as its process saw them."""
        start, end = times if times else (self.start_time, time.time())
        return {"wall_time": end - start, "start": start, "end": end, "disk": self._final_disk_used() / MB}

    def start(self, base_env: Dict[str, str]) -> int:
        """Start ``/bin/sh -c command`` in its own session; return a pidfd that turns readable at exit."""
        env = dict(base_env)
        for name, value in self.task_env().items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        # posix_spawn (vfork + exec) costs a fraction of subprocess.Popen; it has no cwd argument
        # before Python 3.13, so the single-threaded worker steps into the sandbox to spawn
        os.chdir(self.dir)
        self.pid = os.posix_spawn("/bin/sh", ["/bin/sh", "-c", self.task["command"]], env, setsid=True,
                                  file_actions=[
                                      (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                                      (os.POSIX_SPAWN_OPEN, 1, self.stdout_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                                      (os.POSIX_SPAWN_DUP2, 1, 2),
                                  ])
        self.start_time = time.time()
        self.next_sample = self.start_time + SAMPLE_INTERVAL / 5  # short tasks are never sampled
        self.pidfd = os.pidfd_open(self.pid)
        return self.pidfd

    def kill(self, reason: Optional[Tuple[Result, Dict[str, float]]] = None) -> None:
        """Kill the task's whole process group."""
        if reason is not None and self.killed_for is None:
            self.killed_for = reason
        if self.pid and self.exit_code is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def reap(self) -> Tuple[int, Dict[str, float]]:
        """Collect the exit status and what the task used (blocks only if it has not exited)."""
        _, status, usage = os.wait4(self.pid, 0)
        self.exit_code = os.waitstatus_to_exitcode(status)
        os.close(self.pidfd)
        self.pidfd = -1
        end = time.time()
        self._kill_leftovers()
        measured = {
            "wall_time": end - self.start_time,
            "cpu_time": usage.ru_utime + usage.ru_stime,
            "memory": usage.ru_maxrss / 1024.0,  # MB
            "start": self.start_time,
            "end": end,
        }
        measured["cores"] = measured["cpu_time"] / measured["wall_time"] if measured["wall_time"] > 0 else 0.0
        measured["memory"] = max(measured["memory"], self.peak_memory)
        measured["disk"] = max(self.peak_disk, self._final_disk_used() / MB)
        return self.exit_code, measured

    def sample(self, now: float, declared: Dict[str, float]) -> Optional[Dict[str, float]]:
        """Measure the process tree's memory and the sandbox's disk; return the limits exceeded."""
        if now < self.next_sample or not self.pid:  # pooled calls have no process of their own
            return None
        self.next_sample = now + SAMPLE_INTERVAL
        memory = self._tree_rss() / MB
        self.peak_memory = max(self.peak_memory, memory)
        exceeded = {}
        if declared.get("memory") and memory > declared["memory"]:
            exceeded["memory"] = declared["memory"]
        if declared.get("disk"):
            self.peak_disk = max(self.peak_disk, self.disk_used() / MB)
            if self.peak_disk > declared["disk"]:
                exceeded["disk"] = declared["disk"]
        return exceeded or None

    def _tree_rss(self) -> int:
        try:
            root = psutil.Process(self.pid)
            family = [root] + root.children(recursive=True)
        except psutil.Error:
            return 0
        total = 0
        for process in family:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _kill_leftovers(self) -> None:
        """Background processes the command left behind die with it."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stdout(self) -> bytes:
        """What the command wrote, cut to what a result may carry."""
        try:
            return truncated_stdout(self.stdout_path)
        except FileNotFoundError:
            return b""

    def outputs(self) -> Tuple[List[Tuple[str, str]], List[str]]:
        """Declared outputs as (name, path) inside the sandbox, and the names missing.

        A directory output yields one entry per file below it. A name that resolves outside the
        sandbox (through a symlink) counts as missing: it is never read, let alone sent.
        """
        present, missing = [], []
        if not self.task["outputs"]:
            return present, missing
        root = os.path.realpath(self.dir)
        for name in self.task["outputs"]:
            real = os.path.realpath(os.path.join(self.dir, name))
            if not (real == root or real.startswith(root + os.sep)):
                missing.append(name)
            elif os.path.isfile(real):
                present.append((name, real))
            elif os.path.isdir(real):
                present.extend(self._files_below(name, real, root))
            else:
                missing.append(name)
        return present, missing

    @staticmethod
    def _files_below(name: str, directory: str, root: str) -> List[Tuple[str, str]]:
        found = []
        for parent, _, files in os.walk(directory):
            for file_name in sorted(files):
                real = os.path.realpath(os.path.join(parent, file_name))
                if real.startswith(root + os.sep) and os.path.isfile(real):
                    rel = os.path.relpath(os.path.join(parent, file_name), directory)
                    found.append((f"{name}/{rel}", real))
        return found

    def disk_used(self) -> int:
        return _tree_size(self.dir)[0]

    def _final_disk_used(self) -> int:
        """Disk use once the task has ended; an empty sandbox then needs no emptying."""
        size, entries = _tree_size(self.dir)
        self._left_empty = entries == 0
        return size

    def cleanup(self, cache: Cache, reuse: bool = True) -> None:
        """Release the task's cached inputs and give its directory back (``reuse=False``: remove
        it, for a task that may still be running somewhere)."""
        for digest in self._linked:
            cache.release(digest)
        self._linked.clear()
        self._dirs.give_back(self.dir, known_empty=self._left_empty, reuse=reuse)
