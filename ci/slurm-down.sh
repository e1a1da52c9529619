#!/usr/bin/env bash
# Stop the daemons that ci/slurm-up.sh started, and only those: by the pids it wrote to
# $SLURM_STATE/started.pids ("NAME PID" lines), each checked to still be NAME (a pid can be reused).
SLURM_STATE=${SLURM_STATE:-/tmp/workqueue-slurm}
exec bash "$(dirname "$0")/stop-recorded.sh" "$SLURM_STATE/started.pids"
