#!/usr/bin/env bash
# A throwaway JupyterLab on 127.0.0.1 for the browser tests (and for trying the dashboard by hand).
#
#   scripts/start-jupyter.sh start [ROOT_DIR]   start it serving ROOT_DIR (default: notebooks/);
#                                               prints url=, token=, port=, pid= lines
#   scripts/start-jupyter.sh stop               stop it (SIGTERM to the recorded pid, then SIGKILL)
#   scripts/start-jupyter.sh status             exit 0 when it answers
#
# State (pid, port, token, url, log, config/runtime/settings dirs) lives in
# $CELLINE_JUPYTER_STATE (default: ${TMPDIR:-/tmp}/celline-jupyter). Nothing in ~/.jupyter is read
# or written. The server inherits this environment, and so do its kernels.
set -euo pipefail

STATE="${CELLINE_JUPYTER_STATE:-${TMPDIR:-/tmp}/celline-jupyter}"
PYTHON="${PYTHON:-python3}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

answers() {
  local url token
  url="$(cat "$STATE/url" 2>/dev/null)" || return 1
  token="$(cat "$STATE/token" 2>/dev/null)" || return 1
  "$PYTHON" - "$url" "$token" <<'PY'
import sys, urllib.request
try:
    urllib.request.urlopen(f"{sys.argv[1]}/api/status?token={sys.argv[2]}", timeout=2).read()
except Exception:
    sys.exit(1)
PY
}

start() {
  local root="${1:-$REPO/notebooks}"
  root="$(cd "$root" && pwd)"
  if [[ -f "$STATE/pid" ]] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; then
    echo "start-jupyter: already running (pid $(cat "$STATE/pid")); run '$0 stop' first" >&2
    return 1
  fi
  mkdir -p "$STATE/config" "$STATE/runtime" "$STATE/settings/@jupyterlab/apputils-extension" "$STATE/ipython"
  # No "Jupyter news" toast over the page.
  echo '{"fetchNews": "false", "checkForUpdates": false}' \
    > "$STATE/settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
  local port token
  port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  token="$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')"
  echo "$port" > "$STATE/port"
  echo "$token" > "$STATE/token"
  echo "http://127.0.0.1:$port" > "$STATE/url"
  JUPYTER_CONFIG_DIR="$STATE/config" JUPYTER_RUNTIME_DIR="$STATE/runtime" \
  JUPYTERLAB_SETTINGS_DIR="$STATE/settings" JUPYTERLAB_WORKSPACES_DIR="$STATE/workspaces" IPYTHONDIR="$STATE/ipython" \
    setsid "$PYTHON" -m jupyterlab --no-browser --ip=127.0.0.1 --port="$port" --port-retries=0 --allow-root \
      --IdentityProvider.token="$token" --ServerApp.root_dir="$root" --ServerApp.disable_check_xsrf=False \
      --LabApp.news_url= </dev/null >"$STATE/log" 2>&1 &
  local pid=$!
  echo "$pid" > "$STATE/pid"
  for _ in $(seq 1 120); do
    if answers; then
      echo "url=http://127.0.0.1:$port"
      echo "token=$token"
      echo "port=$port"
      echo "pid=$pid"
      echo "root=$root"
      echo "log=$STATE/log"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "start-jupyter: the server exited; its log ($STATE/log):" >&2
      tail -n 30 "$STATE/log" >&2 || true
      rm -f "$STATE/pid"
      return 1
    fi
    sleep 0.5
  done
  echo "start-jupyter: no answer on port $port after 60 s; log: $STATE/log" >&2
  stop
  return 1
}

stop() {
  [[ -f "$STATE/pid" ]] || { echo "start-jupyter: not running (no $STATE/pid)"; return 0; }
  local pid
  pid="$(cat "$STATE/pid")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true   # SIGTERM: the server shuts its kernels down (SIGINT would ask y/n)
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "start-jupyter: pid $pid ignored SIGTERM for 10 s; sending SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$STATE/pid"
  echo "start-jupyter: stopped (pid $pid)"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) answers && echo "running: $(cat "$STATE/url") (pid $(cat "$STATE/pid"))" ;;
  *) echo "usage: $0 start [ROOT_DIR] | stop | status" >&2; exit 2 ;;
esac
