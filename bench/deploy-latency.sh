#!/usr/bin/env bash
# Deploy latency and the idle watcher (issue 15): see bench/deploy_latency.py --help.
#   bench/deploy-latency.sh ENV_FILE                 poll 1 s, webhook, RGW notification, cron baseline; 20 deploys each
#   bench/deploy-latency.sh ENV_FILE --idle 600      an idle watcher for 10 minutes: its S3 requests and RSS
# ENV_FILE: what scripts/s3-server-start.sh printed. Needs artifacts/bin/content-pull (scripts/publish.sh), nginx
# (scripts/install-deps.sh compose) and /usr/bin/aws (scripts/install-deps.sh bench).
set -euo pipefail
exec python3 "$(dirname "$0")/deploy_latency.py" "$@"
