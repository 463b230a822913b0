#!/usr/bin/env bash
# Stops the private Docker engine that scripts/engine-start.sh started in STATE_DIR and removes everything it
# left, never touching anything else:
#   scripts/engine-stop.sh STATE_DIR
# 1. an S3 server the live test started in STATE_DIR/s3 (scripts/s3-server-start.sh, bound to the veth's host
#    address) is stopped by scripts/s3-server-stop.sh;
# 2. every container of the engine is removed and dockerd is stopped (SIGTERM, SIGKILL after 30 s), by the
#    pid recorded in STATE_DIR and only while that pid's command line still names STATE_DIR;
# 3. whatever still runs in the engine's cgroup parent (containers of an engine that crashed) or names
#    STATE_DIR on its command line (containerd, its shims) is killed, by pid;
# 4. the host end of the veth pair goes with the engine's network namespace (deleted if it is still there),
#    the engine's cgroups are removed, and so is STATE_DIR.
# Safe to run twice, and on a state whose engine never started or crashed.
set -uo pipefail
state=${1:?usage: engine-stop.sh STATE_DIR}
[[ -d "$state" ]] || exit 0
state=$(cd "$state" && pwd)
[[ "$state" == */infratools-engine-* ]] || { echo "engine-stop: $state is not an engine state directory" >&2; exit 2; }
log() { echo "engine-stop: $*" >&2; }

# dockerd, containerd and the shims name the engine's exec root on their command line (the namespace's first
# process, before it becomes dockerd, names inner.sh); callers of this script (which name STATE_DIR) do not.
names_state() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' < "/proc/$1/cmdline" | grep -qF -e "$state/exec" -e "$state/inner.sh"; }
alive() { [[ -d /proc/$1 ]]; }
wait_gone() { # pid tenths-of-seconds
  local i
  for (( i = 0; i < $2; i++ )); do alive "$1" || return 0; sleep 0.1; done
  ! alive "$1"
}

if [[ -f "$state/s3/pids" ]]; then "$(dirname "$0")/s3-server-stop.sh" "$state/s3"; fi

dockerd=""
for f in "$state/ns.pid" "$state/dockerd.pid"; do
  [[ -s "$f" ]] && names_state "$(cat "$f")" && dockerd=$(cat "$f") && break
done
docker=""
for candidate in "$(sed -n 's/^INFRATOOLS_ENGINE_DOCKER=//p' "$state/env" 2>/dev/null)" /var/cache/infratools/engine/*/root/usr/bin/docker; do
  [[ -x "$candidate" ]] && { docker=$candidate; break; }
done

if [[ -n "$dockerd" ]]; then
  if [[ -n "$docker" && -S "$state/docker.sock" ]]; then
    export DOCKER_HOST="unix://$state/docker.sock"
    ids=$(timeout 20 "$docker" ps -aq 2>/dev/null)
    [[ -n "$ids" ]] && timeout 120 "$docker" rm -f $ids >/dev/null 2>&1
  fi
  kill -TERM "$dockerd" 2>/dev/null
  wait_gone "$dockerd" 300 || { log "dockerd $dockerd did not stop within 30 s: killing it"; kill -KILL "$dockerd" 2>/dev/null; wait_gone "$dockerd" 50; }
fi

# What is left: container processes (by cgroup), containerd and its shims (by command line).
cgroup_parent=$(cat "$state/cgroup-parent" 2>/dev/null)
cgroup_dirs() {
  [[ -n "$cgroup_parent" ]] || return 0
  local d
  for d in /sys/fs/cgroup/*"$cgroup_parent" /sys/fs/cgroup"$cgroup_parent"; do [[ -d "$d" ]] && echo "$d"; done
}
for _ in 1 2 3 4 5; do
  pids=$(for d in $(cgroup_dirs); do find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null; done | sort -u)
  for p in /proc/[0-9]*; do p=${p#/proc/}; names_state "$p" && pids+=$'\n'"$p"; done
  pids=$(grep -v '^$' <<< "$pids" | sort -u)
  [[ -z "$pids" ]] && break
  kill -KILL $pids 2>/dev/null
  sleep 0.2
done

if [[ -s "$state/veth" ]]; then
  veth=$(cat "$state/veth")
  for _ in $(seq 1 50); do ip link show "$veth" >/dev/null 2>&1 || break; sleep 0.1; done
  ip link show "$veth" >/dev/null 2>&1 && ip link del "$veth" 2>/dev/null
fi
for d in $(cgroup_dirs); do find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
# The engine's mounts lived in its own mount namespace, gone with it; anything mounted under STATE_DIR here
# would be the caller's.
if grep -qF " $state/" /proc/self/mountinfo; then
  log "something is still mounted under $state: leaving it"; exit 1
fi
rm -rf "$state"
exit 0
