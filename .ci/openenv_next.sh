#!/usr/bin/env bash
# OpenEnv's validator (openenv 0.10, RFC 008) on this environment, from the project
# virtualenv (openenv is the runtime dependency). Run by .ci/run after `uv sync`.
#   1. static level: openenv.yaml parses (manifest schema 2) and its declarations are in bounds;
#   2. runtime level: the server as a local process in its own network namespace (no Docker
#      engine in CI), probed over /ws with validation/runtime.json (scripts/validate_runtime.py);
#      fails unless every runtime check this build of the validator implements passes;
#   3. a live server (`--url`): OpenEnv's HTTP probes.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
server=""
trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"' EXIT

.venv/bin/openenv validate . --level static --skip-build

.venv/bin/python scripts/validate_runtime.py --json "$work/runtime-report.json"

port="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
PORT="$port" HOST=127.0.0.1 .venv/bin/python -m server.app > "$work/server.log" 2>&1 &
server=$!
.venv/bin/python - "$port" <<'PY' || { cat "$work/server.log"; exit 1; }
import sys, time, urllib.request
deadline = time.monotonic() + 90
while True:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/health", timeout=2)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit("the server did not answer /health within 90 s")
        time.sleep(0.5)
PY
.venv/bin/openenv validate --url "http://127.0.0.1:$port"
