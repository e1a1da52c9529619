"""``zmq-worker`` / ``work_queue_worker``: the worker's command line, in CCTools' style."""
from __future__ import annotations

import logging
import sys
from typing import Optional, Tuple

import click

from .. import validation
from ..wire.auth import read_password_file
from ..worker.main import Options, Worker
from . import compat

FOREMEN = "there are no foremen here (no hierarchy of masters)"


def _split_address(args: Tuple[str, ...], manager_name: Optional[str]) -> Tuple[Optional[str], Optional[int]]:
    if manager_name:
        if args:
            raise click.UsageError("give either -M NAME or HOST PORT, not both")
        return None, None
    if len(args) == 1 and ":" in args[0]:
        host, port = args[0].rsplit(":", 1)
    elif len(args) == 2:
        host, port = args
    else:
        raise click.UsageError("expected HOST PORT (or HOST:PORT, or -M NAME)")
    try:
        return host, int(port)
    except ValueError:
        raise click.UsageError(f"port {port!r} is not a number") from None


def _offered(context: click.Context, param: click.Parameter, value: Optional[float]) -> Optional[float]:
    """What a worker offers of a resource: a finite number >= 0, or nothing said (detect it)."""
    try:
        return validation.resource("", param.name, value)
    except (TypeError, ValueError) as error:
        raise click.BadParameter(str(error), context, param) from None


