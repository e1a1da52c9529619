#!/usr/bin/env bash
# The batch-system phase of CI: bring up single-node clusters from Debian packages and run the tests
# marked 'batch' against them. Slurm with PBS/Torque (slurm-wlm-torque's qsub over Slurm) first;
# Grid Engine would need its own phase, since its qsub and Torque's cannot be installed together.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash ci/slurm-up.sh
command -v qsub >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm-torque >/dev/null
echo "slurm up in $(( $(date +%s) - start )) s"
status=0
python3 -m pytest -m batch tests/test_batch_clusters.py || status=$?
bash ci/slurm-down.sh
exit "$status"
