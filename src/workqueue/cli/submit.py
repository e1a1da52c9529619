"""``slurm_submit_workers``, ``sge_``, ``pbs_``, ``torque_``, ``condor_``, ``ec2_submit_workers``:
``X_submit_workers [options] HOST PORT NUM_WORKERS`` (or ``-M NAME NUM_WORKERS``), in CCTools' style."""
from __future__ import annotations

from typing import Optional, Tuple

import click

from .. import batch
from ..batch import BatchError, WorkerSpec


def _command(system: str) -> click.Command:
    @click.command(name=f"{system}_submit_workers", context_settings={"help_option_names": ["-h", "--help"]})
    @click.argument("args", nargs=-1)
    @click.option("-M", "-N", "--manager-name", help="Workers find the manager by this name instead of HOST PORT.")
    @click.option("-t", "--timeout", type=float, default=900, show_default=True, help="Worker idle timeout, s.")
    @click.option("--cores", type=float, help="Cores per worker (also asked of the batch system).")
    @click.option("--memory", type=int, help="Memory per worker, MB (also asked of the batch system).")
    @click.option("--disk", type=int, help="Disk per worker, MB.")
    @click.option("-P", "--password", "password_file", type=click.Path(exists=True, dir_okay=False),
                  help="Password file (its absolute path is given to the workers).")
    @click.option("-E", "--worker-options", "extra_worker", default="", help="Extra options for each worker.")
    @click.option("-p", "--batch-options", "extra_batch", default="", help="Extra options for the batch command.")
    @click.option("-s", "--scratch-dir", help="Where job scripts and logs go (default ./$USER-workers).")
    def submit(args: Tuple[str, ...], manager_name: Optional[str], timeout: float, cores: Optional[float],
               memory: Optional[int], disk: Optional[int], password_file: Optional[str], extra_worker: str,
               extra_batch: str, scratch_dir: Optional[str]) -> None:
        host, port, count = _parse(args, manager_name)
        spec = WorkerSpec(host=host, port=port, manager_name=manager_name, timeout=timeout, cores=cores,
                          memory=memory, disk=disk, password_file=password_file, extra_worker_options=extra_worker,
                          extra_batch_options=extra_batch, workdir=scratch_dir)
        try:
            job_ids = batch.get(system).submit(count, spec)
        except BatchError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"submitted {len(job_ids)} worker(s) to {system}: {' '.join(job_ids)}")

    submit.__doc__ = f"Submit NUM_WORKERS workers for the manager at HOST PORT to {system}."
    return submit


def _parse(args: Tuple[str, ...], manager_name: Optional[str]) -> Tuple[Optional[str], Optional[int], int]:
    expected = 1 if manager_name else 3
    if len(args) != expected:
        raise click.UsageError("expected HOST PORT NUM_WORKERS" if not manager_name else "expected NUM_WORKERS with -M")
    try:
        count = int(args[-1])
        port = None if manager_name else int(args[1])
    except ValueError:
        raise click.UsageError(f"not a number in {' '.join(args)}") from None
    if count < 1:
        raise click.UsageError("NUM_WORKERS must be at least 1")
    return (None if manager_name else args[0]), port, count


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
