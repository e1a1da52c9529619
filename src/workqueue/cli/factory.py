"""``workqueue factory`` / ``work_queue_factory``: keep workers alive on a batch system for a master,
with CCTools' flags. SIGINT, SIGTERM and SIGHUP (a closed terminal) all cancel its jobs before it exits."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence, Tuple

import click

from .. import batch
from ..factory import Factory
from . import compat

logger = logging.getLogger(__name__)

# CCTools' batch types this factory serves, and what they are called here
BATCH_TYPES = {name: name for name in batch.SYSTEMS}
BATCH_TYPES["amazon"] = "ec2"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NO_SUCH_SYSTEM = "no such batch type here"


@click.command("factory", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("host", required=False)
@click.argument("port", required=False)
@click.option("-T", "--batch-type", default="local", show_default=True, type=click.Choice(sorted(BATCH_TYPES)),
              help="Batch system to submit workers to ('amazon' is ec2).")
@click.option("-M", "-N", "--manager-name", "--master-name", "manager_name", default=None,
              help="Serve the master with this name (catalog lookup).")
@click.option("-C", "--config-file", type=click.Path(exists=True, dir_okay=False),
              help="JSON settings in CCTools' keys (min-workers, max-workers, cores, ...), read again when changed.")
@compat.ignored("-F", "--foremen-name", why="there are no foremen here")
@click.option("--catalog", help="Catalog server HOST:PORT for -M (also given to the workers).")
@click.option("-P", "--password", "password_file", type=click.Path(exists=True, dir_okay=False),
              help="Password file of the master, for the factory and its workers.")
@click.option("-S", "--scratch-dir", help="Where job scripts and logs go (default ./$USER-workers).")
@compat.ignored("--run-factory-as-manager", takes_value=False, why="there are no foremen here")
@click.option("--parent-death", is_flag=True, help="Cancel the workers and exit when the parent process exits.")
@click.option("-d", "--debug", multiple=True, help="Log debug messages ('-d all').")
@click.option("-o", "--debug-file", help="Write the log here instead of stderr.")
@click.option("-O", "--debug-file-size", type=click.IntRange(min=0), help="Rotate the log file past this many MB.")
@click.version_option(None, "-v", "--version", package_name="workqueue")
@click.option("-w", "--min-workers", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("-W", "--max-workers", type=click.IntRange(min=0), default=10, show_default=True)
@click.option("--workers-per-cycle", type=click.IntRange(min=0), default=5, show_default=True,
              help="Most workers submitted in one cycle (0: no limit).")
@click.option("-t", "--timeout", type=click.FloatRange(min=0, min_open=True), default=900, show_default=True,
              help="Worker idle timeout (s).")
@click.option("--factory-timeout", type=click.FloatRange(min=0), help="Exit after the master is away this long (s).")
@click.option("--tasks-per-worker", type=click.FloatRange(min=0, min_open=True),
              help="Tasks each worker is counted for (default: its cores).")
@click.option("-c", "--capacity", "use_capacity", is_flag=True,
              help="Keep no more workers than the master estimates it can keep busy (it must call estimate_capacity).")
@click.option("--cores", type=click.FloatRange(min=0), default=batch.base.DEFAULT_CORES, show_default=True,
              help="Cores per worker, asked of the batch system and offered by the worker; 0: what the job is granted.")
@click.option("--gpus", type=click.IntRange(min=0), help="GPUs per worker (asked and offered).")
@click.option("--memory", type=click.IntRange(min=0), help="MB per worker (asked and offered).")
@click.option("--disk", type=click.IntRange(min=0), help="MB per worker (asked and offered).")
@click.option("--autosize", is_flag=True, help="HTCondor: each worker takes the size of its slot.")
@click.option("--env", multiple=True, help="VARIABLE=VALUE set in each worker's environment (repeatable).")
@click.option("-E", "--extra-options", "extra_worker_options", default="", help="Extra worker options.")
@click.option("--worker-binary", type=click.Path(exists=True, dir_okay=False),
              help="Run this worker program instead of this installation's.")
@click.option("--wrapper", default="", help="A command each worker runs under (its arguments follow).")
@compat.ignored("--wrapper-input", why="jobs run from this shared filesystem; nothing is copied")
@compat.ignored("--runos", why="no runos images here")
@compat.ignored("--python-package", "--python-env", why="workers use this machine's Python installation")
@click.option("-B", "--batch-options", "extra_batch_options", default="", help="Extra batch submit options.")
@compat.ignored("--amazon-config", why="EC2 reads WORKQUEUE_EC2_* and boto3's settings")
@click.option("--condor-requirements", multiple=True, help="HTCondor requirements (ANDed).")
@compat.ignored("--mesos-master", why=NO_SUCH_SYSTEM)
@compat.ignored("--mesos-path", why=NO_SUCH_SYSTEM)
@compat.ignored("--mesos-preload", why=NO_SUCH_SYSTEM)
@compat.ignored("--k8s-image", why=NO_SUCH_SYSTEM)
@compat.ignored("--k8s-worker-image", why=NO_SUCH_SYSTEM)
@click.option("--interval", type=click.FloatRange(min=0, min_open=True), default=5.0, show_default=True,
              help="Seconds between cycles.")
@click.pass_context
def factory(context: click.Context, host: Optional[str], port: Optional[str], batch_type: str,
            manager_name: Optional[str], config_file: Optional[str], **options: Any) -> None:
    """Keep MIN..MAX workers of a batch type alive for the master at HOST PORT (or HOST:PORT, or -M NAME)."""
    compat.configure_logging(options.pop("debug"), options.pop("debug_file"),
                             (options.pop("debug_file_size") or 0) << 20, quiet_level=logging.INFO)
    address = _address(host, port, manager_name, config_file)
    system = BATCH_TYPES[batch_type]
    pool = Factory(system, address, manager_name, config_file=config_file,
                   batch_options=_system_options(context, system, options), **_factory_options(options))
    parent = os.getppid() if options["parent_death"] else None
    if pool.config is not None:
        pool.config.apply(pool)
    if pool.min_workers > pool.max_workers:
        raise click.UsageError(f"--min-workers ({pool.min_workers}) is larger than --max-workers ({pool.max_workers})")
    click.echo(f"factory: {system} workers for {pool.manager_name or address} "
               f"({pool.min_workers}..{pool.max_workers})", err=True)
    _run(pool, parent)


def _address(host: Optional[str], port: Optional[str], manager_name: Optional[str],
             config_file: Optional[str]) -> Optional[str]:
    """HOST:PORT of the master, or None when it is found by name (-M, or the config file's)."""
    if host is None:
        if manager_name or config_file:
            return None
        raise click.UsageError("give HOST PORT, HOST:PORT or -M NAME")
    if manager_name:
        raise click.UsageError("give either HOST PORT or -M NAME, not both")
    if port is None:
        if ":" not in host:
            raise click.UsageError("give HOST PORT or HOST:PORT")
        host, port = host.rsplit(":", 1)
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise click.UsageError(f"PORT must be a number between 1 and 65535, not {port!r}")
    compat.check_resolves(host, int(port))
    return f"{host}:{int(port)}"


def _factory_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """Factory keyword arguments from the command line's options."""
    worker_flags: List[str] = ["--catalog", options["catalog"]] if options["catalog"] else []
    return dict(
        min_workers=options["min_workers"], max_workers=options["max_workers"],
        workers_per_cycle=options["workers_per_cycle"], tasks_per_worker=options["tasks_per_worker"],
        cores=options["cores"], memory=options["memory"], disk=options["disk"], gpus=options["gpus"],
        timeout=options["timeout"], password_file=options["password_file"],
        extra_worker_options=options["extra_worker_options"], extra_batch_options=options["extra_batch_options"],
        interval=options["interval"], catalog=options["catalog"], factory_timeout=options["factory_timeout"],
        use_capacity=options["use_capacity"],
        env=dict(_variable(text) for text in options["env"]), workdir=options["scratch_dir"],
        worker_binary=options["worker_binary"], wrapper=options["wrapper"], worker_flags=worker_flags)


def _variable(text: str) -> Tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r} is not VARIABLE=VALUE", param_hint="--env")
    return name, value


