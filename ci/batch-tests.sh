#!/usr/bin/env bash
# The batch-system phase of CI: bring up single-node clusters from Debian packages and run the tests
# marked 'batch' against them. Phase 1: Slurm, with PBS/Torque through slurm-wlm-torque's qsub.
# Phase 2: Grid Engine (its qsub conflicts with Torque's, so sge-up.sh removes slurm-wlm-torque).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0

start=$(date +%s)
bash ci/slurm-up.sh
dpkg -s slurm-wlm-torque >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm-torque >/dev/null
echo "phase 1: slurm (+ pbs/torque) up in $(( $(date +%s) - start )) s"
python3 -m pytest -m batch tests/test_batch_clusters.py -k "not sge" || status=$?
bash ci/slurm-down.sh

start=$(date +%s)
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
bash ci/sge-up.sh
echo "phase 2: grid engine up in $(( $(date +%s) - start )) s"
python3 -m pytest -m batch tests/test_batch_clusters.py -k sge || status=$?
bash ci/sge-down.sh
exit "$status"
