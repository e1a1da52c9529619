#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by slurm-up.sh.
SLURM_STATE=${SLURM_STATE:-/tmp/workqueue-slurm}
for pidfile in "$SLURM_STATE"/slurmd.pid "$SLURM_STATE"/slurmctld.pid; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
done
pkill -x slurmd 2>/dev/null; pkill -x slurmctld 2>/dev/null
exit 0
