#!/bin/sh
# cargo-shim.sh: the benchmarks (tools/bench/bench.py) set CARGO to this script for `cargo lambda
# watch`, which starts each function as `$CARGO run [--quiet] [--color C] --manifest-path
# Cargo.toml --bin NAME` (the tests run okra-testkit's own local Lambda service instead).
# When $OKRA_PREBUILT_DIR/NAME exists (built just before with the real cargo, so it is fresh),
# the binary is exec'd directly: an
# invocation then never waits on cargo's build-directory lock (held by any other cargo, rust-analyzer
# or a developer's build in the same target dir) and starts in milliseconds. Anything else goes to
# the real cargo ($OKRA_REAL_CARGO, else `cargo` on PATH). The environment (AWS_LAMBDA_RUNTIME_API,
# AWS_LAMBDA_FUNCTION_NAME, ... set by cargo lambda watch, plus the endpoints) passes through.
real="${OKRA_REAL_CARGO:-cargo}"
if [ "$1" = run ] && [ -n "${OKRA_PREBUILT_DIR:-}" ]; then
  bin=""
  prev=""
  for arg in "$@"; do
    [ "$prev" = "--bin" ] && bin="$arg"
    case "$arg" in --bin=*) bin="${arg#--bin=}" ;; --release|-r|--profile|--profile=*|--example|--example=*|--target|--target=*) bin=""; break ;; esac
    prev="$arg"
  done
  if [ -n "$bin" ] && [ -x "$OKRA_PREBUILT_DIR/$bin" ]; then
    exec "$OKRA_PREBUILT_DIR/$bin"
  fi
fi
exec "$real" "$@"
