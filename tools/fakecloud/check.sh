#!/usr/bin/env bash
# The cross-check against a second emulator (issue 12; docs/local-aws.md, "A second emulator"):
# runs e2e suites that touch ELBv2, EKS, EC2, CloudWatch and DynamoDB with OKRA_EMULATOR=fakecloud
# (okra-testkit then starts .tools/fakecloud/bin/fakecloud instead of the strict moto) and compares
# the tests that fail with tools/fakecloud/expected-failures.txt, where each expected failure names
# the difference between fakecloud and AWS that causes it. Exit 0 when they match; otherwise the
# tests that newly fail or newly pass are listed (a fakecloud upgrade or an okra change moved one).
# Results: target/fakecloud-check/{results.txt,<suite>.log}. Run by `make fakecloud-check`.
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="$root/target/fakecloud-check"
suites=(${OKRA_FAKECLOUD_SUITES:-state_table strict_aws functions doctor rollout})
mkdir -p "$out"
: > "$out/results.txt"
cd "$root"
for suite in "${suites[@]}"; do
  echo "fakecloud-check: $suite" >&2
  OKRA_EMULATOR=fakecloud cargo test --locked -q -p okra-e2e --test e2e -- "$suite::" \
    --test-threads="${OKRA_FAKECLOUD_THREADS:-2}" > "$out/$suite.log" 2>&1
  # libtest's lines: `test NAME ... ok` / `test NAME ... FAILED` (-q prints names only on failure,
  # so the passing ones come from --list).
  # One test binary, a module per suite: the names come as `suite::test`.
  OKRA_EMULATOR=fakecloud cargo test --locked -q -p okra-e2e --test e2e -- "$suite::" --list 2>/dev/null |
    sed -n 's/^\([a-z0-9_:]*\): test$/\1/p' | while read -r name; do
      if grep -q "^    $name\$" "$out/$suite.log"; then echo "$name FAILED"; else echo "$name ok"; fi
    done >> "$out/results.txt"
done
grep ' FAILED$' "$out/results.txt" | sed 's/ FAILED$//' | sort > "$out/failed.txt"
grep -v '^\s*#' tools/fakecloud/expected-failures.txt | sed 's/\s*#.*//; /^\s*$/d' | sort > "$out/expected.txt"
passed=$(grep -c ' ok$' "$out/results.txt" || true)
failed=$(wc -l < "$out/failed.txt")
echo "fakecloud-check: $passed passed, $failed failed (expected $(wc -l < "$out/expected.txt"))" >&2
if diff -u "$out/expected.txt" "$out/failed.txt" > "$out/diff.txt"; then
  echo "fakecloud-check: the failures are the expected ones (tools/fakecloud/expected-failures.txt)" >&2
  exit 0
fi
echo "fakecloud-check: failures differ from tools/fakecloud/expected-failures.txt (- expected, + now):" >&2
sed -n '3,$p' "$out/diff.txt" >&2
exit 1
