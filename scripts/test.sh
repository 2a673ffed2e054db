#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian machine: formatting, clippy, unit and
# integration tests on SQLite, the store contract and every server test again on a
# local PostgreSQL cluster started for this run. (Benches are type-checked by clippy
# --all-targets; run them with `cargo bench`.)
# Installs what it needs; idempotent; leaves nothing running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test

echo "== format and lint"
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings

echo "== PostgreSQL for the run"
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_dir=$(mktemp -d /tmp/eidgate-pg.XXXXXX)
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
  chown postgres: "$pg_dir"
  as_pg=(runuser -u postgres --)
fi
stop_pg() {
  "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}
trap stop_pg EXIT
"${as_pg[@]}" "$pg_bin/initdb" -U postgres -A trust -D "$pg_dir/data" >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -w -l "$pg_dir/log" \
  -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c fsync=off -c synchronous_commit=on -c max_connections=400" start >/dev/null
export EIDGATE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"

# Every pass's output is kept as compliance evidence (R-SUP-1): `eidgate compliance report
# --results target/test-results` reads libtest's `test NAME ... ok|FAILED|ignored` lines.
results=target/test-results
rm -rf "$results"
mkdir -p "$results"
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
keep() { # keep PASS SCOPE SKIP: a header for the pass's results file
  printf '# pass: %s\n# commit: %s\n# scope: %s\n# skip: %s\n# started: %s\n' \
    "$1" "$commit" "$2" "$3" "$(date -u +%FT%TZ)" >"$results/$1.txt"
}

echo "== tests (servers on SQLite; store contract on SQLite and PostgreSQL; scale-out on PostgreSQL + Redis)"
keep sqlite all ""
cargo test --locked 2>&1 | tee -a "$results/sqlite.txt"

echo "== integration tests again with every server on PostgreSQL"
# (The scale-out tests always run on PostgreSQL + Redis of their own: once is enough.)
keep postgres it "scale::"
EIDGATE_TEST_SERVER_DB=postgres cargo test --locked --test it -- --skip scale:: 2>&1 | tee -a "$results/postgres.txt"

echo "== compliance evidence (every requirement needs a test that passed in both passes)"
target/debug/eidgate compliance report --results "$results" >target/compliance-report.txt || {
  cat target/compliance-report.txt
  exit 1
}
tail -n 1 target/compliance-report.txt

echo "== all tests passed"
