"""``slurm_submit_workers``, ``sge_``, ``pbs_``, ``torque_``, ``condor_``, ``ec2_submit_workers``:
``X_submit_workers [options] HOST PORT NUM_WORKERS`` (or ``-M NAME NUM_WORKERS``), with CCTools' flags
(its work_queue_submit_common and per-system scripts). Everything that can be checked here (the
numbers, the port, that HOST resolves, the password file) is checked before anything is submitted."""
from __future__ import annotations

import logging
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

import click

from .. import batch
from ..batch import BatchError, WorkerSpec
from . import compat

DESCRIPTION = """Submit NUM_WORKERS workers to {label} for the workqueue master at HOST PORT (or the
master named -M NAME). Each worker is a job that asks {label} for --cores (default 1, as CCTools'
scripts) and --memory, and offers exactly that to the master. The flags are CCTools' own; those that
have no meaning here are accepted with a one-line warning (their help says so)."""
LABELS = {"slurm": "Slurm", "sge": "Grid Engine", "pbs": "PBS", "torque": "Torque", "condor": "HTCondor",
          "ec2": "EC2"}
ARRAY_SYSTEMS = ("slurm", "sge", "pbs", "torque")
NUMBER = re.compile(r"-?\d+(\.\d*)?$")

Decorator = Callable[[Any], Any]


def _worker_options() -> List[Decorator]:
    """work_queue_submit_common's worker options, in its order."""
    return [
        click.option("-M", "-N", "--manager-name", "--master-name", "--name", "manager_name",
                     help="Workers find the master by this name (catalog) instead of HOST PORT."),
        click.option("-C", "--catalog", help="Catalog server HOST:PORT the workers look -M NAME up in."),
        click.option("-t", "--timeout", type=click.FloatRange(min=0, min_open=True), default=900,
                     show_default=True, help="Worker idle timeout, s."),
        click.option("-d", "--debug", multiple=True, help="Worker debug flags ('-d all' for everything)."),
        compat.ignored("-w", "--tcp-window-size", why="ZeroMQ sizes its own TCP buffers"),
        click.option("-i", "--min-backoff", type=click.FloatRange(min=0), help="Worker's first reconnect delay, s."),
        click.option("-b", "--max-backoff", type=click.FloatRange(min=0), help="Worker's longest reconnect delay, s."),
        compat.ignored("-z", "--disk-threshold", why="a worker's cache is bounded by --disk"),
        compat.ignored("-A", "--arch", why="input names have no $ARCH to fill in"),
        compat.ignored("-O", "--os", why="input names have no $OS to fill in"),
        compat.ignored("-a", "--advertise", takes_value=False, why="masters advertise themselves; use -M NAME"),
        click.option("-s", "--workdir", help="Where each worker makes its workspace on its node (worker -s)."),
        click.option("-P", "--password", "password_file", type=click.Path(exists=True, dir_okay=False),
                     help="Password file (its absolute path is given to the workers)."),
        click.option("-c", "--cores", type=click.FloatRange(min=0), default=batch.base.DEFAULT_CORES,
                     show_default=True, help="Cores per worker, asked of the batch system and offered by the "
                                             "worker; 0: the worker takes what its job was granted."),
        click.option("--memory", type=click.IntRange(min=0), help="Memory per worker, MB (asked and offered)."),
        click.option("--disk", type=click.IntRange(min=0), help="Disk per worker, MB (asked and offered)."),
        click.option("-E", "--worker-options", "extra_worker", default="", help="Extra options for each worker."),
        click.option("-S", "--scratch-dir", help="Where job scripts and logs go (default ./$USER-workers)."),
    ]


def _batch_options(system: str) -> List[Decorator]:
    """The per-system flags of CCTools' X_submit_workers."""
    options = [click.option("-p", "--batch-options", "extra_batch", default="",
                            help="Extra options for the batch command (HTCondor: submit lines, ';' between).")]
    if system in ARRAY_SYSTEMS:
        options.append(click.option("-j", "job_array", is_flag=True, help="Accepted: the workers already go "
                                    "as one array job (slurm, sge) or as separate jobs (pbs, torque)."))
    if system == "condor":
        options += [
            click.option("-r", "--requirements", multiple=True, help="HTCondor requirements (ANDed)."),
            click.option("--class-ad", multiple=True, help="An extra class ad line (repeatable)."),
            click.option("--autosize", is_flag=True, help="Each worker takes the size of its slot."),
            compat.ignored("--docker-universe", why="the worker runs from this machine's Python installation"),
        ]
    else:
        options.append(compat.ignored("-r", "--requirements", why="only HTCondor takes requirements"))
    return options


