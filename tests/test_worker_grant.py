"""What a worker offers inside batch jobs and cgroups: the pure decision (worker_resources.decide)
over fake environments, files and affinities, one batch system at a time."""
import pytest

from workqueue.worker.grant import bounds, cgroup_dirs
from workqueue.worker.resources import decide

MACHINE = {"cores": 64.0, "memory": 256000.0, "disk": 900000.0, "gpus": 4.0}
NOTHING_ASKED = {"cores": None, "memory": None, "disk": None, "gpus": None}
GIB = 1 << 30


def files(contents=None):
    """A reader over a dict of path -> text: what the worker would read from /proc and /sys."""
    contents = contents or {}
    return contents.get


def offer(env=None, read=None, affinity=None, address_space=None, **asked):
    return decide({**NOTHING_ASKED, **asked}, env or {}, read or files(), affinity, MACHINE, address_space)


# -- outside any batch job -----------------------------------------------------------------------
def test_outside_a_job_the_machine_is_offered_and_what_is_asked_is_honoured():
    assert offer().resources == MACHINE
    asked = offer(cores=128, memory=512000, disk=10, gpus=0)
    assert asked.resources == {"cores": 128.0, "memory": 512000.0, "disk": 10.0, "gpus": 0.0}
    assert asked.warnings == [] and asked.job is None


def test_omp_num_threads_outside_a_job_is_a_users_setting_not_a_grant():
    assert offer({"OMP_NUM_THREADS": "1"}).resources["cores"] == 64.0


def test_the_affinity_bounds_cores_everywhere_and_caps_what_is_asked_with_a_warning():
    assert offer(affinity=2).resources["cores"] == 2.0
    assert offer(affinity=2).sources["cores"] == "sched_getaffinity"
    smaller = offer(affinity=2, cores=1)
    assert smaller.resources["cores"] == 1.0 and smaller.warnings == []
    larger = offer(affinity=2, cores=8)
    assert larger.resources["cores"] == 2.0
    assert len(larger.warnings) == 1
    assert "--cores asks for 8 core(s), more than the 2 this process may use (sched_getaffinity)" in larger.warnings[0]


def test_cores_and_memory_from_the_environment_count_as_asked():
    capped = offer({"CORES": "16", "MEMORY": "1000"}, affinity=4)
    assert capped.resources["cores"] == 4.0 and capped.resources["memory"] == 1000.0
    assert capped.warnings and capped.warnings[0].startswith("CORES=16 asks for 16 core(s)")


def test_zero_cores_memory_or_disk_means_not_said_but_zero_gpus_is_honoured():
    assert offer(cores=0, memory=0, disk=0, gpus=0).resources == {**MACHINE, "gpus": 0.0}
    assert offer({"GPUS": "0"}).resources["gpus"] == 0.0


# -- Slurm ---------------------------------------------------------------------------------------
SLURM = {"SLURM_JOB_ID": "42", "SLURM_CPUS_ON_NODE": "1", "SLURM_MEM_PER_NODE": "2048"}


def test_a_slurm_job_offers_its_cpus_and_memory_on_this_node():
    granted = offer(SLURM)
    assert granted.resources["cores"] == 1.0 and granted.resources["memory"] == 2048.0
    assert granted.sources["cores"] == "SLURM_CPUS_ON_NODE=1"
    assert granted.job == "Slurm job 42"
    assert granted.warnings == []


def test_a_slurm_job_caps_larger_asks_with_a_warning_naming_both_figures_and_honours_smaller_ones():
    capped = offer(SLURM, cores=4, memory=4096)
    assert capped.resources["cores"] == 1.0 and capped.resources["memory"] == 2048.0
    assert capped.warnings == [
        "--cores asks for 4 core(s), more than the 1 this job was granted (SLURM_CPUS_ON_NODE=1): offering 1",
        "--memory asks for 4096 MB of memory, more than the 2048 this job was granted (SLURM_MEM_PER_NODE=2048): "
        "offering 2048",
    ]
    honoured = offer({**SLURM, "SLURM_CPUS_ON_NODE": "8"}, cores=2, memory=1000)
    assert honoured.resources["cores"] == 2.0 and honoured.resources["memory"] == 1000.0
    assert honoured.warnings == []


def test_slurm_cpus_per_node_and_memory_per_cpu():
    env = {"SLURM_JOB_ID": "7", "SLURM_JOB_CPUS_PER_NODE": "4(x2),2", "SLURM_MEM_PER_CPU": "1000"}
    granted = offer(env)
    assert granted.resources["cores"] == 4.0
    assert granted.resources["memory"] == 4000.0
    assert granted.sources["memory"] == "SLURM_MEM_PER_CPU=1000 x SLURM_JOB_CPUS_PER_NODE=4(x2),2"


