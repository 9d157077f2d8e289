#!/usr/bin/env bash
# Forward compatibility: the successor package `openenv` (0.10.x) must accept this
# environment. It gets its own virtualenv; openenv-core 0.3 stays the pinned runtime.
# Checks the openenv.yaml `validation:` block (static level, no image build) and a
# live server (`--url`, plain HTTP probes, no Docker). Run by .ci/run after `uv sync`.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
server=""
trap 'if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
python3 -m uv venv --quiet "$work/venv"
python3 -m uv pip install --quiet --python "$work/venv/bin/python" "openenv==0.10.*"
openenv_next="$work/venv/bin/openenv"

"$openenv_next" validate . --level static --skip-build

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
PORT="$port" HOST=127.0.0.1 .venv/bin/python -m server.app > "$work/server.log" 2>&1 &
server=$!
python3 - "$port" <<'PY' || { cat "$work/server.log"; exit 1; }
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
"$openenv_next" validate --url "http://127.0.0.1:$port"
