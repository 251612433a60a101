#!/usr/bin/env bash
# Installs and starts what the store and report tests talk to, on loopback only:
#   - PostgreSQL (Debian's `postgresql`): a cluster listening on 127.0.0.1, a role and database
#     `benchkit`; prints `BENCHKIT_TEST_POSTGRES=postgres://...` for the caller to export;
#   - Chromium (Debian's `chromium`), headless, for the report's rendering test.
# Idempotent: a running cluster and an existing role/database are reused.
#
#   eval "$(scripts/test-services.sh)"
set -euo pipefail
# Only the export lines go to standard output (the caller evals it): everything the tools print
# (pg_ctlcluster's "Removed stale pid file.", apt) goes to standard error. A function with its
# output redirected, not `exec 3>&1`: the PostgreSQL daemon started here would inherit an extra
# descriptor on the caller's pipe and keep `$(...)` waiting forever.
start_services() {
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  export DEBIAN_FRONTEND=noninteractive

  need=()
  command -v pg_ctlcluster >/dev/null || need+=(postgresql)
  command -v chromium >/dev/null || need+=(chromium)
  # PNG export rasterises text with a system font.
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
  if [ ${#need[@]} -gt 0 ]; then
    echo "test-services: installing ${need[*]}" >&2
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi

  # The newest installed cluster version; Debian's package creates `main` on install, but a
  # machine image may have had it removed.
  ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  port=${BENCHKIT_PG_PORT:-5432}
  if ! pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main"' | grep -q .; then
    $sudo pg_createcluster "$ver" main -p "$port" -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  fi
  port=$(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" {print $3}')
  # Loopback only, whatever the cluster was configured with.
  $sudo pg_conftool "$ver" main remove listen_addresses 2>/dev/null || true
  echo "listen_addresses = '127.0.0.1'" | $sudo tee "/etc/postgresql/$ver/main/conf.d/benchkit-loopback.conf" >/dev/null
  if pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
    $sudo pg_ctlcluster "$ver" main restart
  else
    $sudo pg_ctlcluster "$ver" main start
  fi
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p "$port" && break
    sleep 1
  done
  pg_isready -q -h 127.0.0.1 -p "$port" || { echo "test-services: PostgreSQL did not start on 127.0.0.1:$port" >&2; exit 1; }

  psql_admin() { $sudo -u postgres psql -q -v ON_ERROR_STOP=1 -p "$port" "$@"; }
  [ "$(id -u)" = 0 ] && psql_admin() { su postgres -c "psql -q -v ON_ERROR_STOP=1 -p $port $(printf '%q ' "$@")"; }
  # A test-only password on a loopback-only server: the role can do nothing outside its database.
  password=benchkit-test
  if [ "$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'benchkit'")" != 1 ]; then
    psql_admin -c "CREATE ROLE benchkit LOGIN PASSWORD '$password'"
  fi
  if [ "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'benchkit_test'")" != 1 ]; then
    psql_admin -c "CREATE DATABASE benchkit_test OWNER benchkit"
  fi
}
start_services >&2
echo "export BENCHKIT_TEST_POSTGRES=postgres://benchkit:$password@127.0.0.1:$port/benchkit_test"
echo "export BENCHKIT_CHROMIUM=$(command -v chromium)"
