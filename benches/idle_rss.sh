#!/usr/bin/env bash
# Idle resident memory of the server with the embedded defaults (issue 22: at most 25 MB):
# SQLite, memory ephemeral store, SoftHSM, dev TLS, in a fresh data dir. Starts the
# release binary, waits until /readyz answers, lets it idle, reads VmRSS, VmHWM and the
# thread count from /proc, and stops it.
#   benches/idle_rss.sh [BINARY]     (default target/release/eidgate; build it first)
set -euo pipefail
bin=$(realpath "${1:-target/release/eidgate}")
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/eidgate.toml" <<TOML
issuer = "https://localhost:$port"
listen = "127.0.0.1:$port"
data_dir = "$dir/data"
TOML
cd "$dir"
"$bin" serve --config "$dir/eidgate.toml" > "$dir/log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  if curl -ksf "https://127.0.0.1:$port/readyz" > /dev/null 2>&1; then break; fi
  sleep 0.2
done
curl -ksf "https://127.0.0.1:$port/readyz" > /dev/null || { echo "not ready:"; tail -20 "$dir/log"; exit 1; }
sleep "${EIDGATE_IDLE_SECS:-5}"
grep -E '^(VmRSS|VmHWM|Threads|RssAnon|RssFile)' "/proc/$pid/status"
if [[ -n "${EIDGATE_IDLE_SMAPS:-}" ]]; then awk '/^[0-9a-f]+-[0-9a-f]+ /{name=$6} /^Rss:/{if ($2>512) print $2" kB", name}' "/proc/$pid/smaps" | sort -rn | head -25; fi
