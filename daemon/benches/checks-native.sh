#!/usr/bin/env bash
# keeperd's checker on the host's own kernel (no VM, no IPVS: keeperd says IPVS is unavailable
# and checks anyway), the configuration of checks.sh: SERVICES x REALS real servers (default
# 10,000) checked every second by KIND (tcp or http), real servers as in checks.sh
# (checks-server.rs on 0.0.0.0:80, 10.100.0.0/16 routed locally) in a network namespace this
# script creates and deletes. After WARMUP s, a window of WINDOW s: keeperd's CPU, RSS, the
# connections accepted per second, and its late starts (`keeperctl status`). keepalived cannot
# take part here (its checker exits without IPVS): the comparison is checks.sh's; this shows
# keeperd's timing on a real CPU.
#
# usage: daemon/benches/checks-native.sh [KIND [SERVICES [REALS]]]   (root; WARMUP=20 WINDOW=30;
#        LAYERED=1: the control socket set by a KEEPER_ variable, a layer merged on the file)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
kind=${1:-tcp}; services=${2:-100}; reals=${3:-100}
warmup=${WARMUP:-20}; window=${WINDOW:-30}
work=$(mktemp -d /tmp/keeper-checks-native-XXXXXX)
# keeperd drops to its user: it creates its control socket here and reads the configuration.
chmod 1777 "$work"
ns=kchkn$$
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  ip netns del "$ns" 2>/dev/null || true
  [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
(cd "$top" && cargo build -q --release -p keeper --bins)
target=$(cd "$top" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
rustc -O --edition 2024 "$here/checks-server.rs" -o "$work/checks-server"
python3 "$here/checks-gen.py" "$work/gen" "$services" "$reals"
chmod -R a+rX "$work/gen"
ip netns add "$ns"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
in_ns ip route add local 10.100.0.0/16 dev lo
in_ns sysctl -qw net.ipv4.ip_local_port_range="1024 65000" net.ipv4.tcp_tw_reuse=1 net.core.somaxconn=65535
ip netns exec "$ns" "$work/checks-server" 80 4 & pids+=($!)
sock=$work/keeper.sock
# The control socket is set in the file, as a plain /etc/keeper does. LAYERED=1 sets it by a
# KEEPER_ variable instead: figment then merges `global` with it (config/layers.rs merge_trees).
conf=$work/gen/keeper-$kind.toml
if [ -n "${LAYERED:-}" ]; then
  env_sock=("KEEPER_GLOBAL__CONTROL_SOCKET=$sock")
else
  env_sock=()
  sed -i "s#^control_socket = .*#control_socket = \"$sock\"#" "$conf"
fi
# keeperd raises its descriptor limit to the hard limit itself.
ip netns exec "$ns" env "${env_sock[@]}" \
  "$target/release/keeperd" --config "$conf" >"$work/keeperd.log" 2>&1 & pids+=($!)
ctl() { "$target/release/keeperctl" --socket "$sock" status; }
for _ in $(seq 300); do ctl >/dev/null 2>&1 && break; sleep 0.1; done
pid=${pids[1]}
sleep "$warmup"
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
opens() { in_ns awk '/^Tcp:/ && $2 ~ /^[0-9]+$/ {print $7}' /proc/net/snmp; }
checker() { ctl | sed -n 's/^checker: \([0-9]*\) attempts.*, \([0-9]*\) started late.*latest start \([0-9.]*\) ms.*/\1 \2 \3/p'; }
hist() { ctl | sed -n 's/^checker starts by lateness: //p'; }
hz=$(getconf CLK_TCK)
c0=$(checker); h0=$(hist); t0=$(ticks); o0=$(opens); s0=$(date +%s.%N)
sleep "$window"
c1=$(checker); h1=$(hist); t1=$(ticks); o1=$(opens); s1=$(date +%s.%N)
rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
echo "keeperd $(git -C "$top" rev-parse --short HEAD), native, $services x $reals real servers, $kind every 1 s, window ${window} s after ${warmup} s"
awk -v t=$((t1 - t0)) -v hz="$hz" -v a="$s0" -v b="$s1" -v o=$((o1 - o0)) -v rss="$rss" -v hwm="$hwm" \
  'BEGIN {s = b - a; printf "CPU %.1f %% of one core, %.0f connections/s accepted, RSS %.1f MB (peak %.1f MB)\n", 100 * t / hz / s, o / s, rss / 1024, hwm / 1024}'
echo "$c0 $c1" | awk '{printf "attempts %d, started late by more than 10 %% of the interval: %d, latest start since keeperd started: %s ms\n", $4 - $1, $5 - $2, $6}'
echo "starts by lateness at the window's start: $h0"
echo "starts by lateness at the window's end:   $h1"
echo "real servers down: $(ctl | grep -c ' down ' || true)"
