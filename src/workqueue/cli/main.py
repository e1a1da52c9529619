"""``workqueue``: the project's command group."""
from __future__ import annotations

import importlib
import logging
import sys
from typing import List, Optional

import click

from .run import run

# commands that live in their own rooms, each imported when it is named (or --help lists them):
# their imports (the dashboard's web server, the catalog's urllib) were a fifth of ``workqueue run``'s
LAZY_COMMANDS = {"status": "status", "factory": "factory", "catalog": "catalog", "dashboard": "dashboard",
                 "plot": "plot"}


class _Commands(click.Group):
    """A group whose commands in LAZY_COMMANDS are added when present (their module imports)."""

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name in LAZY_COMMANDS and name not in self.commands:
            try:
                self.add_command(getattr(importlib.import_module(f"{__package__}.{name}"), LAZY_COMMANDS[name]))
            except (ImportError, AttributeError):
                return None
        return super().get_command(ctx, name)

    def list_commands(self, ctx: click.Context) -> List[str]:
        for name in LAZY_COMMANDS:
            self.get_command(ctx, name)
        return super().list_commands(ctx)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-d", "--debug", is_flag=True, help="Log debug messages to stderr.")
@click.version_option(package_name="workqueue")
def main(debug: bool) -> None:
    """workqueue: a distributed task queue for Python, in the family of CCTools Work Queue."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


@main.command()
def info() -> None:
    """Show versions and which file-transfer backend is active."""
    import zmq

    from .. import __version__
    from ..constants import PROTOCOL_VERSION
    from ..data import fastio
    click.echo(f"workqueue {__version__} (protocol {PROTOCOL_VERSION})")
    click.echo(f"python {sys.version.split()[0]}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}")
    click.echo(f"fastio backend: {fastio.BACKEND}")


@main.command("worker", context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run a worker (same as zmq-worker / work_queue_worker)."""
    from .worker import main as worker_main
    worker_main(ctx.args)


main.add_command(run)
