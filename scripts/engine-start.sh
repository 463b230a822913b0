#!/usr/bin/env bash
# Starts a private Docker Engine for the live stack test: Debian's docker.io (20.10 on Debian 12) with its
# containerd and runc, downloaded with `apt-get download` and unpacked with `dpkg -x` into a cache directory
# (never installed: no service, no docker group, nothing in /usr). Run as root:
#   scripts/engine-start.sh [--private-root] [--owner PID]
# It creates a state directory $TMPDIR/infratools-engine-XXXXXX and prints the path of its env file (DOCKER_HOST,
# the docker CLI, the addresses below). Stop it with scripts/engine-stop.sh STATE_DIR.
#
# The engine runs in mount and network namespaces of its own, so what it does is not visible on the host:
# - /srv is STATE_DIR/srv (a fresh server's empty /srv: the compose file's host paths are used unchanged),
#   /run is a tmpfs (so /var/run/docker.sock is this engine's socket, for the socket proxy), and / is made
#   rshared as systemd does on a normal server; --private-root keeps / private (a host without systemd, where
#   Docker refuses node-exporter's rslave bind).
# - bridges and published ports exist only inside the namespace. One veth pair links it to the host: the host
#   end has HOST_ADDRESS (10.N.255.1, printed in the env file), the engine end 10.N.255.2. Containers get
#   addresses from 10.N.0.0/17, routed through the veth: the tests reach the containers, and the containers
#   reach what the tests bind to HOST_ADDRESS (the test's own S3 server). Nothing listens on other addresses.
# Containers run in the cgroup parent /infratools-engine-XXXXXX, so the stop script finds every process by
# cgroup, also after a crash. A state left by a run whose owner process (--owner, default the caller) is gone
# is stopped and removed first, so a crashed run never breaks the next one.
#
# Exit codes: 0 started; 3 this kind of machine cannot run the engine (one line says why: not Linux, not root,
# no namespaces, overlayfs or veth, packages not downloadable): callers count that as skipped; 1 failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "engine: $*" >&2; }
cannot() { echo "engine: cannot run a Docker engine on this machine: $*" >&2; exit 3; }

private_root=0
owner=$PPID
while (( $# )); do
  case "$1" in
    --private-root) private_root=1 ;;
    --owner) owner=$2; shift ;;
    *) echo "usage: engine-start.sh [--private-root] [--owner PID]" >&2; exit 2 ;;
  esac
  shift
done

[[ "$(uname -s)" == Linux ]] || cannot "not Linux"
(( EUID == 0 )) || cannot "needs root (namespaces, mounts, a veth pair)"
for tool in unshare nsenter ip apt-get dpkg flock; do
  command -v "$tool" >/dev/null || cannot "$tool is missing"
done
grep -qw overlay /proc/filesystems || cannot "the kernel has no overlay file system"
[[ -d /sys/fs/cgroup ]] || cannot "no cgroup file system"
[[ -d /srv ]] || cannot "/srv does not exist (the namespace mounts the test's /srv over it)"

parent=${TMPDIR:-/tmp}
cache=${INFRATOOLS_CACHE:-${XDG_CACHE_HOME:+$XDG_CACHE_HOME/infratools}}
cache=${cache:-/var/cache/infratools}

# Stale states first: their owner is gone (a test process that crashed or was killed).
for stale in "$parent"/infratools-engine-*; do
  [[ -f "$stale/owner" ]] || continue
  read -r pid started < "$stale/owner" || continue
  if [[ -r /proc/$pid/stat ]] && [[ "$(awk '{print $22}' "/proc/$pid/stat")" == "$started" ]]; then continue; fi
  log "stopping the engine left by a finished run in $stale"
  "$root/scripts/engine-stop.sh" "$stale" || log "could not clean up $stale completely"
done

# The engine's packages, unpacked once per version into the cache.
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }'; }
version=$(candidate docker.io)
if [[ -z "$version" || "$version" == "(none)" ]]; then
  apt-get update -qq >&2 || true
  version=$(candidate docker.io)
fi
[[ -n "$version" && "$version" != "(none)" ]] || cannot "apt knows no docker.io package"
engine="$cache/engine/docker.io_$version"
if [[ ! -x "$engine/root/usr/sbin/dockerd" ]]; then
  mkdir -p "$cache/engine"
  exec 8> "$cache/engine/.lock"
  flock -w 600 8 || { log "timed out waiting for another run to unpack the engine"; exit 1; }
  if [[ ! -x "$engine/root/usr/sbin/dockerd" ]]; then
    staging=$(mktemp -d "$cache/engine/.staging-XXXXXX")
    log "downloading docker.io $version, containerd, runc and tini into $engine"
    if ! (cd "$staging" && apt-get download -q docker.io containerd runc tini >&2 2>"$staging/download.err"); then
      cat "$staging/download.err" >&2; rm -rf "$staging"
      cannot "apt-get download docker.io containerd runc tini failed"
    fi
    for deb in "$staging"/*.deb; do dpkg -x "$deb" "$staging/root"; done
    ls "$staging"/*.deb | xargs -n1 basename > "$staging/packages"
    rm -f "$staging"/*.deb "$staging/download.err"
    rm -rf "$engine"
    mv "$staging" "$engine"
  fi
  exec 8>&-
fi
bin="$engine/root/usr/bin"
sbin="$engine/root/usr/sbin"

state=$(mktemp -d "$parent/infratools-engine-XXXXXX")
id=${state##*/infratools-engine-}
mkdir -p "$state"/{data,exec,srv}
echo "$owner $(awk '{print $22}' "/proc/$owner/stat" 2>/dev/null || echo 0)" > "$state/owner"
cgroup_parent="/infratools-engine-$id"
echo "$cgroup_parent" > "$state/cgroup-parent"

