"""``workqueue factory`` / ``work_queue_factory``: keep workers alive on a batch system for a master."""
from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Optional, Sequence

import click

from .. import batch
from ..factory import Factory

logger = logging.getLogger(__name__)


@click.command("factory", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("host", required=False)
@click.argument("port", required=False, type=int)
@click.option("-T", "--batch-type", default="local", show_default=True, type=click.Choice(sorted(batch.SYSTEMS)),
              help="Batch system to submit workers to.")
@click.option("-M", "--manager-name", default=None, help="Serve the master with this name (catalog lookup).")
@click.option("-w", "--min-workers", type=int, default=1, show_default=True)
@click.option("-W", "--max-workers", type=int, default=10, show_default=True)
@click.option("--cores", type=float, default=None)
@click.option("--memory", type=int, default=None, help="MB per worker.")
@click.option("--disk", type=int, default=None, help="MB per worker.")
@click.option("-t", "--timeout", type=float, default=900, show_default=True, help="Worker idle timeout (s).")
@click.option("-P", "--password", "password_file", default=None, help="Password file for the workers.")
@click.option("-E", "--extra-options", "extra_worker_options", default="", help="Extra worker options.")
@click.option("-B", "--batch-options", "extra_batch_options", default="", help="Extra batch submit options.")
@click.option("--interval", type=float, default=5.0, show_default=True, help="Seconds between cycles.")
def factory(host: Optional[str], port: Optional[int], batch_type: str, manager_name: Optional[str],
            min_workers: int, max_workers: int, cores: Optional[float], memory: Optional[int],
            disk: Optional[int], timeout: float, password_file: Optional[str], extra_worker_options: str,
            extra_batch_options: str, interval: float) -> None:
    """Keep MIN..MAX workers of a batch type alive for the master at HOST PORT (or HOST:PORT, or -M NAME)."""
    if manager_name is None:
        if host is None:
            raise click.UsageError("give HOST PORT, HOST:PORT or -M NAME")
        if port is None:
            if ":" not in host:
                raise click.UsageError("give HOST PORT or HOST:PORT")
            host, port_text = host.rsplit(":", 1)
            port = int(port_text)
    if min_workers > max_workers:
        raise click.UsageError("--min-workers is larger than --max-workers")
    pool = Factory(batch_type, None if manager_name else f"{host}:{port}", manager_name,
                   min_workers=min_workers, max_workers=max_workers, cores=cores, memory=memory, disk=disk,
                   timeout=timeout, password_file=password_file, extra_worker_options=extra_worker_options,
                   extra_batch_options=extra_batch_options, interval=interval)
    done = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    click.echo(f"factory: {batch_type} workers for {manager_name or f'{host}:{port}'} "
               f"({min_workers}..{max_workers})", err=True)
    with pool:
        while not done.wait(0.2):
            pass
    click.echo("factory: canceled its workers, exiting", err=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The ``work_queue_factory`` console script."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    factory.main(args=list(argv) if argv is not None else None, prog_name="work_queue_factory")


if __name__ == "__main__":
    main(sys.argv[1:])
