#!/usr/bin/env bash
# Stops what tools/local-aws/start.sh started: exactly the process groups whose leaders' PIDs it
# wrote into .local-aws/*.pid (after checking the PID still runs the expected program), SIGTERM
# first (cargo lambda watch then stops its function processes), SIGKILL after 10 s.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state="$root/.local-aws"
stopped=0
for spec in moto:strict_moto lambda:cargo-lambda; do
  name="${spec%%:*}" expect="${spec#*:}"
  pidfile="$state/$name.pid"
  [[ -f "$pidfile" ]] || continue
  pid="$(cat "$pidfile")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null \
     && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$expect"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
    fi
    stopped=$((stopped + 1))
  fi
  rm -f "$pidfile" "$state/$name.port"
done
rm -f "$state/env" "$state/env.tmp"
echo "stop.sh: stopped $stopped process group(s)" >&2
