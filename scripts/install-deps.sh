#!/usr/bin/env bash
# Installs the Debian packages a part of the project needs, only when they are missing.
#   scripts/install-deps.sh GROUP...   groups: aot ceph prometheus compose bench test engine all
set -euo pipefail
declare -A groups=(
  [aot]="clang zlib1g-dev"
  [ceph]="ceph-mon ceph-osd radosgw ceph-common curl"
  [prometheus]="prometheus prometheus-node-exporter"
  [compose]="docker-compose nginx-light prometheus-nginx-exporter"
  [bench]="s3cmd rclone awscli time hyperfine"
  [test]="strace"
  # the live stack test: debootstrap builds its base image; dockerd runs iptables inside each container's
  # network namespace for the embedded DNS (127.0.0.11). The Docker engine itself is unpacked by
  # scripts/engine-start.sh from Debian's docker.io, containerd, runc and tini, never installed.
  [engine]="debootstrap iptables iproute2"
)
wanted=()
for g in "$@"; do
  if [[ "$g" == all ]]; then wanted+=(${groups[*]}); continue; fi
  [[ -n "${groups[$g]:-}" ]] || { echo "install-deps: unknown group '$g' (known: ${!groups[*]} all)" >&2; exit 2; }
  wanted+=(${groups[$g]})
done
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
(( ${#missing[@]} )) || exit 0
sudo=""; (( EUID == 0 )) || sudo="sudo"
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >&2
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
