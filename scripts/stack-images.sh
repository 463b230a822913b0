#!/usr/bin/env bash
# Builds the images of the live stack test in a private engine (scripts/engine-start.sh), as root:
#   scripts/stack-images.sh ENGINE_ENV_FILE
# 1. The base: Debian 12 from `debootstrap --variant=minbase bookworm` plus the packages below, with the user
#    our tool images run as (10001). Built once and cached as a tarball in $INFRATOOLS_CACHE/base/KEY.tar
#    (default /var/cache/infratools), KEY being a hash of the recipe (suite, mirror, package list, recipe
#    version); imported into the engine as infratools-base:KEY.
# 2. The stand-ins, tests/Stack.Tests/Live/standins/NAME/Dockerfile, built FROM the base with the glibc AOT
#    binaries of artifacts/bin (scripts/publish.sh) and the stack's own configuration files (images/...), and
#    tagged infratools-standin/NAME:live (the live test's compose override points every service at one).
#    The real images (images/*, Alpine and musl) stay what users build; a test compares the two.
# Prints one line per step with its duration.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
env_file=${1:?usage: stack-images.sh ENGINE_ENV_FILE}
set -a; . "$env_file"; set +a
docker=$INFRATOOLS_ENGINE_DOCKER
cache=${INFRATOOLS_CACHE:-/var/cache/infratools}
log() { echo "stack-images: $*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

suite=bookworm
mirror=${INFRATOOLS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=(nginx-light prometheus prometheus-node-exporter prometheus-nginx-exporter wget ca-certificates tzdata)
recipe=2 # change when the steps below change
key=$(printf '%s\n' "$recipe" "$suite" "$mirror" "${packages[@]}" | sha256sum | cut -c1-12)
base_tar="$cache/base/$key.tar"
base_image="infratools-base:$key"

umount_under() { # unmounts whatever is mounted under a directory (what debootstrap may leave on failure)
  local m
  for m in $(awk -v d="$1/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do umount -l "$m" || true; done
}

build_base() {
  "$root/scripts/install-deps.sh" engine
  local tmp rootfs
  tmp=$(mktemp -d "$cache/base/.build-XXXXXX")
  rootfs="$tmp/rootfs"
  trap 'umount_under "$tmp"; rm -rf --one-file-system "$tmp"' RETURN
  log "building the base $key: debootstrap --variant=minbase $suite $mirror (about a minute)"
  if ! debootstrap --variant=minbase "$suite" "$rootfs" "$mirror" > "$tmp/debootstrap.log" 2>&1; then
    tail -n 20 "$tmp/debootstrap.log" >&2; log "debootstrap failed"; return 1
  fi
  # No service may start inside the chroot while packages are installed.
  printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"
  if ! chroot "$rootfs" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${packages[*]}" \
      > "$tmp/apt.log" 2>&1; then
    tail -n 20 "$tmp/apt.log" >&2; log "installing ${packages[*]} in the base failed"; return 1
  fi
  chroot "$rootfs" groupadd -g 10001 infra
  chroot "$rootfs" useradd -u 10001 -g 10001 -M -d /nonexistent -s /usr/sbin/nologin infra
  # Smaller and faster to import: no package lists or archives, documentation, locales, or the JavaScript of
  # Prometheus' web UI (the test uses its API only).
  rm -rf "$rootfs/usr/sbin/policy-rc.d" "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
    "$rootfs"/usr/share/locale/* "$rootfs/usr/share/javascript"
  umount_under "$tmp"
  tar --numeric-owner -C "$rootfs" -cf "$tmp/base.tar" .
  mv "$tmp/base.tar" "$base_tar"
}

start=$(now)
mkdir -p "$cache/base"
if [[ ! -s "$base_tar" ]]; then
  exec 7> "$cache/base/.lock"
  flock -w 900 7 || { log "timed out waiting for another run building the base"; exit 1; }
  [[ -s "$base_tar" ]] || build_base
  exec 7>&-
  log "base $key built and cached in $base_tar ($(since "$start"))"
else
  log "base $key cached in $base_tar"
fi

step=$(now)
if ! "$docker" image inspect "$base_image" >/dev/null 2>&1; then
  "$docker" import "$base_tar" "$base_image" >/dev/null
fi
"$docker" tag "$base_image" infratools-standin/alpine:live
log "base imported as $base_image ($(since "$step"))"

# Each stand-in gets a build context with only the files its COPY lines name: bin/TOOL is artifacts/bin/TOOL,
# every other source a path in the repository.
step=$(now)
for tool in content-pull acme-restore backup cron; do
  [[ -x "$root/artifacts/bin/$tool" ]] || { log "artifacts/bin/$tool is missing: run scripts/publish.sh"; exit 1; }
done
contexts=$(mktemp -d /tmp/infratools-standins-XXXXXX)
trap 'rm -rf "$contexts"' EXIT
built=()
for dockerfile in "$root"/tests/Stack.Tests/Live/standins/*/Dockerfile; do
  name=$(basename "$(dirname "$dockerfile")")
  context="$contexts/$name"
  mkdir -p "$context"
  for source in $(awk '$1 == "COPY" { for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i }' "$dockerfile"); do
    case "$source" in
      bin/*) from="$root/artifacts/$source" ;;
      *) from="$root/$source" ;;
    esac
    [[ -e "$from" ]] || { log "$name: COPY $source: $from does not exist"; exit 1; }
    mkdir -p "$context/$(dirname "$source")"
    cp -a "$from" "$context/$source"
  done
  # Built four at a time: most of a build is the classic builder committing one layer per instruction.
  (( ${#built[@]} % 4 == 3 )) && wait
  DOCKER_BUILDKIT=0 "$docker" build -q --build-arg "BASE=$base_image" -t "infratools-standin/$name:live" \
    -f "$dockerfile" "$context" > "$context.log" 2>&1 || echo "$name" >> "$contexts/failed" &
  built+=("$name")
done
wait
if [[ -s "$contexts/failed" ]]; then
  for name in $(cat "$contexts/failed"); do cat "$contexts/$name.log" >&2; log "building the stand-in $name failed"; done
  exit 1
fi
log "stand-ins built: ${built[*]} ($(since "$step"))"
log "done in $(since "$start")"
