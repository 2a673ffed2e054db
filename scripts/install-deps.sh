#!/usr/bin/env bash
# Installs the Debian packages eidgate needs, only those missing (idempotent).
#   scripts/install-deps.sh run    -> what the server needs (SoftHSMv2)
#   scripts/install-deps.sh test   -> also PostgreSQL (tests run on SQLite and PostgreSQL) and
#                                     redis-server (the scale-out tests start their own) and
#                                     Chromium (the FIDO2 and page browser tests), npm and
#                                     the pinned axe-core of tests/browser (the pages'
#                                     accessibility check) and the openssl CLI (the OCSP
#                                     responder of the interop test)
set -euo pipefail

want=(softhsm2 ca-certificates)
if [[ "${1:-run}" == "test" ]]; then
  want+=(postgresql redis-server)
  # FIDO2 browser test: headless Chromium with a virtual authenticator (DevTools protocol).
  want+=(chromium)
  # OCSP interop test: `openssl ocsp` answers our requests as an independent responder.
  want+=(openssl)
  # The pages' accessibility check (axe-core from the npm registry, tests/browser).
  if ! command -v npm >/dev/null 2>&1; then want+=(nodejs npm); fi
fi

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  sudo_cmd=()
  if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "error: cargo (the Rust toolchain) is required and was not found on PATH" >&2
  exit 1
fi

if [[ "${1:-run}" == "test" ]]; then
  # axe-core at the version pinned in tests/browser/package-lock.json (never committed).
  browser_dir="$(dirname "$0")/../tests/browser"
  if [[ ! -f "$browser_dir/node_modules/axe-core/axe.min.js" || "$browser_dir/package-lock.json" -nt "$browser_dir/node_modules/.package-lock.json" ]]; then
    echo "installing axe-core (tests/browser)" >&2
    npm ci --prefix "$browser_dir" --no-audit --no-fund >/dev/null
  fi
fi