@pytest.mark.parametrize("value, megabytes", [("4G", 4096.0), ("512M", 512.0), ("2048", 2048.0), ("1T", 1048576.0)])
def test_slurm_memory_with_a_unit(value, megabytes):
    assert [b.amount for b in bounds({"SLURM_MEM_PER_NODE": value}, files())["memory"]] == [megabytes]


def test_slurm_memory_zero_asks_for_the_whole_node_so_gives_no_figure():
    assert offer({"SLURM_CPUS_ON_NODE": "2", "SLURM_MEM_PER_NODE": "0"}).resources["memory"] == MACHINE["memory"]


def test_slurm_gpus_on_the_node_bound_gpus():
    assert offer({"SLURM_CPUS_ON_NODE": "1", "SLURM_GPUS_ON_NODE": "1"}).resources["gpus"] == 1.0


# -- SGE -----------------------------------------------------------------------------------------
def test_an_sge_job_offers_its_slots_and_its_h_vmem():
    granted = offer({"JOB_ID": "5", "NSLOTS": "2"}, address_space=GIB)
    assert granted.resources["cores"] == 2.0 and granted.resources["memory"] == 1024.0
    assert granted.sources["cores"] == "NSLOTS=2"
    assert granted.job == "SGE job 5"


def test_an_address_space_limit_outside_sge_bounds_each_process_not_the_worker():
    assert offer(address_space=GIB).resources["memory"] == MACHINE["memory"]


# -- PBS -----------------------------------------------------------------------------------------
def test_a_pbs_pro_job_offers_ncpus():
    granted = offer({"PBS_JOBID": "9.server", "NCPUS": "3", "OMP_NUM_THREADS": "3"})
    assert granted.resources["cores"] == 3.0 and granted.job == "PBS job 9.server"


def test_a_torque_job_offers_its_processors_on_this_node_not_the_whole_jobs():
    assert offer({"PBS_JOBID": "9", "PBS_NP": "8", "PBS_NUM_PPN": "4"}).resources["cores"] == 4.0
    assert offer({"PBS_JOBID": "9", "PBS_NP": "2"}).resources["cores"] == 2.0


def test_a_pbs_job_without_cpu_variables_falls_back_on_omp_num_threads():
    assert offer({"PBS_JOBID": "9", "OMP_NUM_THREADS": "2"}).resources["cores"] == 2.0


def test_ncpus_outside_a_pbs_job_is_not_a_grant():
    assert offer({"NCPUS": "1"}).resources["cores"] == 64.0


# -- HTCondor ------------------------------------------------------------------------------------
CONDOR_AD = "/scratch/dir_1/.machine.ad"


def test_an_htcondor_job_offers_its_slots_cpus_memory_disk_and_gpus():
    ad = 'Cpus = 2\nMemory = 3000\nDisk = 2048000\nGPUs = 0\nName = "slot1_1@node"\nTotalCpus = 64\n'
    env = {"_CONDOR_MACHINE_AD": CONDOR_AD, "_CONDOR_SCRATCH_DIR": "/scratch/dir_1"}
    granted = offer(env, files({CONDOR_AD: ad}))
    assert granted.resources == {"cores": 2.0, "memory": 3000.0, "disk": 2000.0, "gpus": 0.0}
    assert granted.sources["cores"] == "Cpus = 2 in _CONDOR_MACHINE_AD"
    assert granted.job == "HTCondor job"
    capped = offer(env, files({CONDOR_AD: ad}), disk=5000)
    assert capped.resources["disk"] == 2000.0 and "--disk asks for 5000 MB of disk" in capped.warnings[0]


def test_machine_ad_attribute_names_ignore_case():
    assert offer({"_CONDOR_MACHINE_AD": CONDOR_AD}, files({CONDOR_AD: "cpus=3\n"})).resources["cores"] == 3.0


def test_an_htcondor_job_without_a_machine_ad_falls_back_on_omp_num_threads():
    assert offer({"_CONDOR_SCRATCH_DIR": "/scratch", "OMP_NUM_THREADS": "3"}).resources["cores"] == 3.0


# -- cgroups -------------------------------------------------------------------------------------
V2_MOUNTS = "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V2_JOB = "/sys/fs/cgroup/system.slice/slurmstepd.scope/job_5"


def cgroup_v2(**limits):
    """A Slurm job under cgroup v2: the limits sit on job_5, the process is in its task_0."""
    contents = {
        "/proc/self/cgroup": "0::/system.slice/slurmstepd.scope/job_5/step_batch/user/task_0\n",
        "/proc/self/mountinfo": V2_MOUNTS,
        f"{V2_JOB}/step_batch/user/task_0/memory.max": "max\n",
        f"{V2_JOB}/step_batch/user/task_0/cpu.max": "max 100000\n",
    }
    contents.update({f"{V2_JOB}/{name}": value for name, value in limits.items()})
    return files(contents)


