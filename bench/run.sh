#!/usr/bin/env bash
# The benchmark in one command: content-pull, backup and cron against s3cmd and rclone on a throwaway local
# S3 server, in one run. See bench/bench.py --help, or bench/README.md.
#   bench/run.sh                 full run (5,000 files, 3 repetitions), rewrites bench/RESULTS.md
#   bench/run.sh --quick         smoke test (200 files, 1 repetition)
set -euo pipefail
exec python3 "$(dirname "$0")/bench.py" "$@"
