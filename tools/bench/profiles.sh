#!/usr/bin/env bash
# Profile options for one function (shift-weights), x86_64: builds it with opt-level "s", "z" and
# with panic = "unwind" (each on top of the shipped release profile: lto, codegen-units = 1,
# strip), into target/bench-prof (reused: a variant already built is a no-op), and copies each
# binary to target/bench-prof/bins/shift-weights-<variant>. `make bench` (tools/bench/bench.py)
# then measures every binary found there next to the shipped build: size, zipped size, cold start.
# Slow (each variant recompiles the AWS SDK at its opt-level), so it is not part of `make bench`:
# run it once with `make bench-profiles`.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/bench-prof/bins
mkdir -p "$out"
for variant in opt-s opt-z unwind; do
  case $variant in
    opt-s) cfg=(--config 'profile.release.opt-level="s"') ;;
    opt-z) cfg=(--config 'profile.release.opt-level="z"') ;;
    unwind) cfg=(--config 'profile.release.panic="unwind"') ;;
  esac
  echo "== shift-weights, $variant"
  CARGO_TARGET_DIR=target/bench-prof cargo build --release --locked -p shift-weights "${cfg[@]}"
  cp target/bench-prof/release/shift-weights "$out/shift-weights-$variant"
done
