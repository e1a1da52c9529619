#!/usr/bin/env bash
# stop-recorded.sh FILE: stop each daemon listed in FILE as "NAME PID" lines (written by the
# ci/*-up.sh scripts), in reverse order, by pid, only while that pid is still a process named NAME.
# SIGTERM, up to 10 s to exit, then SIGKILL. FILE is removed afterwards.
pids_file=$1
[ -f "$pids_file" ] || { echo "nothing to stop: no $pids_file"; exit 0; }

is_named() {  # is_named PID NAME
    [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]
}

tac "$pids_file" | while read -r name pid; do
    [ -n "$pid" ] || continue
    if ! is_named "$pid" "$name"; then
        echo "$name ($pid) already gone"
        continue
    fi
    kill -TERM "$pid"
    for _ in $(seq 100); do is_named "$pid" "$name" || break; sleep 0.1; done
    if is_named "$pid" "$name"; then
        kill -KILL "$pid"
        echo "$name ($pid) killed"
    else
        echo "$name ($pid) stopped"
    fi
done
rm -f "$pids_file"
exit 0