def _system_options(context: click.Context, system: str, options: Dict[str, Any]) -> Dict[str, Any]:
    """HTCondor's own options; given to another system, they are said to be ignored."""
    condor = {"requirements": options["condor_requirements"], "autosize": options["autosize"]}
    if system == "condor":
        return condor
    for flag, value in (("--condor-requirements", condor["requirements"]), ("--autosize", condor["autosize"])):
        if value:
            compat.warn(context, f"{flag} is for HTCondor only; ignored for {system}")
    return {}


def _run(pool: Factory, parent: Optional[int]) -> None:
    """Cycle until a stop signal, the parent's death (--parent-death) or --factory-timeout; then cancel."""
    done = threading.Event()
    reason: List[str] = []

    def _stop(signum: int, frame: object) -> None:
        reason.append(signal.Signals(signum).name)
        done.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, _stop)
    with pool:
        while not done.wait(0.2):
            if parent is not None and os.getppid() != parent:
                reason.append("its parent exited")
                break
            if not pool.running:
                reason.append("no master")
                break
    click.echo(f"factory: canceled its workers, exiting ({', '.join(reason) or 'done'})", err=True)


def main(argv: Optional[Sequence[str]] = None) -> None:
    """The ``work_queue_factory`` console script."""
    factory.main(args=list(argv) if argv is not None else None, prog_name="work_queue_factory")


if __name__ == "__main__":
    main(sys.argv[1:])
