#!/usr/bin/env bash
# The demo: installs what is missing, publishes the AOT binaries, starts a throwaway S3 server (Ceph RGW on
# 127.0.0.1) and runs the tools end to end against it. Everything it creates lives in one temporary
# directory, and the S3 server is stopped at the end.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin="$root/artifacts/bin"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing what is missing and publishing the Native AOT binaries"
scripts/install-deps.sh aot ceph prometheus
scripts/publish.sh --test-driver
ls -l "$bin"

work=$(mktemp -d /tmp/infratools-demo-XXXXXX)
step "Starting a local S3 server (Ceph RGW) in $work/s3"
set -a; . "$(scripts/s3-server-start.sh "$work/s3")"; set +a
trap 'scripts/s3-server-stop.sh "$work/s3"; echo "demo files left in $work"' EXIT
s3=artifacts/test-bin/s3-driver

step "Putting a few objects and listing them back"
"$s3" mb demo-site
mkdir -p "$work/site/css"
echo "<h1>Hello from infra-tools</h1>" > "$work/site/index.html"
echo "body { color: #333 }" > "$work/site/css/site.css"
"$s3" put "$work/site/index.html" s3://demo-site/index.html
"$s3" put "$work/site/css/site.css" s3://demo-site/css/site.css
"$s3" ls s3://demo-site/

step "Writing a Prometheus textfile with the shared metrics writer"
"$s3" write-metrics "$work/monitoring/demo.prom"
cat "$work/monitoring/demo.prom"
promtool check metrics < "$work/monitoring/demo.prom" && echo "promtool: OK"
