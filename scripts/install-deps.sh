#!/usr/bin/env bash
# Installs the Debian packages a part of the project needs, only when they are missing.
#   scripts/install-deps.sh GROUP...   groups: aot ceph prometheus compose bench test engine kubernetes all
# kubernetes: the Kubernetes manifest checks (tests/Stack.Tests) need kubectl (its kustomize) and Node.js with
# the npm packages of tests/Stack.Tests/kubernetes/package-lock.json, installed there with `npm ci`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
declare -A groups=(
  [aot]="clang zlib1g-dev"
  [ceph]="ceph-mon ceph-osd radosgw ceph-common curl"
  [prometheus]="prometheus prometheus-node-exporter"
  [compose]="docker-compose nginx-light prometheus-nginx-exporter"
  [bench]="s3cmd rclone awscli time hyperfine"
  [test]="strace age"
  [kubernetes]=""
  # the live stack test: debootstrap builds its base image; dockerd runs iptables inside each container's
  # network namespace for the embedded DNS (127.0.0.11). The Docker engine itself is unpacked by
  # scripts/engine-start.sh from Debian's docker.io, containerd, runc and tini, never installed.
  [engine]="debootstrap iptables iproute2"
)
wanted=()
kubernetes=false
for g in "$@"; do
  if [[ "$g" == all || "$g" == kubernetes ]]; then kubernetes=true; fi
  if [[ "$g" == all ]]; then wanted+=(${groups[*]}); continue; fi
  [[ -v "groups[$g]" ]] || { echo "install-deps: unknown group '$g' (known: ${!groups[*]} all)" >&2; exit 2; }
  wanted+=(${groups[$g]})
done
# Node.js may come from another source than Debian (with npm inside its nodejs package): look for the
# commands, and install Debian's only when they are missing.
if $kubernetes; then
  command -v node >/dev/null || wanted+=(nodejs)
  command -v npm >/dev/null || wanted+=(npm)
fi
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} )); then
  sudo=""; (( EUID == 0 )) || sudo="sudo"
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
if $kubernetes; then
  # kubectl 1.27+ (kustomize v5) comes with the machine image; Debian 12's kubernetes-client is 1.20, whose
  # kustomize cannot build deploy/kubernetes (labels, replacements).
  # Without it only those checks fail (with this message), not the whole suite.
  command -v kubectl >/dev/null || echo "install-deps: kubectl (1.27 or newer, for kustomize v5) is not installed: the Kubernetes manifest checks will fail" >&2
  npm_dir="$root/tests/Stack.Tests/kubernetes"
  if [[ ! -f "$npm_dir/node_modules/.package-lock.json" || "$npm_dir/package-lock.json" -nt "$npm_dir/node_modules/.package-lock.json" ]]; then
    echo "install-deps: npm ci in tests/Stack.Tests/kubernetes" >&2
    (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
fi
