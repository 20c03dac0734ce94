#!/bin/sh
# watchdog.sh PGID...
# Kills the given process groups once its standard input reaches end of file.
#
# okra-testkit starts moto_server and `cargo lambda watch`, each as the leader of its own process
# group, then starts this script with a pipe as stdin and keeps the pipe's write end open for as
# long as it wants them alive. When the owner drops it or dies in any way (normal exit, panic,
# SIGKILL from a test harness time-out), the kernel closes the write end, `cat` sees EOF and the
# groups get SIGTERM (cargo lambda watch then stops the function processes it started, which run
# in their own sessions), then SIGKILL after a grace period. No polling, no PID-reuse window
# (a process group id stays allocated while any member lives).
# (POSIX `kill -s SIG -- -PGID` form: dash's kill rejects `kill -TERM -- -PGID`.)
cat >/dev/null
alive() {
  for g in "$@"; do kill -s 0 -- "-$g" 2>/dev/null && return 0; done
  return 1
}
for g in "$@"; do kill -s TERM -- "-$g" 2>/dev/null; done
i=0
while alive "$@" && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
for g in "$@"; do kill -s 0 -- "-$g" 2>/dev/null && kill -s KILL -- "-$g" 2>/dev/null; done
exit 0
