# Runs inside the benchmark VM (see ipvs.sh): for keeperd and keepalived, RUNS times each,
# the cold start (process start -> every service and real server in /proc/net/ip_vs) and a
# reload changing one real server's weight (SIGHUP -> the new weight in a netlink dump of that
# service, or in /proc/net/ip_vs with POLL_PROC=1).
# Prints `RESULT IMPL cold|reload MS`. Both daemons program the same table, no checkers.
#
# Every run uses a fresh network namespace: IPVS state is per namespace, and a namespace that
# has just lost thousands of entries keeps them in the kernel's destination trash for minutes,
# where every later addition searches them (that would penalise whichever daemon runs next).
set -u
X=/x
O=/out
RUNS=$(cat $X/runs)
ONLY=$(cat $X/only 2>/dev/null || echo "keeperd keepalived")
TMO=$(cat $X/timeout-ms 2>/dev/null || echo 600000)
LINES=$(cat $X/lines)
LINE=$(cat $X/reload.line)
# The reload is seen in a netlink dump of the one service (cheap), unless POLL_PROC=1 asks for
# /proc/net/ip_vs as before (each read of 11,000 lines costs the VM ~50 ms).
DEST=
if [ -z "$(cat $X/poll-proc 2>/dev/null)" ] && [ -s $X/reload.dest ]; then
  DEST=$(cat $X/reload.dest)
fi
# SIGHUP to PID, then the new weight in the kernel's table; prints the milliseconds.
reload_poll() {
  if [ -n "$DEST" ]; then
    # shellcheck disable=SC2086 # DEST is four words: VIP PORT RIP WEIGHT
    in_ns ipvs-poll --dest $DEST --timeout-ms "$TMO" --signal "$1" HUP
  else
    in_ns ipvs-poll --contains "$LINE" --timeout-ms "$TMO" --signal "$1" HUP
  fi
}
mkdir -p /etc/keeper /run/keeper /etc/keepalived
# keeperd started as root switches to the `keeper` user (keeping CAP_NET_ADMIN/NET_RAW); its
# runtime directory is its own, as systemd's RuntimeDirectory= makes it.
printf 'root:x:0:0:root:/root:/bin/sh\nkeeper:x:999:999::/nonexistent:/bin/false\n' >/etc/passwd
printf 'root:x:0:\nkeeper:x:999:\n' >/etc/group
mkdir -p /run/keeper && chown keeper:keeper /run/keeper

PATH=/sbin:/bin:$X
fail() { echo "FAIL $*"; exit 1; }
NS=
# fresh: a new namespace for the next run; the previous one is deleted and given time to go.
fresh() {
  [ -n "$NS" ] && /sbin/ip netns del "$NS"
  NS=bench$1
  /sbin/ip netns add "$NS"
  /sbin/ip -n "$NS" link set lo up
  sync; sleep 3
}
in_ns() { /sbin/ip netns exec "$NS" "$@"; }
# cpu PID...: minor page faults and CPU ticks (user + system) of the processes so far; printed
# as differences around a reload (`COST IMPL reload FAULTS TICKS`): in a VM, page faults are
# expensive, and they show what a reload costs beside the wall-clock time.
cpu() { cat $(for p in "$@"; do echo /proc/$p/stat; done) | awk '{f += $10; t += $14 + $15} END {print f, t}'; }
cost() { echo "$3 $4" | awk -v impl="$1" -v what="$2" '{split($0, a, " "); print "COST", impl, what, a[3] - a[1], a[4] - a[2]}'; }

# run_keeperd RUN [IMPL]: IMPL is the binary's name in /x, `keeperd` (this checkout) or
# `keeperd-base` (KEEPERD_BASE_DIR, to compare two builds in the same run).
run_keeperd() {
  impl=${2:-keeperd}
  fresh "k$1"
  cp $X/keeper-cold.toml /etc/keeper/keeper.toml
  echo "mark $impl cold $1" >>"$O/poll.log"
  # The same start as keepalived's (`sh -c 'exec DAEMON ...'`): the variables are read before
  # the clock starts (a `$(cat ...)` in the timed command forked and exec'd twice more).
  envs=$(cat $X/keeperd-env 2>/dev/null)
  ms=$(in_ns ipvs-poll --lines "$LINES" --timeout-ms "$TMO" -- \
       sh -c "exec ${envs:+env $envs} $impl --config /etc/keeper/keeper.toml >>/out/$impl.log 2>&1" 2>>"$O/poll.log") \
       || fail "$impl cold"
  echo "RESULT $impl cold $ms"
  pid=$(pidof $impl)
  # Idle before the reload: its control socket answers, and a second more.
  until keeperctl status >/dev/null 2>&1; do sleep 0.1; done
  sleep 1
  echo "RSS $impl $(awk '/^VmRSS/ {print $2}' /proc/$pid/status)"
  echo "COST $impl cold $(cpu $pid)"
  cp $X/keeper-reload.toml /etc/keeper/keeper.toml
  echo "mark $impl reload $1" >>"$O/poll.log"
  before=$(cpu $pid)
  ms=$(reload_poll "$pid" 2>>"$O/poll.log") \
       || fail "$impl reload"
  echo "RESULT $impl reload $ms"
  sleep 1; cost $impl reload "$before" "$(cpu $pid)"
  kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

run_keepalived() {
  fresh "a$1"
  cp $X/keepalived-cold.conf /etc/keepalived/keepalived.conf
  ms=$(in_ns ipvs-poll --lines "$LINES" --timeout-ms "$TMO" -- \
       sh -c 'exec keepalived -n -l -D -C -f /etc/keepalived/keepalived.conf -p /run/ka.pid -c /run/ka-c.pid -r /run/ka-r.pid >>/out/keepalived.log 2>&1' \
       2>>"$O/poll.log") || fail "keepalived cold"
  echo "RESULT keepalived cold $ms"
  sleep 2
  pid=$(cat /run/ka.pid)
  rss=0; for p in $pid $(cat /run/ka-c.pid); do
    rss=$((rss + $(awk '/^VmRSS/ {print $2}' /proc/$p/status)))
  done
  echo "RSS keepalived $rss"
  echo "COST keepalived cold $(cpu $pid $(cat /run/ka-c.pid))"
  cp $X/keepalived-reload.conf /etc/keepalived/keepalived.conf
  before=$(cpu $pid $(cat /run/ka-c.pid))
  ms=$(reload_poll "$pid" 2>>"$O/poll.log") \
       || fail "keepalived reload"
  echo "RESULT keepalived reload $ms"
  # The checker process stays the same across a reload (it re-reads the configuration itself).
  sleep 1; cost keepalived reload "$before" "$(cpu $pid $(cat /run/ka-c.pid))"
  kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

for i in $(seq "$RUNS"); do
  for impl in $ONLY; do
    case $impl in
      keeperd-base) run_keeperd "$i" keeperd-base ;;
      *) "run_$impl" "$i" ;;
    esac
  done
done
[ -n "$NS" ] && /sbin/ip netns del "$NS"
true