def _command(system: str) -> click.Command:
    def submit(args: Tuple[str, ...], **options: Any) -> None:
        logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
        host, port, count = _manager(args, options["manager_name"])
        spec = _spec(host, port, options)
        try:
            job_ids = batch.get(system, **_system_options(system, options)).submit(count, spec)
        except BatchError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"submitted {len(job_ids)} worker(s) to {system}: {' '.join(job_ids)}")

    for decorate in reversed(_worker_options() + _batch_options(system)):
        submit = decorate(submit)
    submit = click.argument("args", nargs=-1, metavar="HOST PORT NUM_WORKERS | -M NAME NUM_WORKERS")(submit)
    return click.command(name=f"{system}_submit_workers", help=DESCRIPTION.format(label=LABELS[system]),
                         context_settings={"help_option_names": ["-h", "--help"],
                                           "ignore_unknown_options": True})(submit)


def _spec(host: Optional[str], port: Optional[int], options: Dict[str, Any]) -> WorkerSpec:
    flags: List[str] = []
    for flag, key in (("-C", "catalog"), ("-i", "min_backoff"), ("-b", "max_backoff"), ("-s", "workdir")):
        if options[key] is not None:
            flags += [flag, str(options[key])]
    for debug_flag in options["debug"]:
        flags += ["-d", debug_flag]
    return WorkerSpec(host=host, port=port, manager_name=options["manager_name"], timeout=options["timeout"],
                      cores=options["cores"], memory=options["memory"], disk=options["disk"],
                      password_file=options["password_file"], worker_flags=flags,
                      extra_worker_options=options["extra_worker"], extra_batch_options=options["extra_batch"],
                      workdir=options["scratch_dir"])


def _system_options(system: str, options: Dict[str, Any]) -> Dict[str, Any]:
    if system != "condor":
        return {}
    return {"requirements": options["requirements"], "class_ads": options["class_ad"], "autosize": options["autosize"]}


def _manager(args: Tuple[str, ...], manager_name: Optional[str]) -> Tuple[Optional[str], Optional[int], int]:
    """HOST, PORT and NUM_WORKERS from the arguments, checked: a port in 1..65535, a host that resolves,
    a whole number of workers of at least 1."""
    strays = [a for a in args if a.startswith("-") and not NUMBER.match(a)]
    if strays:
        raise click.NoSuchOption(strays[0])
    if len(args) == 2 and not manager_name and ":" in args[0]:
        args = (*args[0].rsplit(":", 1), args[1])  # HOST:PORT NUM_WORKERS
    expected = ("NUM_WORKERS with -M NAME", 1) if manager_name else ("HOST PORT NUM_WORKERS", 3)
    if len(args) != expected[1]:
        raise click.UsageError(f"expected {expected[0]}, got {len(args)} argument(s): {' '.join(args) or 'none'}")
    count = _whole("NUM_WORKERS", args[-1])
    if count < 1:
        raise click.UsageError(f"NUM_WORKERS must be at least 1, not {count}")
    if manager_name:
        return None, None, count
    host, port = args[0], _whole("PORT", args[1])
    if not 0 < port < 65536:
        raise click.UsageError(f"PORT must be between 1 and 65535, not {port}")
    compat.check_resolves(host, port)
    return host, port, count


def _whole(what: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise click.UsageError(f"{what} must be a whole number, not {text!r}") from None


slurm = _command("slurm")
sge = _command("sge")
pbs = _command("pbs")
torque = _command("torque")
condor = _command("condor")
ec2 = _command("ec2")


@click.command(name="ec2_remove_workers")
@click.argument("manager", required=False)
def ec2_remove(manager: Optional[str]) -> None:
    """Terminate the EC2 workers started for MANAGER (HOST:PORT or name), or all of them."""
    system = batch.get("ec2")
    try:
        ids = system.find(manager)
        system.cancel(ids)
    except BatchError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"terminated {len(ids)} instance(s): {' '.join(ids)}")
