"""What the batch job a worker runs in was granted, and what its process may use whatever the job:
the bounds on what a worker offers (memory and disk in MB).

Pure: every function takes the environment, a file reader and the CPU affinity as arguments, so
that each batch system can be tested with a fake one. ``worker.resources`` reads the real machine.

Where each figure comes from:

Slurm (the environment sbatch and srun give a job)
  SLURM_CPUS_ON_NODE       CPUs allocated to this job's step on this node
  SLURM_JOB_CPUS_PER_NODE  CPUs per node of the allocation, as in "72(x2),36": the first figure
                           is the first node's, where a batch script (so the worker) runs
  SLURM_MEM_PER_NODE       --mem: MB per node (0 asks for the whole node: no figure)
  SLURM_MEM_PER_CPU        --mem-per-cpu: MB per allocated CPU, times the CPUs above
  SLURM_GPUS_ON_NODE       GPUs allocated on this node
SGE / Son of Grid Engine
  NSLOTS                   slots granted: 1 for a serial job, the slots of a parallel one
  h_vmem                   not in the environment: the shepherd sets it (times the slots on this
                           host) as each process's address-space limit, RLIMIT_AS
PBS Pro / Torque
  NCPUS                    PBS Pro: this host's ncpus (or ompthreads); read only with PBS_JOBID
  PBS_NUM_PPN              Torque: processors per node
  PBS_NP                   Torque: execution slots of the whole job
  OMP_NUM_THREADS          PBS Pro sets it as NCPUS: read when none of the above is set
  memory                   no variable: Torque's and PBS Pro's cgroups enforce it (see below)
HTCondor
  _CONDOR_MACHINE_AD       path of a file holding the slot's ClassAd: Cpus, Memory (MiB),
                           Disk (KiB), GPUs
  OMP_NUM_THREADS          set to request_cpus by the starter: read when the ad gives no Cpus
Everywhere (batch job or not)
  sched_getaffinity(0)     the CPUs this process may run on (cpusets, taskset, Slurm's binding)
  cgroup v2                cpu.max "QUOTA PERIOD" ("max PERIOD": none), memory.max (bytes, or "max")
  cgroup v1                cpu.cfs_quota_us / cpu.cfs_period_us (quota -1: none),
                           memory.limit_in_bytes (about 2^63: none)
  A cgroup's limits are read on the process's own cgroup and on every ancestor up to the mount:
  a job's limit often sits on a parent (Slurm's job_N, above step_batch and task_0).

OMP_NUM_THREADS counts only inside an HTCondor or PBS job: outside one it is a user's setting for
their threads, not a grant.
"""
from __future__ import annotations

import math
import posixpath
import re
from dataclasses import dataclass
from typing import Callable, Dict, Iterator, List, Mapping, Optional, Tuple

Reader = Callable[[str], Optional[str]]  # a file's text, or None when it cannot be read
RESOURCES = ("cores", "memory", "disk", "gpus")
MB = 1 << 20
UNLIMITED_BYTES = 1 << 62  # cgroup v1 writes "no limit" as 2^63 rounded down to a page


@dataclass(frozen=True)
class Bound:
    """At most ``amount`` of a resource, because of ``source`` (a variable, a file, a call);
    ``granted``: a batch system's grant, else a bound of this process (affinity, cgroup)."""
    amount: float
    source: str
    granted: bool = True


def bounds(env: Mapping[str, str], read: Reader, affinity: Optional[int] = None,
           address_space: Optional[int] = None) -> Dict[str, List[Bound]]:
    """Every bound found on each resource. ``affinity``: how many CPUs ``sched_getaffinity``
    allows (None: unknown); ``address_space``: the soft RLIMIT_AS in bytes (None: unlimited)."""
    ad = condor_machine_ad(env, read)
    slurm_cpus = _slurm_cpus(env)
    return {
        "cores": [*_slurm_cores(env), *_sge_cores(env), *_pbs_cores(env), *_condor_cores(env, ad),
                  *_affinity_cores(affinity), *_cgroup_cores(read)],
        "memory": [*_slurm_memory(env, slurm_cpus), *_condor_figure(ad, "memory", "Memory", 1),
                   *_sge_memory(env, address_space), *_cgroup_memory(read)],
        "disk": [*_condor_figure(ad, "disk", "Disk", 1024)],
        "gpus": [*_whole(env, "SLURM_GPUS_ON_NODE", allow_zero=True), *_condor_figure(ad, "gpus", "GPUs", 1)],
    }


