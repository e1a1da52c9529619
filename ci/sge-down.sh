#!/usr/bin/env bash
# Stop the Grid Engine daemons started by sge-up.sh.
pkill -x sge_execd 2>/dev/null
pkill -x sge_qmaster 2>/dev/null
exit 0
