# Runs inside the benchmark VM (see ipvs.sh): for keeperd and keepalived, RUNS times each,
# the cold start (process start -> every service and real server in /proc/net/ip_vs) and a
# reload changing one real server's weight (SIGHUP -> the new weight in /proc/net/ip_vs).
# Prints `RESULT IMPL cold|reload MS`. Both daemons program the same table, no checkers.
set -u
X=/x
O=/out
RUNS=$(cat $X/runs)
ONLY=$(cat $X/only 2>/dev/null || echo "keeperd keepalived")
TMO=$(cat $X/timeout-ms 2>/dev/null || echo 600000)
LINES=$(cat $X/lines)
LINE=$(cat $X/reload.line)
mkdir -p /etc/keeper /run/keeper /etc/keepalived
PATH=/sbin:/bin:$X
fail() { echo "FAIL $*"; exit 1; }
# settle: nothing else runs while timing; the table starts empty.
settle() { ipvsadm -C; sync; sleep 1; }

run_keeperd() {
  cp $X/keeper-cold.toml /etc/keeper/keeper.toml
  settle
  ms=$(ipvs-poll --lines "$LINES" --timeout-ms "$TMO" -- \
       sh -c 'exec keeperd --config /etc/keeper/keeper.toml >>/out/keeperd.log 2>&1') || fail "keeperd cold"
  echo "RESULT keeperd cold $ms"
  pid=$(pidof keeperd)
  # Wait until keeperd is idle (its control socket answers) before the reload.
  until keeperctl status >/dev/null 2>&1; do sleep 0.1; done
  sleep 1
  cp $X/keeper-reload.toml /etc/keeper/keeper.toml
  ms=$(ipvs-poll --contains "$LINE" --timeout-ms "$TMO" --signal "$pid" HUP) || fail "keeperd reload"
  echo "RESULT keeperd reload $ms"
  kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

run_keepalived() {
  cp $X/keepalived-cold.conf /etc/keepalived/keepalived.conf
  settle
  ms=$(ipvs-poll --lines "$LINES" --timeout-ms "$TMO" -- \
       sh -c 'exec keepalived -n -l -D -C -f /etc/keepalived/keepalived.conf -p /run/ka.pid -c /run/ka-c.pid -r /run/ka-r.pid >>/out/keepalived.log 2>&1') \
       || fail "keepalived cold"
  echo "RESULT keepalived cold $ms"
  sleep 2
  pid=$(cat /run/ka.pid)
  cp $X/keepalived-reload.conf /etc/keepalived/keepalived.conf
  ms=$(ipvs-poll --contains "$LINE" --timeout-ms "$TMO" --signal "$pid" HUP) || fail "keepalived reload"
  echo "RESULT keepalived reload $ms"
  kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
}

for i in $(seq "$RUNS"); do
  for impl in $ONLY; do "run_$impl"; done
done
ipvsadm -C
