#!/usr/bin/env bash
# Starts a throwaway single-node Ceph cluster (one mon, one memstore OSD, radosgw with the beast frontend)
# bound to 127.0.0.1, for tests, benchmarks and the demo. Everything lives in one state directory:
#   scripts/s3-server-start.sh [STATE_DIR]        (default: .s3-server in the project root)
# On success it prints the path of STATE_DIR/env, a file of S3_* variables to source, e.g.
#   . "$(scripts/s3-server-start.sh)"
# S3_TEST_ADDRESS=ADDR binds the S3 endpoint (radosgw) to ADDR instead of 127.0.0.1, e.g. the host end of the
# live stack test's veth pair (scripts/engine-start.sh), so containers reach it; the mon and the OSD stay on
# 127.0.0.1. Use only 127.0.0.1 or an address of an interface the caller created.
#   scripts/s3-server-start.sh --rgw-only STATE_DIR
# starts radosgw again in a running cluster after `scripts/s3-server-stop.sh --rgw-only STATE_DIR` (an S3
# outage: the buckets survive in the OSD), on the same address and port.
# S3_TEST_TCP_NODELAY=0 starts radosgw without tcp_nodelay (the beast frontend's default): a response written
# in pieces then waits for the client's ACK, which Linux delays by up to 40 ms unless the client asks for quick
# ACKs (our tools do, s3cmd and rclone do not). That is the setting of issue 7's reference numbers
# (bench/run.sh --server-latency).
# S3_TEST_PORT=PORT fixes radosgw's port; S3_TEST_MON_PORT=PORT is the first port the mon tries (a port that
# turns out taken is replaced, which is what the tests use it to prove).
# Stop it with scripts/s3-server-stop.sh [STATE_DIR]; it stops exactly the pids recorded here.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
rgw_only=0
if [[ "${1:-}" == "--rgw-only" ]]; then rgw_only=1; shift; fi
state=${1:-$root/.s3-server}
address=${S3_TEST_ADDRESS:-127.0.0.1}
access_key=${S3_TEST_ACCESS_KEY:-infratoolsaccess}
secret_key=${S3_TEST_SECRET_KEY:-infratools-secret-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')}

log() { echo "s3-server: $*" >&2; }

s3_up() { [[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$1/")" =~ ^(200|403)$ ]]; }
if (( rgw_only )); then
  [[ -f "$state/pids" && -f "$state/env" ]] || { log "no S3 server state in $state"; exit 1; }
  state=$(cd "$state" && pwd)
  endpoint=$(sed -n 's|^S3_ENDPOINT=http://||p' "$state/env")
  if s3_up "$endpoint"; then log "radosgw already answers on $endpoint"; echo "$state/env"; exit 0; fi
  radosgw -c "$state/ceph.conf" -n client.rgw -f >> "$state/log/rgw.out" 2>&1 &
  sed -i '/^rgw /d' "$state/pids"
  echo "rgw $!" >> "$state/pids"
  for _ in $(seq 1 1200); do
    if s3_up "$endpoint"; then log "radosgw started again on $endpoint"; echo "$state/env"; exit 0; fi
    kill -0 "$(awk '$1 == "rgw" { print $2 }' "$state/pids")" 2>/dev/null || break
    sleep 0.05
  done
  log "radosgw did not answer on $endpoint again (see $state/log)"; exit 1
fi

"$root/scripts/install-deps.sh" ceph >&2

if [[ -f "$state/pids" ]] && "$root/scripts/s3-server-stop.sh" --check "$state"; then
  log "already running in $state"
  echo "$state/env"
  exit 0
fi
rm -rf "$state"
mkdir -p "$state"/{mon,osd,run,log}
state=$(cd "$state" && pwd)

port_free() { ! (exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null; }
# Ports come from below the kernel's ephemeral range: an outgoing connection (of any test running beside us)
# takes its local port from that range, where a connect probe finds nothing listening and yet bind(2) fails
# with EADDRINUSE. That happened in CI (mon on 46536). Two starts racing for the same port remain possible,
# so a daemon that could not bind is started again on another port (start_mon, start_rgw).
read -r ephemeral_low _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || ephemeral_low=32768
(( ephemeral_low > 12000 )) || ephemeral_low=32768
pick_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 10000 + RANDOM % (ephemeral_low - 10000) ))
    if port_free "$p" && port_free "$p" "$address"; then echo "$p"; return 0; fi
  done
  log "no free port found"; return 1
}
mon_port=${S3_TEST_MON_PORT:-$(pick_port)}
s3_port=${S3_TEST_PORT:-$(pick_port)}
fsid=$(cat /proc/sys/kernel/random/uuid)
tcp_nodelay=" tcp_nodelay=1"
[[ "${S3_TEST_TCP_NODELAY:-1}" == 0 ]] && tcp_nodelay=""

write_conf() {
cat > "$state/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
mon initial members = a
public network = 127.0.0.0/8
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
auth allow insecure global id reclaim = true
# without cephx there is no session key, so every messenger must accept plain crc mode
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = ${S3_TEST_MEMSTORE_BYTES:-8589934592}
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
run dir = $state/run
admin socket = $state/run/\$name.asok
log file = $state/log/\$name.log
pid file = $state/run/\$name.pid
keyring = $state/keyring
[mon]
mon data = $state/mon
paxos propose interval = 0.01
[osd]
osd data = $state/osd
osd max object name len = 460
osd max object namespace len = 64
[client.rgw]
# tcp_nodelay: without it, responses on kept-alive connections wait ~40 ms for delayed ACKs (Nagle)
rgw frontends = beast endpoint=$address:$s3_port$tcp_nodelay
rgw dns name = localhost
rgw data = $state/rgw
rgw enable usage log = false
rgw max chunk size = 4194304
CONF
}