def _contact_host(context: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[str]:
    """A host name or address peers can connect to: one word, no scheme or port (an IPv6 address in
    brackets)."""
    if value is None:
        return None
    if not value or len(value) > 200 or not value.isprintable() or any(c.isspace() for c in value) \
            or "/" in value or (":" in value and not (value.startswith("[") and value.endswith("]"))):
        raise click.BadParameter(f"{value[:200]!r} is not a host name or address (an IPv6 address goes in "
                                 f"brackets: [::1])", context, param)
    return value


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("address", nargs=-1)
@click.option("-M", "-N", "--manager-name", "--master-name", "manager_name", help="Find the manager by project name (regular expression).")
@click.option("-C", "--catalog", help="Catalog server HOST:PORT for -M.")
@click.option("-t", "--timeout", type=float, default=900.0, show_default=True, help="Exit after this many idle seconds.")
@click.option("--idle-timeout", type=float, help="Same as -t.")
@click.option("--connect-timeout", type=float, help="Give up after this many seconds without a manager (default: -t).")
@click.option("--cores", type=float, callback=_offered, help="Cores to offer (default: all).")
@click.option("--memory", type=int, callback=_offered, help="Memory to offer, MB (default: all).")
@click.option("--disk", type=int, callback=_offered, help="Disk to offer, MB (default: free space); also bounds the cache.")
@click.option("--gpus", type=int, callback=_offered, help="GPUs to offer (default: detected).")
@click.option("-s", "--workdir", type=click.Path(file_okay=False), help="Parent directory of the workspace.")
@click.option("--single-shot", is_flag=True, help="Exit after the first manager goes away.")
@click.option("-P", "--password", "password_file", type=click.Path(exists=True, dir_okay=False), help="Password file.")
@click.option("--feature", multiple=True, help="A feature tasks can ask for (repeatable).")
@click.option("-i", "--min-backoff", type=float, default=1.0, show_default=True, help="First reconnect delay, s.")
@click.option("-b", "--max-backoff", type=float, default=60.0, show_default=True, help="Longest reconnect delay, s.")
@click.option("--curve-server-key", type=click.Path(exists=True, dir_okay=False), help="The manager's public CURVE key file: encrypt the connection.")
@click.option("--curve-key", type=click.Path(dir_okay=False), help="This worker's .key_secret file (created if absent).")
@click.option("--coprocess", help="Start this command as a coprocess (Parsl's serverless mode).")
@click.option("--coprocesses-total", type=int, help="How many coprocesses (default: one per core).")
@click.option("--coprocess-scratch", metavar="DIR|workspace",
              help="Where coprocess calls' sandboxes live (default: /dev/shm when it has 1 GiB free, else the "
                   "workspace; 'workspace' keeps them there).")
@click.option("--contact-host", callback=_contact_host,
              help="The host name or address other workers reach this one at (default: its hostname).")
@click.option("--keep-cache", is_flag=True, help="Leave the workspace and its cache behind on exit.")
@click.option("-d", "--debug", multiple=True, help="Debug flags ('all' for everything).")
@click.option("-o", "--debug-file", type=click.Path(dir_okay=False), help="Write the debug log here.")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and errors, not each change of state.")
@click.option("--wall-time", type=click.FloatRange(min=0, min_open=True),
              help="Exit after this many seconds (a batch job's length), saying goodbye; its tasks run again elsewhere.")
@click.option("--parent-death", is_flag=True, help="Exit when the process that started this worker is gone.")
@compat.ignored("--debug-rotate-max", why="the debug file is not rotated")
@compat.ignored("--disable-symlinks", takes_value=False, why="inputs are hard links or copies of the cache, never symlinks")
@compat.ignored("--disk-allocation", takes_value=False, why="no loop-device sandboxes; --disk is enforced by measuring")
@compat.ignored("-A", "--arch", why="no $ARCH interpolation in file names")
@compat.ignored("-O", "--os", why="no $OS interpolation in file names")
@compat.ignored("-w", "--tcp-window-size", why="ZeroMQ sizes its own TCP buffers")
@compat.ignored("--bandwidth", why="transfers are paced by chunk credits, not a bandwidth cap")
@compat.ignored("--volatility", why="a CCTools testing aid")
@compat.ignored("--foreman", takes_value=False, why=FOREMEN)
@compat.ignored("-f", "--foreman-name", why=FOREMEN)
@compat.ignored("--foreman-port", why=FOREMEN)
@compat.ignored("-Z", "--foreman-port-file", why=FOREMEN)
@compat.ignored("-F", "--fast-abort", why=FOREMEN)
@compat.ignored("--specify-log", why=FOREMEN)
@compat.ignored("--tlq", why="no TLQ debug-log lookup")
@compat.ignored("-z", "--disk-threshold", why="deprecated in CCTools 7")
@compat.ignored("--memory-threshold", why="deprecated in CCTools 7")
@compat.ignored("-a", "--advertise", takes_value=False, why="deprecated in CCTools 7")
@compat.ignored("-c", "--measure-capacity", takes_value=False, why="deprecated in CCTools 7")
@compat.ignored("--ssl", takes_value=False, why="use --curve-server-key to encrypt")
@compat.ignored("--connection-mode", why="the worker connects to the address it is given")
@compat.ignored("--from-factory", why="the factory passes what a worker needs on its command line")
@compat.ignored("--task-wrapper", why="tasks run as given; wrap the command in the task itself")
@compat.ignored("--coprocess-cores", "--coprocess-memory", "--coprocess-disk", "--coprocess-gpus",
                why="a coprocess shares its worker's resources")
def main(address: Tuple[str, ...], manager_name: Optional[str], catalog: Optional[str], timeout: float,
         idle_timeout: Optional[float], connect_timeout: Optional[float], cores: Optional[float],
         memory: Optional[int], disk: Optional[int], gpus: Optional[int], workdir: Optional[str],
         single_shot: bool, password_file: Optional[str], feature: Tuple[str, ...], min_backoff: float,
         max_backoff: float, coprocess: Optional[str], coprocesses_total: Optional[int],
         coprocess_scratch: Optional[str], curve_server_key: Optional[str],
         curve_key: Optional[str], keep_cache: bool, debug: Tuple[str, ...], debug_file: Optional[str], quiet: bool,
         wall_time: Optional[float], parent_death: bool, contact_host: Optional[str]) -> None:
    """Run tasks for the workqueue manager at HOST PORT."""
    _configure_logging(debug, debug_file, quiet)
    host, port = _split_address(address, manager_name)
    options = Options(
        host=host, port=port, manager_name=manager_name, catalog=catalog, cores=cores, memory=memory,
        disk=disk, gpus=gpus, workdir=workdir, idle_timeout=idle_timeout or timeout,
        connect_timeout=connect_timeout or idle_timeout or timeout, single_shot=single_shot,
        password=read_password_file(password_file) if password_file else None, features=list(feature),
        min_backoff=min_backoff, max_backoff=max_backoff, keep_cache=keep_cache,
        curve_key=curve_key, curve_server_key=curve_server_key, coprocess=coprocess,
        coprocesses_total=coprocesses_total, coprocess_scratch=coprocess_scratch, wall_time=wall_time, parent_death=parent_death, contact_host=contact_host,
    )
    sys.exit(Worker(options).run())


def _configure_logging(flags: Tuple[str, ...], debug_file: Optional[str], quiet: bool) -> None:
    level = logging.DEBUG if flags else logging.WARNING
    handler = logging.FileHandler(debug_file) if debug_file else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    if quiet and not flags:
        logging.getLogger("workqueue.worker").setLevel(logging.WARNING)  # no state-change lines
