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
scripts/install-deps.sh aot ceph prometheus bench
scripts/publish.sh --test-driver
ls -l "$bin"

work=$(mktemp -d /tmp/infratools-demo-XXXXXX)
step "Starting a local S3 server (Ceph RGW) in $work/s3"
set -a; . "$(scripts/s3-server-start.sh "$work/s3")"; set +a
trap 'scripts/s3-server-stop.sh "$work/s3"; echo "demo files left in $work"' EXIT
s3=artifacts/test-bin/s3-driver

step "Uploading a small sample site to s3://demo-site/"
"$s3" mb demo-site
mkdir -p "$work/site/css" "$work/site/blog"
echo "<h1>Hello from infra-tools</h1>" > "$work/site/index.html"
echo "body { color: #333 }" > "$work/site/css/site.css"
echo "<p>first post</p>" > "$work/site/blog/first.html"
for f in index.html css/site.css blog/first.html; do "$s3" put "$work/site/$f" "s3://demo-site/$f" >/dev/null; done
"$s3" ls s3://demo-site/

step "content-pull: mirror the bucket into a web root, with metrics"
www="$work/www"; monitoring="$work/monitoring"
pull() { "$bin/content-pull" s3://demo-site/ "$www" --delete --state-dir "$work/state" --metrics-file "$monitoring/content-pull.prom" "$@"; }
pull
find "$www" -printf '%M %TY-%Tm-%Td %TH:%TM %p\n' | sort -k4
step "content-pull: the metrics file (node_exporter textfile format)"
cat "$monitoring/content-pull.prom"
promtool check metrics < "$monitoring/content-pull.prom" && echo "promtool: OK"

step "content-pull: a second run changes nothing and reads no file"
pull

step "content-pull: one page changed, one added, one deleted upstream"
echo "<h1>Hello again</h1>" > "$work/site/index.html"
echo "<p>second post</p>" > "$work/site/blog/second.html"
"$s3" put "$work/site/index.html" s3://demo-site/index.html >/dev/null
"$s3" put "$work/site/blog/second.html" s3://demo-site/blog/second.html >/dev/null
"$s3" rm s3://demo-site/blog/first.html
pull --dry-run
pull
cat "$www/index.html"; ls "$www/blog"

step "content-pull: a hostile key is skipped, nothing is written outside the web root"
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY AWS_DEFAULT_REGION=$S3_REGION \
  /usr/bin/aws --endpoint-url "$S3_ENDPOINT" s3api put-object --bucket demo-site --key ../evil.txt --body "$work/site/index.html" >/dev/null
pull || echo "content-pull exited with $? (4 = partial failure: a key was skipped)"
ls "$work"
AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET_KEY AWS_DEFAULT_REGION=$S3_REGION \
  /usr/bin/aws --endpoint-url "$S3_ENDPOINT" s3api delete-object --bucket demo-site --key ../evil.txt

step "backup: push acme.json (only if it parses) and a directory tree, then restore them on a 'fresh host'"
mkdir -p "$work/acme" "$work/data/sub"
echo '{"letsencrypt":{"Account":{"Email":"ops@example.org"},"Certificates":[]}}' > "$work/acme/acme.json"
chmod 600 "$work/acme/acme.json"
"$s3" mb demo-backup
"$bin/backup" push --name acme --require-json --metrics-file "$monitoring/backup-acme.prom" "$work/acme/acme.json" s3://demo-backup/acme/acme.json
echo '{"letsencrypt":{"Acc' > "$work/acme/broken.json"
"$bin/backup" push --name acme --require-json "$work/acme/broken.json" s3://demo-backup/acme/acme.json \
  || echo "backup exited with $? (5 = refused): the good copy in S3 was not replaced"
echo "sample $(date)" > "$work/data/sub/sample.txt"
"$bin/backup" push --name data --snapshot --keep-last 3 --state-dir "$work/backup-state" "$work/data" s3://demo-backup/data/
"$bin/backup" restore s3://demo-backup/data/ "$work/restored-data"
diff -r "$work/data" "$work/restored-data" && echo "restored tree is identical"
grep -v '^#' "$monitoring/backup-acme.prom"

step "acme-restore: restore acme.json on a fresh host, then hand over to 'traefik' without the S3 secrets"
"$bin/acme-restore" --source s3://demo-backup/acme/acme.json --file "$work/fresh/traefik/acme.json" \
  --metrics-file "$monitoring/acme-restore.prom" -- \
  sh -c 'echo "traefik would start now as PID $$; S3_SECRET_KEY is ${S3_SECRET_KEY:-not set}"'
ls -l "$work/fresh/traefik/acme.json"
grep -v '^#' "$monitoring/acme-restore.prom"

step "cron: validate the crontab baked into the backup image (the pull image runs content-pull --watch)"
"$bin/cron" -test images/backup/crontab && echo "images/backup/crontab: OK"

step "cron: run content-pull every second for 4 seconds (supercronic's log format), then stop it with SIGTERM"
cat > "$work/crontab" <<CRON
# cron: name=content-pull timeout=1m
* * * * * * * $bin/content-pull --delete -q --state-dir $work/state --metrics-file $monitoring/content-pull.prom s3://demo-site/ $www
CRON
timeout --preserve-status -s TERM 4 "$bin/cron" --metrics-file "$monitoring/cron.prom" "$work/crontab"
echo "cron exited with $?"
grep -v '^#' "$monitoring/cron.prom" | grep -v _bucket
