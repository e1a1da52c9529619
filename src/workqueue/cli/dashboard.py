"""``workqueue dashboard HOST PORT``: serve the live dashboard of a master running elsewhere, asking
it over its own port as ``workqueue status`` does (the same page a ``Manager(dashboard=...)`` serves)."""
from __future__ import annotations

import threading
from typing import Optional

import click

from .. import status as status_room
from ..web import server, source
from ..wire.auth import read_password_file
from .status import _address


@click.command("dashboard", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("host")
@click.argument("port", required=False)
@click.option("-P", "--password", "password_file", type=click.Path(exists=True, dir_okay=False),
              help="Password file of the master; bound anywhere but 127.0.0.1, the dashboard's token derives from it.")
@click.option("--port", "http_port", type=click.IntRange(0, 65535), default=server.DEFAULT_PORT, show_default=True,
              help="Port of the dashboard (0: any free one).")
@click.option("--bind", default="127.0.0.1", show_default=True,
              help="Address the dashboard listens on; any but this machine's own needs -P.")
@click.option("-t", "--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for the master.")
def dashboard(host: str, port: Optional[str], password_file: Optional[str], http_port: int, bind: str,
              timeout: float) -> None:
    """Serve the dashboard of the master at HOST PORT (or HOST:PORT) until interrupted."""
    master_host, master_port = _address(host, port)
    password = read_password_file(password_file) if password_file else None
    try:
        status_room.query(master_host, master_port, "queue", timeout, password)
    except (TimeoutError, ConnectionError, PermissionError) as error:
        raise click.ClickException(str(error)) from None
    try:
        served = server.start(source.remote(master_host, master_port, password, timeout), http_port, bind)
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"dashboard of {master_host}:{master_port} at {served.url} (Ctrl-C to stop)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        served.close()
