#!/usr/bin/env bash
# Bring up a single-node Slurm cluster on this machine (Debian packages), for the batch tests.
# Idempotent: a running cluster is left as it is. Prints the config path; state lives in $SLURM_STATE.
# Each daemon it starts (munged too, unless one was already running) is written as "NAME PID" to
# $SLURM_STATE/started.pids, which ci/slurm-down.sh reads to stop exactly those.
# MinJobAge is low (10 s) so that the batch tests see jobs that Slurm has forgotten.
set -euo pipefail
SLURM_STATE=${SLURM_STATE:-/tmp/workqueue-slurm}
CONF=/etc/slurm/slurm.conf
PIDS=$SLURM_STATE/started.pids

# record NAME PIDFILE: wait for the daemon's pid file, then note "NAME PID"
record() {
    for _ in $(seq 50); do [ -s "$2" ] && break; sleep 0.1; done
    if [ -s "$2" ]; then echo "$1 $(cat "$2")" >> "$PIDS"; else echo "no pid file $2 for $1" >&2; fi
}

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

if sinfo -h -N -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then
    echo "$CONF"; exit 0
fi

# munge: keys and directories owned by munge, then the daemon
[ -f /etc/munge/munge.key ] || /usr/sbin/mungekey --create >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
mkdir -p "$SLURM_STATE"
if ! pgrep -x munged >/dev/null; then
    rm -f /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged
    record munged /run/munge/munged.pid
fi
for _ in $(seq 50); do munge -n | unmunge >/dev/null 2>&1 && break; sleep 0.1; done

host=$(hostname -s)
cpus=$(nproc)
mem=$(slurmd -C 2>/dev/null | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
mem=$(( ${mem:-1024} * 9 / 10 ))
mkdir -p "$SLURM_STATE"/{state,spool} /etc/slurm
cat > "$CONF" <<CONF
ClusterName=workqueue-ci
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerType=sched/backfill
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$SLURM_STATE/state
SlurmdSpoolDir=$SLURM_STATE/spool
SlurmctldPidFile=$SLURM_STATE/slurmctld.pid
SlurmdPidFile=$SLURM_STATE/slurmd.pid
SlurmctldLogFile=$SLURM_STATE/slurmctld.log
SlurmdLogFile=$SLURM_STATE/slurmd.log
MpiDefault=none
MaxArraySize=1001
MinJobAge=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
rm -f "$SLURM_STATE"/slurmctld.pid "$SLURM_STATE"/slurmd.pid
slurmctld -c -f "$CONF"
record slurmctld "$SLURM_STATE"/slurmctld.pid
slurmd -f "$CONF"
record slurmd "$SLURM_STATE"/slurmd.pid
for _ in $(seq 100); do
    sinfo -h -N -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)' && { echo "$CONF"; exit 0; }
    sleep 0.2
done
echo "slurm did not come up; see $SLURM_STATE/*.log" >&2
sinfo >&2 || true
exit 1
