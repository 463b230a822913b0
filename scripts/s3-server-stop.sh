#!/usr/bin/env bash
# Stops the Ceph daemons that s3-server-start.sh started in STATE_DIR, by their recorded pids (never by name):
# radosgw first, then the OSD, then the mon, each one waited for before the next.
#   scripts/s3-server-stop.sh [STATE_DIR]           stop and remove the state directory
#   scripts/s3-server-stop.sh --check [STATE_DIR]   exit 0 if every recorded daemon is still running
#   scripts/s3-server-stop.sh --rgw-only STATE_DIR  stop radosgw only (an S3 outage), keep the cluster and the
#                                                   state; s3-server-start.sh --rgw-only starts it again
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
check=0; rgw_only=0
if [[ "${1:-}" == "--check" ]]; then check=1; shift; fi
if [[ "${1:-}" == "--rgw-only" ]]; then rgw_only=1; shift; fi
state=${1:-$root/.s3-server}
[[ -f "$state/pids" ]] || { (( check )) && exit 1; exit 0; }
state=$(cd "$state" && pwd)

# A recorded pid is ours only while its command line still names our config file.
ours() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -qF "$state/ceph.conf"; }

if (( check )); then
  while read -r _ pid; do ours "$pid" || exit 1; done < "$state/pids"
  exit 0
fi

names="rgw osd mon"
(( rgw_only )) && names="rgw"
for name in $names; do
  pid=$(awk -v n="$name" '$1 == n { print $2 }' "$state/pids")
  [[ -n "$pid" ]] && ours "$pid" || continue
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 100); do ours "$pid" || break; sleep 0.1; done
  if ours "$pid"; then kill -KILL "$pid" 2>/dev/null; sleep 0.1; fi
done
(( rgw_only )) && exit 0
rm -rf "$state"