def test_cgroup_v2_limits_on_a_parent_bound_memory_and_cores():
    bounded = offer(read=cgroup_v2(**{"memory.max": f"{GIB}\n", "cpu.max": "200000 100000\n"}))
    assert bounded.resources["memory"] == 1024.0 and bounded.resources["cores"] == 2.0
    assert bounded.sources["memory"] == f"cgroup memory limit in {V2_JOB}/memory.max"


def test_cgroup_v2_quota_of_one_and_a_half_cpus_is_one_and_half_a_cpu_stays_half():
    assert offer(read=cgroup_v2(**{"cpu.max": "150000 100000"})).resources["cores"] == 1.0
    assert offer(read=cgroup_v2(**{"cpu.max": "50000 100000"})).resources["cores"] == 0.5


def test_cgroup_v2_without_limits_bounds_nothing():
    assert offer(read=cgroup_v2(**{"memory.max": "max", "cpu.max": "max 100000"})).resources == MACHINE


def test_an_explicit_ask_over_the_cgroup_memory_is_capped():
    capped = offer(read=cgroup_v2(**{"memory.max": f"{GIB}"}), memory=4096)
    assert capped.resources["memory"] == 1024.0
    assert "more than the 1024 this process may use" in capped.warnings[0]


V1_MOUNTS = (
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)


def test_cgroup_v1_limits_on_a_parent_bound_memory_and_cores():
    read = files({
        "/proc/self/cgroup": "4:memory:/slurm/uid_0/job_9/step_batch\n3:cpu,cpuacct:/slurm/uid_0/job_9\n0::/\n",
        "/proc/self/mountinfo": V1_MOUNTS,
        "/sys/fs/cgroup/memory/slurm/uid_0/job_9/step_batch/memory.limit_in_bytes": "9223372036854771712\n",
        "/sys/fs/cgroup/memory/slurm/uid_0/job_9/memory.limit_in_bytes": f"{2 * GIB}\n",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
        "/sys/fs/cgroup/cpu,cpuacct/slurm/uid_0/job_9/cpu.cfs_quota_us": "300000\n",
        "/sys/fs/cgroup/cpu,cpuacct/slurm/uid_0/job_9/cpu.cfs_period_us": "100000\n",
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    })
    bounded = offer(read=read)
    assert bounded.resources["memory"] == 2048.0 and bounded.resources["cores"] == 3.0


def test_cgroup_v1_unlimited_bounds_nothing():
    read = files({
        "/proc/self/cgroup": "4:memory:/user\n3:cpu:/\n",
        "/sys/fs/cgroup/memory/user/memory.limit_in_bytes": "9223372036854771712\n",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
    })
    assert offer(read=read).resources == MACHINE


def test_a_containers_cgroup_is_read_at_its_mount_point():
    read = files({
        "/proc/self/cgroup": "4:memory:/docker/abc\n",
        "/proc/self/mountinfo": "35 31 0:32 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes": f"{GIB}\n",
    })
    assert cgroup_dirs(read, "memory") == ["/sys/fs/cgroup/memory"]
    assert offer(read=read).resources["memory"] == 1024.0


def test_a_cgroup_outside_the_namespace_reads_the_mount_and_never_loops():
    read = files({"/proc/self/cgroup": "0::/../../elsewhere\n", "/proc/self/mountinfo": V2_MOUNTS})
    assert cgroup_dirs(read, "") == ["/sys/fs/cgroup/elsewhere", "/sys/fs/cgroup"]
    read = files({"/proc/self/cgroup": "0:://a//b\n", "/proc/self/mountinfo": V2_MOUNTS})
    assert cgroup_dirs(read, "") == ["/sys/fs/cgroup/a/b", "/sys/fs/cgroup/a", "/sys/fs/cgroup"]


def test_no_proc_files_no_cgroup_bounds():
    assert bounds({}, files(), None) == {"cores": [], "memory": [], "disk": [], "gpus": []}


# -- several bounds at once ----------------------------------------------------------------------
def test_the_smallest_bound_wins_and_is_named():
    granted = offer({"SLURM_CPUS_ON_NODE": "4", "SLURM_MEM_PER_NODE": "8000"}, cgroup_v2(**{"memory.max": f"{GIB}"}),
                    affinity=2)
    assert granted.resources["cores"] == 2.0 and granted.sources["cores"] == "sched_getaffinity"
    assert granted.resources["memory"] == 1024.0
    capped = offer({"SLURM_CPUS_ON_NODE": "1"}, affinity=2, cores=3)
    assert "the 1 this job was granted (SLURM_CPUS_ON_NODE=1)" in capped.warnings[0]


def test_garbage_in_batch_variables_is_no_bound():
    env = {"SLURM_CPUS_ON_NODE": "lots", "SLURM_MEM_PER_NODE": "-5", "NSLOTS": "nan", "PBS_JOBID": "1", "PBS_NP": "inf"}
    assert offer(env).resources == MACHINE