fail() {
  log "$1"
  [[ -s "$state/dockerd.log" ]] && { echo "--- last lines of $state/dockerd.log" >&2; tail -n 15 "$state/dockerd.log" >&2; }
  "$root/scripts/engine-stop.sh" "$state" >&2 || true
  exit "${2:-1}"
}

# A 10.N.0.0/16 that nothing on the host routes to, and no other engine of ours uses (under a lock).
exec 9> "$parent/infratools-engine.lock"
flock -w 60 9 || fail "timed out waiting for the engine lock"
net=""
for _ in $(seq 1 50); do
  n=$(( 200 + RANDOM % 50 ))
  ip -o link show "itl${n}h" >/dev/null 2>&1 && continue
  grep -qx "$n" "$parent"/infratools-engine-*/net 2>/dev/null && continue
  [[ -z "$(ip -4 route show to match "10.$n.0.1" | grep -v '^default')" ]] || continue
  [[ -z "$(ip -4 route show root "10.$n.0.0/16")" ]] || continue
  net=$n; break
done
[[ -n "$net" ]] || fail "no free 10.N.0.0/16 for the engine's networks"
echo "$net" > "$state/net"
host_if="itl${net}h"; ns_if="itl${net}n"
host_address="10.$net.255.1"; ns_address="10.$net.255.2"; pool="10.$net.0.0/17"
echo "$host_if" > "$state/veth"

cat > "$state/inner.sh" <<INNER
#!/usr/bin/env bash
# Runs inside the engine's new mount and network namespaces, then becomes dockerd.
set -euo pipefail
echo \$\$ > "$state/ns.pid"
for _ in \$(seq 1 200); do ip link show "$ns_if" >/dev/null 2>&1 && break; sleep 0.05; done
ip link set lo up
ip addr add "$ns_address/30" dev "$ns_if"
ip link set "$ns_if" up
ip route add default via "$host_address"
sysctl -qw net.ipv4.ip_forward=1
if [[ $private_root == 0 ]]; then mount --make-rshared /; fi
mount --bind "$state/srv" /srv
mount -t tmpfs -o mode=0755 tmpfs /run
export PATH="$sbin:$bin:\$PATH"
exec dockerd --data-root "$state/data" --exec-root "$state/exec" --pidfile "$state/dockerd.pid" \\
  -H "unix://$state/docker.sock" -H unix:///var/run/docker.sock \\
  --iptables=false --ip-masq=false --bridge=none --userland-proxy=false \\
  --default-address-pool "base=$pool,size=24" --cgroup-parent "$cgroup_parent" \\
  --log-driver json-file --log-opt max-size=10m
INNER
chmod 0755 "$state/inner.sh"

setsid unshare --mount --net --propagation private "$state/inner.sh" > "$state/dockerd.log" 2>&1 < /dev/null &
for _ in $(seq 1 200); do [[ -s "$state/ns.pid" ]] && break; sleep 0.05; done
[[ -s "$state/ns.pid" ]] || fail "the namespace did not start"
ns_pid=$(cat "$state/ns.pid")
ip link add "$host_if" type veth peer name "$ns_if" 2>"$state/veth.err" \
  || { cat "$state/veth.err" >&2; fail "cannot create a veth pair" 3; }
ip link set "$ns_if" netns "$ns_pid"
ip addr add "$host_address/30" dev "$host_if"
ip link set "$host_if" up
ip route add "$pool" via "$ns_address" dev "$host_if"
exec 9>&-

export DOCKER_HOST="unix://$state/docker.sock"
deadline=$(( $(date +%s) + ${INFRATOOLS_ENGINE_START_TIMEOUT:-90} ))
until "$bin/docker" version >/dev/null 2>&1; do
  kill -0 "$ns_pid" 2>/dev/null || fail "dockerd exited"
  (( $(date +%s) < deadline )) || fail "dockerd did not answer within ${INFRATOOLS_ENGINE_START_TIMEOUT:-90} s"
  sleep 0.1
done

cat > "$state/env" <<ENV
DOCKER_HOST=unix://$state/docker.sock
INFRATOOLS_ENGINE_STATE=$state
INFRATOOLS_ENGINE_DOCKER=$bin/docker
INFRATOOLS_ENGINE_VERSION=$version
INFRATOOLS_ENGINE_PID=$ns_pid
INFRATOOLS_ENGINE_HOST_ADDRESS=$host_address
INFRATOOLS_ENGINE_POOL=$pool
INFRATOOLS_ENGINE_SRV=$state/srv
INFRATOOLS_ENGINE_PRIVATE_ROOT=$private_root
INFRATOOLS_CACHE=$cache
ENV
log "docker.io $version running (pid $ns_pid), state in $state, host address $host_address"
echo "$state/env"
