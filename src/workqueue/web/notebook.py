"""HTML for Jupyter (``_repr_html_``) of a Manager, a Task and an Executor: the essentials in a small
table, from figures already at hand (no request to the master's loop)."""
from __future__ import annotations

import html
from typing import Any, Iterable, Tuple

OUTPUT_CHARS = 500


def _table(title: str, rows: Iterable[Tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td style='text-align:left'>"
                    f"{v if isinstance(v, _Html) else html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<div><b>{html.escape(title)}</b><table>{cells}</table></div>"


class _Html(str):
    """Already HTML: not escaped again."""


def _link(url: str) -> _Html:
    return _Html(f"<a href='{html.escape(url)}' target='_blank'>{html.escape(url)}</a>")


def manager_html(manager: Any) -> str:
    s = manager._loop.snapshot
    rows = [("port", manager.port)]
    if manager.name:
        rows.append(("name", manager.name))
    if manager.dashboard_url:
        rows.append(("dashboard", _link(manager.dashboard_url)))
    rows += [
        ("tasks", f"{s['tasks_waiting']} waiting, {s['tasks_running']} running, {s['tasks_done']} done, "
                  f"{s['tasks_failed']} failed (of {s['tasks_submitted']} submitted)"),
        ("workers", f"{s['workers_connected']} connected ({s['workers_busy']} busy)"),
        ("cores", f"{s['total_cores'] - s['free_cores']:g} of {s['total_cores']:g} booked"),
    ]
    return _table("workqueue Manager" + (" (closed)" if manager._closed else ""), rows)


def task_html(task: Any) -> str:
    rows = [("id", task.id if task.id is not None else "not submitted"), ("command", task.command),
            ("category", task.category)]
    if task.tag:
        rows.append(("tag", task.tag))
    result = task.result
    if result is None:
        rows.append(("state", "submitted, not returned by wait()" if task.id is not None else "new"))
    else:
        rows += [("result", f"{result.name}, exit {task.return_status}"), ("worker", task.worker_id),
                 ("attempts", task.attempts)]
        times = task.times
        if times.get("done") and times.get("dispatch"):
            rows.append(("took", f"{times['done'] - times['dispatch']:.3f} s from dispatch to result"))
        output = task.output
        if isinstance(output, str) and output:
            cut = output[:OUTPUT_CHARS] + ("…" if len(output) > OUTPUT_CHARS else "")
            rows.append(("output", _Html(f"<pre>{html.escape(cut)}</pre>")))
    return _table(type(task).__name__, rows)


def executor_html(executor: Any) -> str:
    m = executor.manager
    s = m._loop.snapshot
    rows = [("manager port", m.port), ("futures pending", len(executor._futures)),
            ("workers", f"{s['workers_connected']} connected"
                        + (f" ({executor._workers.n} started here)" if executor._workers is not None else "")),
            ("tasks", f"{s['tasks_done']} done, {s['tasks_failed']} failed")]
    if m.dashboard_url:
        rows.append(("dashboard", _link(m.dashboard_url)))
    return _table("workqueue Executor" + (" (shut down)" if executor._shutdown else ""), rows)
