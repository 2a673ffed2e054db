# Sourced by scripts that start a throwaway server with the embedded defaults (SQLite, memory
# ephemeral store, SoftHSM, dev TLS): benches/idle_rss.sh, scripts/startup-order.sh.
#   embedded_config DIR   -> writes DIR/eidgate.toml for a free loopback port; sets $port
#   wait_ready LOG [SECS] -> waits until /readyz answers (default 60 s); prints LOG's tail if not

embedded_config() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$1/eidgate.toml" <<TOML
issuer = "https://localhost:$port"
listen = "127.0.0.1:$port"
data_dir = "$1/data"
TOML
}

wait_ready() {
  for _ in $(seq 1 $((${2:-60} * 5))); do
    if curl -ksf "https://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "not ready:" >&2
  tail -20 "$1" >&2
  return 1
}
