"""``workqueue status`` / ``work_queue_status``: ask a running master how it is doing, or, with no
HOST PORT, list the masters the catalog knows (as CCTools' work_queue_status does), with CCTools' flags."""
from __future__ import annotations

import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional, Sequence, Tuple

import click

from .. import catalog as catalog_room
from .. import status as status_room
from ..scheduling.capacity import FIGURES as CAPACITY_FIGURES
from ..wire.auth import read_password_file
from . import compat

HUNGRY = "HUNGRY_FOR_TASKS"  # CCTools' 'hungry': the master wants more tasks (not more workers)


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
    headers = ["MASTER", "WAITING", "RUNNING", "COMPLETED", "FAILED", "WORKERS", "BUSY", "CORES", HUNGRY]
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


def _categories(tasks: List[Dict[str, Any]], workers: List[Dict[str, Any]]) -> str:
    """CCTools' -A: per category, its running and waiting tasks, its largest task, and how many
    connected workers could run that largest task."""
    largest: Dict[str, Dict[str, float]] = {}
    counts: Dict[str, List[int]] = {}
    for t in tasks:
        if t.get("task_id") is None:
            continue
        name = str(t.get("category") or "default")
        counts.setdefault(name, [0, 0])[0 if t.get("state") == "RUNNING" else 1] += 1
        for key, value in (t.get("resources") or {}).items():
            if isinstance(value, (int, float)):
                largest.setdefault(name, {})[key] = max(value, largest.get(name, {}).get(key, 0))
    rows = []
    for name, (running, waiting) in sorted(counts.items()):
        need = largest.get(name, {})
        fit = sum(1 for w in workers if all((w.get("resources") or {}).get(k, 0) >= v for k, v in need.items()))
        rows.append([name, running, waiting, fit, _num(need.get("cores")), _num(need.get("memory")),
                     _num(need.get("disk"))])
    return _table(["CATEGORY", "RUNNING", "WAITING", "FIT-WORKERS", "MAX-CORES", "MAX-MEMORY", "MAX-DISK"], rows)


def _verbose(data: Any) -> str:
    """CCTools' -l: every field, one 'key: value' line each; a blank line between records."""
    records = data if isinstance(data, list) else [data]
    return "\n\n".join("\n".join(f"{k}: {json.dumps(v, default=str) if isinstance(v, (dict, list)) else v}"
                                 for k, v in sorted(r.items())) for r in records)


# -- the masters the catalog knows -------------------------------------------------------------------
def _catalog_masters(where: Optional[str], name: Optional[str], timeout: float,
                     password: Optional[bytes]) -> List[Dict[str, Any]]:
    """The catalog's live records (whose name matches ``name``), each with its master's queue
    figures under 'queue' (None when the master did not answer in time)."""
    pattern = re.compile(name) if name else None
    records = [r for r in catalog_room.records(where)
               if pattern is None or pattern.fullmatch(str(r.get("name", "")))]

    def ask(record: Dict[str, Any]) -> Dict[str, Any]:
        try:
            queue = status_room.query(record["host"], int(record["port"]), "queue", timeout, password)
        except (TimeoutError, ConnectionError, PermissionError, OSError, ValueError):
            queue = None
        return dict(record, queue=queue)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(ask, records))


def _catalog_table(masters: List[Dict[str, Any]], resources: bool) -> str:
    if resources:
        headers = ["PROJECT", "HOST", "PORT", "WORKERS", "CORES", "MEMORY", "DISK", "GPUS"]
        keys = ("workers_connected", "total_cores", "total_memory", "total_disk", "total_gpus")
    else:
        headers = ["PROJECT", "HOST", "PORT", "WAITING", "RUNNING", "COMPLETE", "WORKERS"]
        keys = ("tasks_waiting", "tasks_running", "tasks_done", "workers_connected")
    rows = [[m.get("name"), m.get("host"), m.get("port"), *(_num((m["queue"] or {}).get(k)) for k in keys)]
            for m in masters]
    return _table(headers, rows)


def _show_catalog(where: Optional[str], name: Optional[str], what: str, verbose: bool, as_json: bool,
                  timeout: float, password: Optional[bytes]) -> None:
    masters = _catalog_masters(where, name, min(timeout, 5.0), password)
    if as_json:
        click.echo(json.dumps(masters, indent=1, sort_keys=True, default=str))
    elif verbose:
        click.echo(_verbose(masters))
    else:
        click.echo(_catalog_table(masters, resources=what == "resources"))


