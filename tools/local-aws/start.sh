#!/usr/bin/env bash
# Starts okra's local AWS in the background, for manual use and for test runs that want one shared
# stack (okra-testkit attaches to it when OKRA_LOCAL_AWS_ENV points at .local-aws/env):
#   strict_moto.py -H 127.0.0.1 -p MOTO         (moto's AWS APIs: EKS, ELBv2, EC2, CloudWatch, ...,
#                                                strict where AWS is: tools/local-aws/strict_moto.py)
#   cargo lambda watch -A 127.0.0.1 -P LAMBDA   (Lambda Invoke API over the workspace's binaries)
# Ports: OKRA_MOTO_PORT / OKRA_LAMBDA_PORT, else free ones. Writes into .local-aws/:
#   env            AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_LAMBDA, region and moto's dummy credentials
#   moto.pid lambda.pid, moto.port lambda.port, moto.log lambda.log
# Functions get their environment by inheritance from cargo lambda watch, which is started with
# .local-aws/env exported (so their AWS SDK clients talk to moto).
# Options: --build   build every workspace function binary first (`cargo build --bin NAME` each,
#                    exactly what cargo lambda watch later runs, so first invocations are fast)
# Stop with tools/local-aws/stop.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state="$root/.local-aws"
build=0
for arg in "$@"; do
  case "$arg" in
    --build) build=1 ;;
    -h|--help) sed -n '2,15p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "start.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

venv="$root/.tools/venv"
if [[ ! -x "$venv/bin/moto_server" || ! -x "$venv/bin/cargo-lambda" ]]; then
  echo "start.sh: local AWS tools missing: run tools/local-aws/install.sh (or make setup)" >&2
  exit 1
fi
py="$venv/bin/python"

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
if pid_alive "$state/moto.pid" || pid_alive "$state/lambda.pid"; then
  echo "start.sh: local AWS already running (tools/local-aws/stop.sh stops it):" >&2
  cat "$state/env"
  exit 0
fi
mkdir -p "$state"
rm -f "$state"/{moto,lambda}.{pid,port} "$state/env"

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
moto_port="${OKRA_MOTO_PORT:-$(free_port)}"
lambda_port="${OKRA_LAMBDA_PORT:-$(free_port)}"
[[ "$moto_port" != "$lambda_port" ]] || lambda_port="$(free_port)"

cat > "$state/env.tmp" <<ENV
AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port
AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:$lambda_port
AWS_REGION=us-east-1
AWS_DEFAULT_REGION=us-east-1
AWS_ACCESS_KEY_ID=testing
AWS_SECRET_ACCESS_KEY=testing
AWS_SESSION_TOKEN=testing
AWS_EC2_METADATA_DISABLED=true
AWS_CONFIG_FILE=/dev/null
AWS_SHARED_CREDENTIALS_FILE=/dev/null
ENV
# The functions inherit this environment: no AWS_* of the developer's (profiles, real keys).
while read -r var; do unset "$var"; done < <(compgen -e | grep '^AWS_' || true)
set -a
# shellcheck disable=SC1091
. "$state/env.tmp"
set +a

if [[ $build == 1 ]]; then
  for manifest in "$root"/functions/*/Cargo.toml; do
    [[ -f "$manifest" ]] || continue
    name="$(basename "$(dirname "$manifest")")"
    echo "start.sh: cargo build --bin $name" >&2
    (cd "$root" && cargo build --quiet --bin "$name")
  done
fi

# Each server is the leader of its own session/process group (setsid without a fork: a background
# job of a non-interactive shell is no group leader), so $! is its pid and its pgid.
cd "$root"
setsid env OKRA_ELB_HEALTH_TIME_SCALE="${OKRA_ELB_HEALTH_TIME_SCALE:-1}" \
  "$venv/bin/python3" "$root/tools/local-aws/strict_moto.py" -H 127.0.0.1 -p "$moto_port" </dev/null >"$state/moto.log" 2>&1 &
echo $! > "$state/moto.pid"
setsid "$venv/bin/cargo-lambda" lambda watch --ignore-changes \
  -A 127.0.0.1 -P "$lambda_port" </dev/null >"$state/lambda.log" 2>&1 &
echo $! > "$state/lambda.pid"
echo "$moto_port" > "$state/moto.port"
echo "$lambda_port" > "$state/lambda.port"

if ! "$py" - "$moto_port" "$lambda_port" "$(cat "$state/moto.pid")" "$(cat "$state/lambda.pid")" \
     "${OKRA_START_TIMEOUT:-60}" <<'PY'
import os, socket, sys, time, urllib.request, urllib.error
moto, lam, moto_pid, lam_pid, timeout = sys.argv[1:6]
def answers(url):
    try:
        urllib.request.urlopen(url, timeout=2)
        return True
    except urllib.error.HTTPError:
        return True          # any HTTP answer means the server is up
    except Exception:
        return False
deadline = time.time() + float(timeout)
up = {"moto": False, "lambda": False}
while time.time() < deadline:
    for name, pid in (("moto", moto_pid), ("lambda", lam_pid)):
        try:
            os.kill(int(pid), 0)
        except OSError:
            sys.exit(f"{name} exited during start-up (see .local-aws/{name}.log)")
    up["moto"] = up["moto"] or answers(f"http://127.0.0.1:{moto}/moto-api/")
    if not up["lambda"]:     # a TCP connect: any HTTP probe would log an error line there
        try:
            socket.create_connection(("127.0.0.1", int(lam)), timeout=2).close()
            up["lambda"] = True
        except OSError:
            pass
    if all(up.values()):
        sys.exit(0)
    time.sleep(0.1)
sys.exit(f"not answering after {timeout}s: {[k for k, v in up.items() if not v]}")
PY
then
  echo "start.sh: start-up failed; stopping" >&2
  tail -n 20 "$state/moto.log" "$state/lambda.log" >&2 || true
  "$here/stop.sh" >/dev/null 2>&1 || true
  exit 1
fi
mv "$state/env.tmp" "$state/env"
echo "start.sh: local AWS up (source tools/local-aws/env.sh, or .local-aws/env):" >&2
cat "$state/env"
