#!/usr/bin/env bash
# Release mode at scale (issue 14): FILES small objects published with `content-pull publish`, pulled in full with
# --releases, then CHANGED of them changed and published again, and the release pulled that links the rest:
# time, S3 requests (--debug), files linked vs downloaded (metrics), new inodes; the no-change run's file opens
# under DEST (strace); and a full re-download into an empty DEST for comparison.
#   bench/releases.sh ENV_FILE [FILES] [CHANGED]        (ENV_FILE: what scripts/s3-server-start.sh printed)
# Needs artifacts/bin/content-pull (scripts/publish.sh; BIN=path measures another binary) and curl.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
set -a; . "$1"; set +a
files=${2:-100000}
changed=${3:-1000}
bin=${BIN:-$root/artifacts/bin/content-pull}
work=$(mktemp -d "${TMPDIR:-/var/tmp}/rel-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
bucket=rel-bench-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
empty_sha256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855 # RGW wants the payload hash header
curl -fsS -X PUT --aws-sigv4 "aws:amz:${S3_REGION:-us-east-1}:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" -H "x-amz-content-sha256: $empty_sha256" "$S3_ENDPOINT/$bucket" >/dev/null
seconds() { local start=$1; awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }'; }
metric() { awk -v m="$1" '$1 == m { print $2 }' "$work/m.prom"; }
requests() { sed -n 's/.* \([0-9]*\) S3 requests.*/\1/p' "$1" | tail -1; }

python3 - "$work/build" "$files" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(1)
for i in range(n):
    d = os.path.join(root, f"d{i % 100:02d}", f"s{i // 100 % 10}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.html"), "wb") as f:
        f.write(random.randbytes(random.randint(200, 4000)))
PY
echo "files=$files changed=$changed bucket=$bucket"
t=$(date +%s.%N); "$bin" publish "$work/build" "s3://$bucket/" -j 64 -q >/dev/null; echo "publish all: $(seconds "$t") s"
pull() { "$bin" "s3://$bucket/" "$1" --releases --delete --state-dir "$2" -j 64 --metrics-file "$work/m.prom" --debug 2>"$work/log"; }
t=$(date +%s.%N); pull "$work/www" "$work/state"; echo "pull full --releases: $(seconds "$t") s, $(requests "$work/log") S3 requests, $(metric 'content_pull_last_run_release_files{how="downloaded"}') downloaded"
first=$(readlink "$work/www/current")

python3 - "$work/build" "$changed" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
random.seed(2)
for p in random.sample(paths, n):
    with open(p, "wb") as f:
        f.write(random.randbytes(random.randint(200, 4000)))
PY
t=$(date +%s.%N); "$bin" publish "$work/build" "s3://$bucket/" -j 64 -q >/dev/null; echo "publish $changed changed: $(seconds "$t") s"
t=$(date +%s.%N); pull "$work/www" "$work/state"; took=$(seconds "$t")
second=$(readlink "$work/www/current")
# New inodes of the release: its files no other release shares (link count 1) and its directories.
cost() { echo "$(( $(find "$1" -type f -links 1 | wc -l) + $(find "$1" -type d | wc -l) )) new inodes, $(find "$1" -type f -links 1 -printf '%s\n' | awk '{ s += $1 } END { printf "%.2f MB", s / 1e6 }') of new file data"; }
echo "pull $changed changed --releases: $took s, $(requests "$work/log") S3 requests, $(metric 'content_pull_last_run_release_files{how="linked"}') linked, $(metric 'content_pull_last_run_release_files{how="downloaded"}') downloaded, publish $(metric content_pull_last_publish_duration_seconds) s, $(cost "$work/www/$second") ($first -> $second)"

strace -f -e trace=open,openat,openat2 -o "$work/strace" "$bin" "s3://$bucket/" "$work/www" --releases --delete --state-dir "$work/state" -j 64 2>/dev/null
echo "no-change pull: $(grep -c "\"$work/www/" "$work/strace" || true) opens under DEST ($(grep "\"$work/www/" "$work/strace" | grep -vc O_DIRECTORY || true) of files), current $(readlink "$work/www/current")"

t=$(date +%s.%N); pull "$work/www2" "$work/state2"; took=$(seconds "$t")
echo "full re-download --releases into an empty DEST: $took s, $(requests "$work/log") S3 requests, $(cost "$work/www2/$(readlink "$work/www2/current")")"