def batch_job(env: Mapping[str, str]) -> Optional[str]:
    """Which batch job this is, for the log: 'Slurm job 42', or None outside one."""
    if "SLURM_JOB_ID" in env:
        return f"Slurm job {env['SLURM_JOB_ID']}"
    if "PBS_JOBID" in env:
        return f"PBS job {env['PBS_JOBID']}"
    if "NSLOTS" in env:
        return f"SGE job {env.get('JOB_ID', '?')}"
    if _in_condor_job(env):
        return "HTCondor job"
    return None


# -- Slurm ---------------------------------------------------------------------------------------
def _slurm_cpus(env: Mapping[str, str]) -> Optional[Bound]:
    found = _whole(env, "SLURM_CPUS_ON_NODE")
    if found:
        return found[0]
    per_node = re.match(r"\s*(\d+)", env.get("SLURM_JOB_CPUS_PER_NODE", ""))
    if per_node and int(per_node.group(1)) > 0:
        return Bound(float(per_node.group(1)), f"SLURM_JOB_CPUS_PER_NODE={env['SLURM_JOB_CPUS_PER_NODE']}")
    return None


def _slurm_cores(env: Mapping[str, str]) -> List[Bound]:
    cpus = _slurm_cpus(env)
    return [cpus] if cpus else []


def _slurm_memory(env: Mapping[str, str], cpus: Optional[Bound]) -> List[Bound]:
    per_node = _megabytes(env.get("SLURM_MEM_PER_NODE"))
    if per_node:
        return [Bound(per_node, f"SLURM_MEM_PER_NODE={env['SLURM_MEM_PER_NODE']}")]
    per_cpu = _megabytes(env.get("SLURM_MEM_PER_CPU"))
    if per_cpu and cpus:
        return [Bound(per_cpu * cpus.amount, f"SLURM_MEM_PER_CPU={env['SLURM_MEM_PER_CPU']} x {cpus.source}")]
    return []


# -- SGE -----------------------------------------------------------------------------------------
def _sge_cores(env: Mapping[str, str]) -> List[Bound]:
    return _whole(env, "NSLOTS")


