# Runs inside the checker benchmark VM (see checks.sh). For each kind of check (tcp, http) and
# each daemon (keeperd, keepalived), in a fresh network namespace: the real servers (one
# listener, checks-server, on 0.0.0.0:80 with 10.100.0.0/16 routed locally), the daemon with
# every real server checked every second, WARMUP seconds to settle, then a window of WINDOW
# seconds measured:
#   CPU   the daemon's user+system time over the window (keepalived: parent + checker child),
#         as a percentage of one CPU
#   RATE  connections the real servers accepted per second (Tcp PassiveOpens in the namespace):
#         the work actually done, the same measure for both daemons
#   RSS   the daemon's resident memory at the end (keepalived: both processes)
#   LATE  keeperd only: attempts started later than 10 % of their interval after they were due,
#         over the window, and the latest start (from `keeperctl status`)
# Prints `RESULT KIND IMPL KEY VALUE` lines.
set -u
X=/x
O=/out
WARMUP=$(cat $X/warmup)
WINDOW=$(cat $X/window)
KINDS=$(cat $X/kinds)
ONLY=$(cat $X/only)
LINES=$(cat $X/lines)
mkdir -p /etc/keeper /run/keeper /etc/keepalived
printf 'root:x:0:0:root:/root:/bin/sh\nkeeper:x:999:999::/nonexistent:/bin/false\n' >/etc/passwd
printf 'root:x:0:\nkeeper:x:999:\n' >/etc/group
mkdir -p /run/keeper && chown keeper:keeper /run/keeper
PATH=/sbin:/bin:$X
fail() { echo "FAIL $*"; exit 1; }
# 10,000 checks a second through the loopback: enough ephemeral ports, short-lived TIME_WAIT.
sysctl -qw net.core.somaxconn=65535
sysctl -qw net.ipv4.tcp_max_syn_backlog=65535
# Both daemons get the same descriptor limit (one socket per check in flight).
ulimit -n 65536

NS=
fresh() {
  [ -n "$NS" ] && /sbin/ip netns del "$NS"
  NS=bench$1
  /sbin/ip netns add "$NS"
  in_ns /sbin/ip link set lo up
  in_ns /sbin/ip route add local 10.100.0.0/16 dev lo
  in_ns sysctl -qw net.ipv4.ip_local_port_range="1024 65000"
  in_ns sysctl -qw net.ipv4.tcp_tw_reuse=1
  in_ns sysctl -qw net.core.somaxconn=65535
  sleep 1
}
in_ns() { /sbin/ip netns exec "$NS" "$@"; }
# user+system clock ticks (USER_HZ 100) of the processes given.
ticks() { t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' /proc/$p/stat))); done; echo $t; }
rss() { r=0; for p in "$@"; do r=$((r + $(awk '/^VmRSS/ {print $2}' /proc/$p/status))); done; echo $r; }
# Tcp PassiveOpens of the namespace (the second Tcp: line holds the values).
opens() { in_ns awk '/^Tcp:/ && $2 ~ /^[0-9]+$/ {print $7}' /proc/net/snmp; }
now() { awk '{print $1}' /proc/uptime; }
ipvs_lines() { in_ns cat /proc/net/ip_vs | wc -l; }
# Real servers in the IPVS table (lines "  -> HEX:PORT ...", not the header's "  -> RemoteAddress").
in_table() { in_ns grep -c -- '-> [0-9A-F]' /proc/net/ip_vs; }
wait_table() {
  i=0; until [ "$(ipvs_lines)" -ge "$LINES" ]; do
    i=$((i + 1)); [ $i -gt 600 ] && fail "$1: IPVS table incomplete after 60 s ($(ipvs_lines) of $LINES lines)"
    sleep 0.1
  done
}
# keeperd's checker counters: "ATTEMPTS LATE B0 .. B6" (lateness histogram buckets).
checker() {
  in_ns keeperctl status >/tmp/status
  a=$(sed -n 's/^checker: \([0-9]*\) attempts.*, \([0-9]*\) started late.*/\1 \2/p' /tmp/status)
  h=$(sed -n 's/^checker starts by lateness: //p' /tmp/status | tr ',' '\n' | awk '{printf "%s ", $2}')
  echo "$a $h"
}

# measure KIND IMPL PIDS...: the window, after the warmup.
measure() {
  kind=$1 impl=$2; shift 2
  sleep "$WARMUP"
  [ "$impl" = keeperd ] && c0="$(now) $(checker)"
  t0=$(ticks "$@"); o0=$(opens); s0=$(now)
  sleep "$WINDOW"
  t1=$(ticks "$@"); o1=$(opens); s1=$(now)
  secs=$(awk -v a="$s0" -v b="$s1" 'BEGIN {print b - a}')
  echo "RESULT $kind $impl window_s $secs"
  echo "RESULT $kind $impl cpu_percent $(awk -v t=$((t1 - t0)) -v s="$secs" 'BEGIN {printf "%.1f", t / s}')"
  echo "RESULT $kind $impl conn_per_s $(awk -v o=$((o1 - o0)) -v s="$secs" 'BEGIN {printf "%.0f", o / s}')"
  echo "RESULT $kind $impl rss_kb $(rss "$@")"
  echo "RESULT $kind $impl real_servers_in_table $(in_table)"
  if [ "$impl" = keeperd ]; then
    c1="$(now) $(checker)"
    # "TIME ATTEMPTS LATE B0..B6" twice: 10 fields each.
    echo "$c0 $c1" | awk -v k="$kind" '{
      printf "RESULT %s keeperd attempts_per_s %.0f\n", k, ($12 - $2) / ($11 - $1)
      printf "RESULT %s keeperd attempts %d\nRESULT %s keeperd late_starts %d\n", k, $12 - $2, k, $13 - $3
      printf "RESULT %s keeperd lateness_histogram", k
      for (i = 4; i <= 10; i++) printf " %d", $(i + 10) - $i
      printf "\n" }'
    grep -c ' up  ' /tmp/status | sed "s/^/RESULT $kind keeperd servers_up /"
    grep -c ' down ' /tmp/status | sed "s/^/RESULT $kind keeperd servers_down /"
  fi
}

run_keeperd() {
  kind=$1
  fresh "k$kind"
  in_ns checks-server 80 4 & srv=$!
  cp $X/keeper-$kind.toml /etc/keeper/keeper.toml
  in_ns sh -c 'exec keeperd --config /etc/keeper/keeper.toml >>/out/keeperd-'"$kind"'.log 2>&1' &
  wait_table "keeperd $kind"
  pid=$(pidof keeperd)
  measure "$kind" keeperd "$pid"
  kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  kill "$srv"; wait "$srv" 2>/dev/null
}

run_keepalived() {
  kind=$1
  fresh "a$kind"
  in_ns checks-server 80 4 & srv=$!
  cp $X/keepalived-$kind.conf /etc/keepalived/keepalived.conf
  in_ns sh -c 'exec keepalived -n -l -D -C -f /etc/keepalived/keepalived.conf -p /run/ka.pid -c /run/ka-c.pid -r /run/ka-r.pid >>/out/keepalived-'"$kind"'.log 2>&1' &
  wait_table "keepalived $kind"
  sleep 1
  measure "$kind" keepalived "$(cat /run/ka.pid)" "$(cat /run/ka-c.pid)"
  pid=$(cat /run/ka.pid)
  kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  kill "$srv"; wait "$srv" 2>/dev/null
}

for kind in $KINDS; do
  for impl in $ONLY; do "run_$impl" "$kind"; done
done
[ -n "$NS" ] && /sbin/ip netns del "$NS"
true