def _capacity(queue: Dict[str, Any]) -> str:
    if not queue.get("capacity_tasks"):
        return "this master makes no capacity estimate (it has not called estimate_capacity, or no task has finished)"
    return "\n".join(f"{name:<24} {queue.get(name, 0)}" for name in CAPACITY_FIGURES)


# -- one master --------------------------------------------------------------------------------------
def _show_master(host: str, port: int, what: str, verbose: bool, as_json: bool, timeout: float,
                 password: Optional[bytes]) -> None:
    def ask(kind: str) -> Any:
        return status_room.query(host, port, kind, timeout, password)

    try:
        if what == "categories":
            data: Any = {"tasks": ask("tasks"), "workers": ask("workers")}
        else:
            data = ask("queue" if what in ("resources", "capacity") else what)
    except (TimeoutError, ConnectionError, PermissionError) as error:
        click.echo(f"workqueue status: {error}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(json.dumps(data, indent=1, sort_keys=True, default=str))
    elif verbose and what != "categories":
        click.echo(_verbose(data))
    elif what == "workers":
        click.echo(_workers(data))
    elif what == "tasks":
        click.echo(_tasks(data))
    elif what == "categories":
        click.echo(_categories(data["tasks"], data["workers"]))
    elif what == "capacity":
        click.echo(_capacity(data))
    else:
        click.echo(_summary(host, port, data))


@click.command("status", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("host", required=False)
@click.argument("port", required=False)
@click.option("-Q", "--statistics", "what", flag_value="queue", default=True, help="Summary of the master (default).")
@click.option("-M", "--project-name", help="Without HOST PORT: only the masters whose name matches this.")
@click.option("-W", "--workers", "what", flag_value="workers", help="One line per connected worker.")
@click.option("-T", "--tasks", "what", flag_value="tasks", help="One line per task the master holds.")
@click.option("-A", "--able-workers", "what", flag_value="categories",
              help="Per category: tasks, largest task, and the workers that can run it.")
@click.option("-R", "--resources", "what", flag_value="resources",
              help="Without HOST PORT: the workers' resources of every master in the catalog.")
@click.option("--capacity", "what", flag_value="capacity",
              help="The master's capacity estimate: how many workers it could keep busy (estimate_capacity).")
@click.option("-l", "--verbose", is_flag=True, help="Every field, one 'key: value' line each.")
@click.option("-C", "--catalog", help="Catalog server HOST:PORT or catalog directory (default: $CATALOG_HOST, "
                                      "else $WORKQUEUE_CATALOG_DIR or ~/.workqueue/catalog).")
@click.option("-d", "--debug", multiple=True, help="Log debug messages ('-d all').")
@compat.ignored("--where", why="no expression filter; use -M NAME")
@click.option("-t", "--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for an answer.")
@click.option("-o", "--debug-file", help="Write the debug log here.")
@click.option("-O", "--debug-rotate-max", type=click.IntRange(min=0), help="Rotate the debug file past this many bytes.")
@click.version_option(None, "-v", "--version", package_name="workqueue")
@click.option("--json", "as_json", is_flag=True, help="Print the raw data as JSON.")
@click.option("-P", "--password", "password_file", type=click.Path(exists=True, dir_okay=False),
              help="Password file of a master that has one.")
def status(host: Optional[str], port: Optional[str], what: str, project_name: Optional[str], verbose: bool,
           catalog: Optional[str], debug: Tuple[str, ...], timeout: float, debug_file: Optional[str],
           debug_rotate_max: Optional[int], as_json: bool, password_file: Optional[str]) -> None:
    """Show a running master's queue, workers (-W), tasks (-T) or categories (-A): HOST PORT or
    HOST:PORT. With neither, list the masters the catalog knows."""
    compat.configure_logging(debug, debug_file, debug_rotate_max)
    password = read_password_file(password_file) if password_file else None
    if host is None:
        if what in ("workers", "tasks", "categories", "capacity"):
            raise click.UsageError("-W, -T, -A and --capacity need a master's HOST PORT")
        _show_catalog(catalog, project_name, what, verbose, as_json, timeout, password)
        return
    number = _address(host, port)
    _show_master(number[0], number[1], what, verbose, as_json, timeout, password)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The ``work_queue_status`` console script."""
    status.main(args=list(argv) if argv is not None else None, prog_name="work_queue_status")