conf=$state/ceph.conf
ceph-authtool --create-keyring "$state/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null

start_daemon() { # name command...
  local name=$1; shift
  "$@" > "$state/log/$name.out" 2>&1 &
  echo "$name $!" >> "$state/pids"
}
wait_for() { # seconds description command...
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s%N) + secs * 1000000000 ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s%N) > deadline )); then log "timed out waiting for $what (logs in $state/log)"; return 1; fi
    sleep 0.05
  done
}
# The state directory is removed on failure (unless S3_TEST_KEEP_ON_FAIL is set), so the logs' last lines go
# to stderr first: a failed start in CI can then be diagnosed from its output alone.
fail() {
  log "$1"
  local f
  for f in "$state"/log/*; do
    [[ -s "$f" ]] && { echo "--- last lines of $f" >&2; tail -n 5 "$f" >&2; }
  done
  [[ -n "${S3_TEST_KEEP_ON_FAIL:-}" ]] && exit 1
  "$root/scripts/s3-server-stop.sh" "$state" >&2 || true
  exit 1
}

: > "$state/pids"
ceph_cli() { timeout 20 ceph -c "$conf" --connect-timeout 10 "$@"; }
daemon_pid() { awk -v n="$1" '$1 == n { print $2 }' "$state/pids"; }
daemon_alive() { local pid; pid=$(daemon_pid "$1"); [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }
forget_daemon() { # name: stops it (if still running) and drops it from the pids file
  local pid; pid=$(daemon_pid "$1")
  if [[ -n "$pid" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  sed -i "/^$1 /d" "$state/pids"
}
bind_failed() { grep -qs "Address already in use" "$@"; }
mon_settled() { ceph_cli mon stat || ! daemon_alive mon; }
start_mon() { # up to 3 ports: a port taken between pick_port and bind(2) costs one more try, not the run
  local attempt
  for attempt in 1 2 3; do
    write_conf
    monmaptool --create --clobber --add a "v2:127.0.0.1:$mon_port" --fsid "$fsid" "$state/monmap" >/dev/null
    rm -rf "$state/mon" && mkdir -p "$state/mon"
    ceph-mon -c "$conf" -i a --mkfs --monmap "$state/monmap" --keyring "$state/keyring"
    : > "$state/log/mon.a.log"
    start_daemon mon ceph-mon -c "$conf" -i a -f
    wait_for 30 "ceph-mon" mon_settled && daemon_alive mon && ceph_cli mon stat >/dev/null 2>&1 && return 0
    bind_failed "$state/log/mon.a.log" "$state/log/mon.out" || return 1
    forget_daemon mon
    log "ceph-mon could not bind 127.0.0.1:$mon_port (taken since it was picked); trying another port"
    mon_port=$(pick_port)
  done
  return 1
}
start_mon || fail "ceph-mon did not start"

osd_uuid=$(cat /proc/sys/kernel/random/uuid)
osd_id=$(ceph_cli osd new "$osd_uuid")
ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1 || fail "ceph-osd --mkfs failed"
start_daemon osd ceph-osd -c "$conf" -i "$osd_id" -f
osd_up() { ceph_cli osd dump | grep -q "^osd.$osd_id up"; }
wait_for 60 "ceph-osd" osd_up || fail "ceph-osd did not come up"

radosgw-admin -c "$conf" -n client.rgw user create --uid=infratools --display-name="infra-tools tests" \
  --access-key="$access_key" --secret-key="$secret_key" >/dev/null 2>"$state/log/user-create.err" \
  || fail "radosgw-admin user create failed (see $state/log/user-create.err)"
rgw_settled() { s3_up "$address:$s3_port" || ! daemon_alive rgw; }
start_rgw() { # like start_mon; a port the caller chose (S3_TEST_PORT) is not replaced
  local attempt
  for attempt in 1 2 3; do
    write_conf
    : > "$state/log/rgw.out"; : > "$state/log/client.rgw.log"
    start_daemon rgw radosgw -c "$conf" -n client.rgw -f
    # alive after answering: a radosgw that lost the port exits, and what answered was someone else's
    wait_for 60 "radosgw" rgw_settled && sleep 0.2 && daemon_alive rgw && s3_up "$address:$s3_port" && return 0
    bind_failed "$state/log/client.rgw.log" "$state/log/rgw.out" && [[ -z "${S3_TEST_PORT:-}" ]] || return 1
    forget_daemon rgw
    log "radosgw could not bind $address:$s3_port (taken since it was picked); trying another port"
    s3_port=$(pick_port)
  done
  return 1
}
start_rgw || fail "radosgw did not answer on $address:$s3_port"

umask 077
cat > "$state/env" <<ENV
S3_ENDPOINT=http://$address:$s3_port
S3_ACCESS_KEY=$access_key
S3_SECRET_KEY=$secret_key
S3_REGION=us-east-1
S3_ADDRESSING=path
S3_TEST_STATE_DIR=$state
ENV
log "S3 (Ceph RGW) on http://$address:$s3_port, state in $state"
echo "$state/env"
