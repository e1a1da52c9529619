"""``workqueue catalog``: run a catalog server, or query one (``--list``)."""
from __future__ import annotations

import json
import logging
import signal
from typing import Optional

import click

from .. import catalog as catalog_room

logger = logging.getLogger(__name__)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@click.command("catalog")
@click.option("-p", "--port", type=int, default=catalog_room.DEFAULT_CATALOG_PORT, show_default=True,
              help="TCP (queries, POST /update) and UDP (updates) port.")
@click.option("--bind", default="", help="Address to listen on (default: all interfaces).")
@click.option("--max-age", type=float, default=catalog_room.MAX_AGE, show_default=True,
              help="Seconds after which a master that stopped updating is forgotten.")
@click.option("-l", "--list", "list_", is_flag=True,
              help="Do not serve: list the masters in the catalog (see -C) and exit.")
@click.option("-C", "--catalog", "where", default=None,
              help="With --list: HOST:PORT of a catalog server, or a catalog directory "
                   "(default: $CATALOG_HOST/$CATALOG_PORT, else $WORKQUEUE_CATALOG_DIR or ~/.workqueue/catalog).")
@click.option("--json", "as_json", is_flag=True, help="With --list: print the records as JSON.")
def catalog(port: int, bind: str, max_age: float, list_: bool, where: Optional[str], as_json: bool) -> None:
    """Run a catalog server that masters advertise to and `-M NAME` workers look up."""
    if list_:
        found = catalog_room.records(where, max_age)
        if as_json:
            click.echo(json.dumps(found, indent=1))
        for record in [] if as_json else found:
            click.echo(f"{record['name']}\t{record['host']}:{record['port']}\t{record.get('owner', '')}")
        return
    server = catalog_room.CatalogServer(bind, port, max_age=max_age)
    signal.signal(signal.SIGTERM, _interrupt)
    click.echo(f"catalog server listening on {bind or '*'}:{server.port}", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
