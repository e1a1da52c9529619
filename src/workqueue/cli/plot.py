"""``workqueue plot LOGFILE -o out.png``: tasks, workers and throughput over time from a master's
performance log (``specify_log``), as CCTools' ``work_queue_graph_log`` draws them."""
from __future__ import annotations

from typing import Any

import click

from ..web import perflog

SERIES = {  # panel -> (column, label) pairs
    "tasks": (("tasks_waiting", "waiting"), ("tasks_running", "running")),
    "workers": (("workers_connected", "connected"), ("workers_busy", "busy")),
}


@click.command("plot", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("logfile", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default="workqueue-log.png", show_default=True, help="The PNG to write.")
@click.option("--title", help="Title above the plots (default: the log's name).")
def plot(logfile: str, output: str, title: str) -> None:
    """Draw tasks, workers and throughput over time from LOGFILE (a performance log)."""
    try:
        log = perflog.read(logfile)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    if not log.seconds:
        raise click.ClickException(f"{logfile}: the log has a header but no sample yet")
    try:
        import matplotlib
    except ImportError:
        raise click.ClickException("workqueue plot needs matplotlib: pip install 'workqueue[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    _lines(axes[0], log, "tasks", "tasks")
    _lines(axes[1], log, "workers", "workers")
    _throughput(axes[2], log)
    axes[2].set_xlabel("seconds since the first sample")
    figure.suptitle(title or logfile)
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    click.echo(f"wrote {output} ({len(log.seconds)} samples over {log.seconds[-1]:.0f} s)")


def _lines(ax: Any, log: perflog.PerformanceLog, panel: str, ylabel: str) -> None:
    for column, label in SERIES[panel]:
        if log.get(column):
            ax.step(log.seconds, log.get(column), where="post", label=label)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)


def _throughput(ax: Any, log: perflog.PerformanceLog) -> None:
    done, failed = log.rate("tasks_done"), log.rate("tasks_failed")
    if done:
        ax.step(log.seconds, done, where="pre", label="done per second")
    if failed and any(failed):
        ax.step(log.seconds, failed, where="pre", label="failed per second", color="tab:red")
    ax.set_ylabel("throughput (tasks/s)")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
