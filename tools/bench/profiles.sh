#!/usr/bin/env bash
# Profile options for one function (shift-weights), x86_64. The shipped release profile (Cargo.toml:
# lto, codegen-units = 1, opt-level "s", panic = "abort", strip) with one setting changed at a time:
#   opt-3   opt-level 3 (speed)         opt-z   opt-level "z" (size)
#   deps-s  opt-level 3 for okra's own crates, "s" for the dependencies
#   unwind  panic = "unwind"
# Each is built into target/bench-prof (reused: a variant already built is a no-op) and copied to
# target/bench-prof/bins/shift-weights-<variant>; `make bench` (tools/bench/bench.py) then measures
# every binary found there next to the shipped build: size, zipped size, cold start, CPU, RSS.
# Slow (each variant recompiles the AWS SDK with its settings, ~6-10 minutes on 2 cores), so it is
# not part of `make bench`: run it once with `make bench-profiles`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/bench-prof/bins
rm -rf "$out"
mkdir -p "$out"
for variant in opt-3 opt-z deps-s unwind; do
  case $variant in
    opt-3) cfg=(--config 'profile.release.opt-level=3') ;;
    opt-z) cfg=(--config 'profile.release.opt-level="z"') ;;
    deps-s) cfg=(--config 'profile.release.opt-level=3' --config 'profile.release.package."*".opt-level="s"') ;;
    unwind) cfg=(--config 'profile.release.panic="unwind"') ;;
  esac
  echo "== shift-weights, $variant"
  CARGO_TARGET_DIR=target/bench-prof cargo build --release --locked -p shift-weights "${cfg[@]}"
  cp target/bench-prof/release/shift-weights "$out/shift-weights-$variant"
done
