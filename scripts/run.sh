#!/usr/bin/env bash
# `make run`: start llm-katan's echo backend on 127.0.0.1:8000 unless something already listens there,
# then the gateway; whatever ends the gateway (Ctrl-C, SIGTERM, a crash) also stops the llm-katan we started.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
CONFIG=${CONFIG:-config/config.yaml}
BACKEND_HOST=127.0.0.1
BACKEND_PORT=8000
KATAN_PID=""
GATEWAY_PID=""

listening() {  # listening HOST PORT: is anything accepting connections there?
  "$VENV/bin/python" -c 'import socket, sys
with socket.socket() as s:
    s.settimeout(0.5)
    sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)' "$1" "$2"
}

healthy() {  # healthy URL: does it answer 200?
  "$VENV/bin/python" -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=1).status == 200 else 1)
except OSError:
    sys.exit(1)' "$1"
}

stop() {  # stop PID: SIGTERM, then wait for it
  if [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; then
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}

cleanup() {
  trap - EXIT INT TERM
  stop "$GATEWAY_PID"
  if [[ -n "$KATAN_PID" ]]; then
    echo "run.sh: stopping llm-katan (pid $KATAN_PID)" >&2
    stop "$KATAN_PID"
  fi
}
trap cleanup EXIT
trap 'exit 0' INT  # a requested stop, completed cleanly by cleanup
trap 'exit 0' TERM

# A bad config fails here, with its one-line error, before anything is started.
"$VENV/bin/responses-gateway" check-config "$CONFIG" >/dev/null

mkdir -p data
if listening "$BACKEND_HOST" "$BACKEND_PORT"; then
  echo "run.sh: $BACKEND_HOST:$BACKEND_PORT is already in use: using it as the backend" >&2
else
  echo "run.sh: starting llm-katan (echo backend, model qwen3) on $BACKEND_HOST:$BACKEND_PORT, log data/llm-katan.log" >&2
  "$VENV/bin/llm-katan" --model qwen3 --backend echo --providers openai \
    --host "$BACKEND_HOST" --port "$BACKEND_PORT" --stats-file data/llm-katan-stats.json \
    >data/llm-katan.log 2>&1 &
  KATAN_PID=$!
  for _ in $(seq 1 150); do  # up to ~30 s
    healthy "http://$BACKEND_HOST:$BACKEND_PORT/health" && break
    if ! kill -0 "$KATAN_PID" 2>/dev/null; then
      KATAN_PID=""
      echo "run.sh: llm-katan exited; its log:" >&2
      tail -n 20 data/llm-katan.log >&2
      exit 1
    fi
    sleep 0.2
  done
  healthy "http://$BACKEND_HOST:$BACKEND_PORT/health" || { echo "run.sh: llm-katan not healthy after 30 s" >&2; exit 1; }
fi

# In the background and waited for, so this shell can handle INT/TERM and clean up.
"$VENV/bin/responses-gateway" serve --config "$CONFIG" &
GATEWAY_PID=$!
rc=0
wait "$GATEWAY_PID" || rc=$?
GATEWAY_PID=""
exit "$rc"
