#!/usr/bin/env bash
# Incremental Prometheus snapshots against full copies (bench/README.md, "Prometheus snapshots"):
#   bench/tsdb.sh [--series N] [--interval S] [--history-days N] [--days N] [--keep-last N] [--output FILE]
# Publishes the AOT binaries (the full copies are pushed by bin/backup), starts a throwaway S3 server unless
# INFRATOOLS_TEST_S3_ENV names a running one, runs bench/tsdb (a real Prometheus and promtool are needed) and
# stops only the server it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/publish.sh
if [[ -z "${INFRATOOLS_TEST_S3_ENV:-}" ]]; then
  state=$(mktemp -d /tmp/tsdb-bench-s3.XXXXXX)
  trap 'scripts/s3-server-stop.sh "$state"' EXIT
  INFRATOOLS_TEST_S3_ENV=$(scripts/s3-server-start.sh "$state")
  export INFRATOOLS_TEST_S3_ENV
fi
dotnet run -c Release --project bench/tsdb -- "$@"
