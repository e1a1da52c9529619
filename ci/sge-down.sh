#!/usr/bin/env bash
# Stop the Grid Engine daemons that ci/sge-up.sh started, and only those, by the pids it recorded.
SGE_STATE=${SGE_STATE:-/tmp/workqueue-sge}
exec bash "$(dirname "$0")/stop-recorded.sh" "$SGE_STATE/started.pids"
