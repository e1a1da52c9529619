"""``workqueue status`` / ``work_queue_status``: ask a running master how it is doing."""
from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import click

from .. import status as status_room
from ..auth import read_password_file


def _address(host: str, port: Optional[str]) -> Tuple[str, int]:
    """HOST PORT or HOST:PORT."""
    if port is None:
        if ":" not in host:
            raise click.UsageError("give HOST PORT or HOST:PORT")
        host, port = host.rsplit(":", 1)
    try:
        return host, int(port)
    except ValueError:
        raise click.UsageError(f"not a port number: {port!r}") from None


def _table(headers: Sequence[str], rows: List[Sequence[Any]]) -> str:
    """Left-aligned columns, CCTools style."""
    cells = [[str(h) for h in headers]] + [["-" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "-" if value is None else str(value)


def _summary(host: str, port: int, q: Dict[str, Any]) -> str:
    headers = ["MASTER", "WAITING", "RUNNING", "COMPLETED", "FAILED", "WORKERS", "BUSY", "CORES", "HUNGRY"]
    used = _num((q.get("total_cores") or 0) - (q.get("free_cores") or 0))
    row = [f"{host}:{port}", q.get("tasks_waiting"), q.get("tasks_running"), q.get("tasks_done"),
           q.get("tasks_failed"), q.get("workers_connected"), q.get("workers_busy"),
           f"{used}/{_num(q.get('total_cores'))}", "yes" if q.get("hungry") else "no"]
    return _table(headers, [row])


def _workers(rows: List[Dict[str, Any]]) -> str:
    headers = ["WORKER", "HOST", "RUNNING", "COMPLETED", "CORES", "MEMORY", "DISK", "CACHED"]
    out = []
    for w in rows:
        res, free = w.get("resources") or {}, w.get("free") or {}

        def used(key: str) -> str:
            total = res.get(key)
            if total is None:
                return "-"
            return f"{_num(total - free.get(key, total))}/{_num(total)}"
        out.append([w.get("worker_id"), w.get("hostname"), w.get("running"), w.get("completed"),
                    used("cores"), used("memory"), used("disk"), w.get("cached_files")])
    return _table(headers, out)


def _tasks(rows: List[Dict[str, Any]]) -> str:
    headers = ["ID", "STATE", "PRIORITY", "WORKER", "ATTEMPTS", "CATEGORY", "COMMAND"]
    out = []
    for t in rows:
        command = str(t.get("command") or "")
        out.append([t.get("task_id"), t.get("state"), _num(t.get("priority")), t.get("worker"),
                    t.get("attempts"), t.get("category"), command if len(command) <= 60 else command[:57] + "..."])
    return _table(headers, out)


@click.command("status", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("host")
@click.argument("port", required=False)
@click.option("-Q", "what", flag_value="queue", default=True, help="Summary of the master (default).")
@click.option("-W", "what", flag_value="workers", help="One line per connected worker.")
@click.option("-T", "what", flag_value="tasks", help="One line per task the master holds.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw data as JSON.")
@click.option("-t", "--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for an answer.")
@click.option("-P", "--password", "password_file", type=click.Path(exists=True, dir_okay=False),
              help="Password file of a master that has one.")
def status(host: str, port: Optional[str], what: str, as_json: bool, timeout: float,
           password_file: Optional[str]) -> None:
    """Show a running master's queue, workers (-W) or tasks (-T): HOST PORT or HOST:PORT."""
    host, number = _address(host, port)
    password = read_password_file(password_file) if password_file else None
    try:
        data = status_room.query(host, number, what, timeout, password)
    except (TimeoutError, ConnectionError, PermissionError) as error:
        click.echo(f"workqueue status: {error}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(data, indent=1, sort_keys=True, default=str))
    elif what == "workers":
        click.echo(_workers(data))
    elif what == "tasks":
        click.echo(_tasks(data))
    else:
        click.echo(_summary(host, number, data))


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The ``work_queue_status`` console script."""
    status.main(args=list(argv) if argv is not None else None, prog_name="work_queue_status")
