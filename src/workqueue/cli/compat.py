"""CCTools flags for the command lines: those with no meaning here are accepted, so that existing
scripts run, with a one-line warning; and the logging flags (-d, -o, -O) that several tools share."""
from __future__ import annotations

import logging
import logging.handlers
import socket
import sys
from typing import Any, Callable, Optional, Sequence

import click

NOT_HERE = "no meaning here"


def ignored(*decls: str, why: str, takes_value: bool = True) -> Callable[[Any], Any]:
    """A click option that is accepted, says ``warning: FLAG has no meaning here (WHY); ignored``
    when given, and is not passed to the command. Its help says the same."""
    def warn(context: click.Context, param: click.Parameter, value: Any) -> None:
        if value not in (None, False, ()):
            flag = max(param.opts, key=len)
            click.echo(f"{context.info_name}: warning: {flag} has {NOT_HERE} ({why}); ignored", err=True)

    return click.option(*decls, is_flag=not takes_value, expose_value=False, callback=warn,
                        help=f"Accepted for CCTools scripts, {NOT_HERE}: {why}.")


def warn(context: click.Context, text: str) -> None:
    """One warning line on stderr, named after the command."""
    click.echo(f"{context.info_name}: warning: {text}", err=True)


def configure_logging(debug: Sequence[str], debug_file: Optional[str], rotate_bytes: Optional[int] = None,
                      quiet_level: int = logging.WARNING) -> None:
    """``-d FLAG`` (any flag, 'all' included) turns on debug messages; ``-o FILE`` sends them to a
    file (``:stderr`` and ``:stdout`` as CCTools takes them), rotated past ``rotate_bytes``."""
    handler: logging.Handler
    if debug_file in (None, ":stderr"):
        handler = logging.StreamHandler(sys.stderr)
    elif debug_file == ":stdout":
        handler = logging.StreamHandler(sys.stdout)
    elif rotate_bytes:
        handler = logging.handlers.RotatingFileHandler(debug_file, maxBytes=rotate_bytes, backupCount=1)
    else:
        handler = logging.FileHandler(debug_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.DEBUG if debug else quiet_level, handlers=[handler], force=True)


def check_resolves(host: str, port: int) -> None:
    """A UsageError, before anything is submitted, if the master's host name does not resolve."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise click.UsageError(f"cannot resolve the master's host {host!r}: {getattr(error, 'strerror', error)}; "
                               f"nothing submitted") from None
