#!/usr/bin/env bash
# The tests, exactly what CI runs: every fuzz target for a short fixed time on its committed
# seed corpus (fuzz/corpus/<target>, taken from a real repository by fuzz/seeds.rs), then the
# whole test suite with nextest, with a real S3 server on the loopback (scripts/s3-server.sh).
#   FUZZ_SECS  seconds per fuzz target (30; 0 skips fuzzing locally, never in CI)
# Longer fuzzing: cd fuzz && cargo +nightly fuzz run pack -- -max_total_time=3600
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECS:-30}
if [ -n "${CI:-}" ] && [ "$secs" -lt 30 ]; then secs=30; fi
if [ "$secs" -gt 0 ]; then
  cargo +nightly fuzz build --fuzz-dir fuzz >&2
  for target in pack record tree; do
    found=$(mktemp -d)  # new inputs go here; the committed corpus is only read
    echo ">> fuzzing $target for ${secs}s" >&2
    cargo +nightly fuzz run --fuzz-dir fuzz "$target" "$found" "fuzz/corpus/$target" -- \
      -max_total_time="$secs" -rss_limit_mb=4096 -print_final_stats=1 >&2 2> >(tail -n 60 >&2)
    rm -rf "$found"
  done
fi
# A real S3 server for the bucket tests, when SeaweedFS is installed (scripts/install-deps.sh);
# without it those tests skip loudly, and fail in CI.
s3dir=$(mktemp -d)
trap 'scripts/s3-server.sh stop "$s3dir"; rm -rf "$s3dir" || true' EXIT
if [ -x "$(scripts/install-deps.sh --weed-path)" ]; then
  eval "$(scripts/s3-server.sh start "$s3dir")"
fi
cargo nextest run --workspace --no-fail-fast
