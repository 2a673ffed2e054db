#!/usr/bin/env bash
# Idle resident memory of the server with the embedded defaults (issue 22: at most 25 MB):
# SQLite, memory ephemeral store, SoftHSM, dev TLS, in a fresh data dir. Starts the
# release binary, waits until /readyz answers, lets it idle, reads VmRSS, VmHWM and the
# thread count from /proc, and stops it.
# Also prints how many of the functions listed in link/startup-symbols.txt (the start-up
# code the linker puts together, build.rs) the binary has: when few, the list is stale
# (renamed functions, updated dependencies) and scripts/startup-order.sh remakes it.
#   benches/idle_rss.sh [BINARY]     (default target/release/eidgate; build it first)
set -euo pipefail
. "$(dirname "$0")/../scripts/lib/embedded.sh"
order=$(realpath "$(dirname "$0")/../link/startup-symbols.txt")
bin=$(realpath "${1:-target/release/eidgate}")
if [[ -f "$order" ]] && command -v nm >/dev/null 2>&1; then
  listed=$(grep -vc '^#' "$order" || true)
  present=$(nm --defined-only "$bin" 2>/dev/null | awk 'NR==FNR { if ($0 !~ /^#/) want[$0] = 1; next } ($3 in want) { n[$3] = 1 } END { print length(n) }' "$order" -)
  echo "start-up order: $present of $listed listed functions in the binary"
fi
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
embedded_config "$dir"
cd "$dir"
"$bin" serve --config "$dir/eidgate.toml" > "$dir/log" 2>&1 &
pid=$!
wait_ready "$dir/log"
sleep "${EIDGATE_IDLE_SECS:-5}"
grep -E '^(VmRSS|VmHWM|Threads|RssAnon|RssFile)' "/proc/$pid/status"
if [[ -n "${EIDGATE_IDLE_SMAPS:-}" ]]; then awk '/^[0-9a-f]+-[0-9a-f]+ /{name=$6} /^Rss:/{if ($2>512) print $2" kB", name}' "/proc/$pid/smaps" | sort -rn | head -25; fi
