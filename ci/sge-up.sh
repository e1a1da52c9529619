#!/usr/bin/env bash
# Bring up a single-node Son of Grid Engine cell (Debian packages) for the batch tests.
# Its qsub conflicts with slurm-wlm-torque's: that package is removed first.
# Each daemon it starts is written as "NAME PID" to $SGE_STATE/started.pids, which ci/sge-down.sh
# reads to stop exactly those.
set -euo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
SGE_STATE=${SGE_STATE:-/tmp/workqueue-sge}
PIDS=$SGE_STATE/started.pids
host=$(hostname -s)
mkdir -p "$SGE_STATE"

# start NAME: start the daemon unless one runs, and note "NAME PID" of the one started (the
# daemons fork away; the newest process of that name, right after the start, is ours)
start() {
    pgrep -x "$1" >/dev/null && return 0
    "/usr/lib/gridengine/$1"
    for _ in $(seq 50); do pgrep -n -x "$1" >/dev/null && break; sleep 0.1; done
    echo "$1 $(pgrep -n -x "$1")" >> "$PIDS"
}

if dpkg -s slurm-wlm-torque >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq slurm-wlm-torque >/dev/null
fi
if ! command -v qconf >/dev/null; then
    debconf-set-selections <<SEL
gridengine-common gridengine/gridengineconfig boolean true
gridengine-common gridengine/sgecell string default
gridengine-common gridengine/sgemaster string $host
gridengine-master shared/gridenginemaster string $host
gridengine-master shared/gridenginecell string default
gridengine-master shared/gridengineconfig boolean true
SEL
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gridengine-master gridengine-exec gridengine-client >/dev/null
fi

common=$SGE_ROOT/$SGE_CELL/common
grep -q "$host" "$common/host_aliases" 2>/dev/null || echo "$host localhost $(hostname)" >> "$common/host_aliases"
echo "$host" > "$common/act_qmaster"

start sge_qmaster
for _ in $(seq 100); do qconf -sh >/dev/null 2>&1 && break; sleep 0.2; done

tmp=$(mktemp -d)
qconf -sconf global > "$tmp/global"
sed -i -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' "$tmp/global"
qconf -Mconf "$tmp/global" >/dev/null
qconf -ssconf > "$tmp/sched"
sed -i -e 's/^schedule_interval .*/schedule_interval 0:0:1/' -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
    -e 's/^flush_finish_sec .*/flush_finish_sec 1/' "$tmp/sched"
qconf -Msconf "$tmp/sched" >/dev/null
qconf -ah "$host" >/dev/null 2>&1 || true
qconf -as "$host" >/dev/null 2>&1 || true
if ! qconf -sel 2>/dev/null | grep -q "$host"; then
    printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' "$host" > "$tmp/exec"
    qconf -Ae "$tmp/exec" >/dev/null
fi
if ! qconf -sql 2>/dev/null | grep -qx all.q; then
    # take qconf's own queue template (through EDITOR), then drop the missing 'smp' PE and load limits
    printf '#!/bin/sh\ncp "$1" %s/template\n' "$tmp" > "$tmp/grab" && chmod +x "$tmp/grab"
    EDITOR="$tmp/grab" qconf -aq all.q >/dev/null 2>&1 || true
    sed -e "s/^hostlist .*/hostlist $host/" -e "s/^pe_list .*/pe_list NONE/" -e "s/^slots .*/slots $(nproc)/" \
        -e "s/^load_thresholds .*/load_thresholds NONE/" -e "s#^shell .*#shell /bin/sh#" "$tmp/template" > "$tmp/q"
    qconf -Aq "$tmp/q" >/dev/null
fi
start sge_execd
for _ in $(seq 100); do
    qstat -f 2>/dev/null | grep -q "all.q@" && qhost 2>/dev/null | grep -q "$host" && { echo "sge up"; exit 0; }
    sleep 0.2
done
echo "SGE did not come up" >&2
qstat -f >&2 || true
exit 1
