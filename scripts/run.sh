#!/usr/bin/env bash
# Runs eidgate with the embedded defaults on a fresh Debian machine: SQLite and a SoftHSM
# token under ./data (created on first start), memory ephemeral store, TLS with a
# generated development certificate, listening on https://localhost:8443.
# Extra arguments go to `eidgate serve` (e.g. --config FILE). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh run
cargo build --release --locked --bin eidgate
exec target/release/eidgate serve "$@"