def _sge_memory(env: Mapping[str, str], address_space: Optional[int]) -> List[Bound]:
    """h_vmem, as the address-space limit the shepherd set; only in an SGE job, where that limit
    is the job's (elsewhere RLIMIT_AS bounds each process alone, not their sum)."""
    if "NSLOTS" not in env or address_space is None or address_space >= UNLIMITED_BYTES:
        return []
    return [Bound(float(address_space // MB), "RLIMIT_AS, SGE's h_vmem")]


# -- PBS -----------------------------------------------------------------------------------------
def _pbs_cores(env: Mapping[str, str]) -> List[Bound]:
    if "PBS_JOBID" not in env and "PBS_NP" not in env:
        return []
    names = ("NCPUS", "PBS_NUM_PPN", "PBS_NP") if "PBS_JOBID" in env else ("PBS_NUM_PPN", "PBS_NP")
    for name in names:
        found = _whole(env, name)
        if found:
            return found
    return _whole(env, "OMP_NUM_THREADS")


# -- HTCondor ------------------------------------------------------------------------------------
def _in_condor_job(env: Mapping[str, str]) -> bool:
    return any(name in env for name in ("_CONDOR_MACHINE_AD", "_CONDOR_JOB_AD", "_CONDOR_SCRATCH_DIR"))


def condor_machine_ad(env: Mapping[str, str], read: Reader) -> Dict[str, str]:
    """The slot's ClassAd as {lower-case attribute: value text}; empty outside HTCondor."""
    path = env.get("_CONDOR_MACHINE_AD")
    text = read(path) if path else None
    ad: Dict[str, str] = {}
    for line in (text or "").splitlines():
        name, equals, value = line.partition("=")
        if equals and name.strip():
            ad[name.strip().lower()] = value.strip()  # ClassAd names ignore case
    return ad


def _condor_cores(env: Mapping[str, str], ad: Dict[str, str]) -> List[Bound]:
    if not _in_condor_job(env):
        return []
    return _condor_figure(ad, "cores", "Cpus", 1) or _whole(env, "OMP_NUM_THREADS")


def _condor_figure(ad: Dict[str, str], resource: str, attribute: str, per_unit: int) -> List[Bound]:
    """An attribute of the machine ad, divided by ``per_unit`` (Disk is in KiB)."""
    value = _number(ad.get(attribute.lower()))
    if value is None or (value == 0 and resource != "gpus"):
        return []
    return [Bound(float(value // per_unit), f"{attribute} = {ad[attribute.lower()]} in _CONDOR_MACHINE_AD")]


# -- this process, in or out of a job ------------------------------------------------------------
def _affinity_cores(affinity: Optional[int]) -> List[Bound]:
    if not affinity:
        return []
    return [Bound(float(affinity), "sched_getaffinity", granted=False)]


def _cgroup_cores(read: Reader) -> List[Bound]:
    found = []
    for directory in cgroup_dirs(read, ""):
        quota, _, period = (read(posixpath.join(directory, "cpu.max")) or "").strip().partition(" ")
        found += _quota(_number(quota), _number(period), posixpath.join(directory, "cpu.max"))
    for directory in cgroup_dirs(read, "cpu"):
        quota = _number(read(posixpath.join(directory, "cpu.cfs_quota_us")))  # -1 (no quota) reads as None
        period = _number(read(posixpath.join(directory, "cpu.cfs_period_us")))
        found += _quota(quota, period, posixpath.join(directory, "cpu.cfs_quota_us"))
    return _smallest(found)


def _quota(quota: Optional[float], period: Optional[float], path: str) -> List[Bound]:
    """CPUs as a quota of CPU time per period: whole CPUs, rounded down, unless less than one."""
    if not quota or not period:
        return []
    cpus = quota / period
    return [Bound(float(math.floor(cpus)) if cpus >= 1 else cpus, f"cgroup CPU quota in {path}", granted=False)]


def _cgroup_memory(read: Reader) -> List[Bound]:
    found = []
    for controller, name in (("", "memory.max"), ("memory", "memory.limit_in_bytes")):
        for directory in cgroup_dirs(read, controller):
            path = posixpath.join(directory, name)
            limit = _number(read(path))  # "max" reads as None
            if limit is not None and limit < UNLIMITED_BYTES:
                found.append(Bound(float(limit // MB), f"cgroup memory limit in {path}", granted=False))
    return _smallest(found)


def cgroup_dirs(read: Reader, controller: str) -> List[str]:
    """The directories of this process's cgroup for ``controller`` ("" for cgroup v2), then of each
    ancestor up to the hierarchy's mount point. Empty when the process is not in that hierarchy."""
    path = _own_cgroups(read("/proc/self/cgroup") or "").get(controller)
    if path is None:
        return []
    root, mount_point = _mount_of(read("/proc/self/mountinfo") or "", controller)
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root):]  # the mount shows only part of the hierarchy (a container's)
    relative = posixpath.normpath("/" + path.lstrip("/"))  # "/../.." (outside our namespace): the mount
    parts = [part for part in relative.split("/") if part]
    return [posixpath.join(mount_point, *parts[:depth]) for depth in range(len(parts), -1, -1)]


def _own_cgroups(text: str) -> Dict[str, str]:
    """/proc/self/cgroup as {controller: path}; "" for cgroup v2's single hierarchy."""
    own = {}
    for line in text.splitlines():
        number, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if number == "0" and controllers == "":
            own[""] = path
        for controller in filter(None, controllers.split(",")):
            own[controller] = path
    return own


def _mount_of(mountinfo: str, controller: str) -> Tuple[str, str]:
    """(the hierarchy's directory that is mounted, where) for ``controller``; the usual place when
    /proc/self/mountinfo does not say."""
    for root, mount_point, fstype, options in _mounts(mountinfo):
        if controller == "" and fstype == "cgroup2":
            return root, mount_point
        if controller and fstype == "cgroup" and controller in options.split(","):
            return root, mount_point
    return "/", "/sys/fs/cgroup" + (f"/{controller}" if controller else "")


def _mounts(mountinfo: str) -> Iterator[Tuple[str, str, str, str]]:
    """(root, mount point, file system type, super options) of each line of a mountinfo file."""
    for line in mountinfo.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        separator = fields.index("-", 6)
        if len(fields) > separator + 3:
            yield fields[3], fields[4], fields[separator + 1], fields[separator + 3]


# -- numbers -------------------------------------------------------------------------------------
def _number(text: Optional[str]) -> Optional[float]:
    """A finite number >= 0, or None for anything else (absent, "max", -1, a word, NaN)."""
    try:
        value = float((text or "").strip().strip('"'))
    except ValueError:
        return None
    return value if 0 <= value < math.inf else None


def _whole(env: Mapping[str, str], name: str, allow_zero: bool = False) -> List[Bound]:
    """A variable holding a count; nothing when absent, not a number, or 0 (unless allowed)."""
    value = _number(env.get(name))
    if value is None or (value == 0 and not allow_zero):
        return []
    return [Bound(float(math.floor(value)), f"{name}={env[name]}")]


def _megabytes(text: Optional[str]) -> Optional[float]:
    """Slurm's memory figures: MB, or with a K, M, G or T suffix; 0 and garbage give None."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*", text or "", re.IGNORECASE)
    if not match:
        return None
    scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[match.group(2).upper()]
    megabytes = math.floor(float(match.group(1)) * scale)
    return float(megabytes) if megabytes > 0 else None


def _smallest(found: List[Bound]) -> List[Bound]:
    return [min(found, key=lambda bound: bound.amount)] if found else []
