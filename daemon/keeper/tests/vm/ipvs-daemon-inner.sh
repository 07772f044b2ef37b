# keeperd's IPVS on a real kernel, inside one QEMU VM (see ipvs-daemon.sh, which boots it).
# The VM's root namespace is the director (keeperd); namespaces joined to a bridge are the
# nodes: client .31, rs1 .21, rs2 .22 (LVS-DR real servers: VIP on lo, arp_ignore/announce),
# peer .12 (a second keeperd, to move VRRP). Prints one `PASS name` or `FAIL name: why` per
# check; every wait has a deadline. Runs under busybox sh with iproute2's ip, ipvsadm, keeperd
# and keeperctl in /x.
set -u
X=/x
O=/out
CONF=/etc/keeper/keeper.toml
SOCK=/run/keeper/keeper.sock
LOG=$O/keeperd.log
VIP=10.77.0.100
FAILED=0
PATH=/sbin:/bin:$X
# busybox sh runs its own applets before PATH: iproute2's ip (namespaces) by its path.
ip() { /sbin/ip "$@"; }

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; FAILED=1; }
# check NAME CMD...: one result.
check() { n=$1; shift; if "$@"; then pass "$n"; else fail "$n" "$*"; fi; }
# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds or SECONDS pass.
wait_for() {
  t=$1; shift
  end=$(( $(date +%s) + t ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$end" ] && return 1
    sleep 0.05
  done
}
# same_text NAME EXPECTED_FILE ACTUAL_FILE: one result; the diff on failure.
same_text() {
  if diff -u "$2" "$3" >"$O/diff.txt"; then pass "$1"; else fail "$1" "differs:"; cat "$O/diff.txt"; fi
}

# keeperd started as root switches to the `keeper` user (keeping CAP_NET_ADMIN/NET_RAW); its
# runtime directory is its own, as systemd's RuntimeDirectory= makes it.
printf 'root:x:0:0:root:/root:/bin/sh\nkeeper:x:999:999::/nonexistent:/bin/false\n' >/etc/passwd
printf 'root:x:0:\nkeeper:x:999:\n' >/etc/group
mkdir -p /run/keeper && chown keeper:keeper /run/keeper

# --- network ------------------------------------------------------------------------------------
modprobe veth; modprobe bridge
ip link add br0 type bridge stp_state 0 forward_delay 0
ip link set br0 up
ip addr add 10.77.0.11/24 dev br0
node() {
  ip netns add "$1"
  ip link add "v-$1" type veth peer name eth0 netns "$1"
  ip link set "v-$1" master br0 up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
}
node client 10.77.0.31
node peer 10.77.0.12
for rs in rs1 rs2; do
  n=${rs#rs}
  node "$rs" "10.77.0.2$n"
  ip -n "$rs" addr add $VIP/32 dev lo
  for k in all eth0; do
    ip netns exec "$rs" sysctl -qw "net.ipv4.conf.$k.arp_ignore=1" "net.ipv4.conf.$k.arp_announce=2"
  done
  mkdir -p "/www/$rs"; echo "$rs" >"/www/$rs/index.html"
  ip netns exec "$rs" httpd -p 80 -h "/www/$rs"
  ip netns exec "$rs" nc -ll -p 9000 -e cat &
done

# A service keeperd does not own: added by hand, must never change.
ipvsadm -A -t 10.77.0.200:8080 -s rr
ipvsadm -a -t 10.77.0.200:8080 -r 10.77.0.21:8080 -g -w 7
foreign() { ipvsadm -Ln -t 10.77.0.200:8080; }
foreign >"$O/foreign.txt"

# --- keeperd ------------------------------------------------------------------------------------
mkdir -p /etc/keeper
# conf ECHO_RS2_WEIGHT VARIANT [GLOBAL_LINE]: variant a has every kind of entry; b differs from
# it by exactly 4 entries: echo.rs2's weight (the first argument), http gains rs3, dns is
# removed, mark becomes wrr without flags; c is b without the group.
conf() {
  cat <<EOF
[global]
vrrp_version = 3
control_socket = "$SOCK"
lvs_timeouts = { tcp = 900, tcpfin = 120, udp = 300 }
${3:-}

[vrrp_instance.VI_1]
interface = "br0"
virtual_router_id = 51
priority = 100
advert_int = "100ms"
virtual_ipaddress = ["$VIP/24"]
lvs_sync_daemon_interface = "br0"

[virtual_server.http]
ip = "$VIP"
port = 80
lb_algo = "rr"
lb_kind = "DR"
[virtual_server.http.real_server.rs1]
ip = "10.77.0.21"
[virtual_server.http.real_server.rs2]
ip = "10.77.0.22"

[virtual_server.echo]
ip = "$VIP"
port = 9000
lb_algo = "wrr"
lb_kind = "DR"
[virtual_server.echo.real_server.rs1]
ip = "10.77.0.21"
weight = 3
[virtual_server.echo.real_server.rs2]
ip = "10.77.0.22"
weight = $1
uthreshold = 100
lthreshold = 50

[virtual_server.v6]
ip = "fd77::100"
port = 443
lb_algo = "mh"
"mh-port" = true
lb_kind = "DR"
[virtual_server.v6.real_server.rs1]
ip = "fd77::21"

[virtual_server.sorry]
ip = "$VIP"
port = 8080
lb_algo = "rr"
lb_kind = "DR"
sorry_server = "10.77.0.22 8080"
sorry_server_inhibit = true
[virtual_server.sorry.real_server.rs1]
ip = "10.77.0.21"
weight = 2
EOF
  if [ "$2" != c ]; then cat <<EOF

[virtual_server_group]
pair = ["10.77.0.101-102 80"]
[virtual_server.grp]
group = "pair"
lb_algo = "lc"
lb_kind = "TUN"
[virtual_server.grp.real_server.rs2]
ip = "10.77.0.22"
EOF
  fi
  if [ "$2" = a ]; then cat <<EOF

[virtual_server.dns]
ip = "$VIP"
port = 53
protocol = "UDP"
lb_algo = "wlc"
lb_kind = "NAT"
persistence_timeout = 60
persistence_granularity = "255.255.255.0"
[virtual_server.dns.real_server.rs1]
ip = "10.77.0.21"
port = 5353

[virtual_server.mark]
fwmark = 7
lb_algo = "sh"
"sh-port" = true
"sh-fallback" = true
lb_kind = "DR"
[virtual_server.mark.real_server.rs1]
ip = "10.77.0.21"
EOF
  else cat <<EOF

[virtual_server.http.real_server.rs3]
ip = "10.77.0.23"

[virtual_server.mark]
fwmark = 7
lb_algo = "wrr"
lb_kind = "DR"
[virtual_server.mark.real_server.rs1]
ip = "10.77.0.21"
EOF
  fi
}
KPID=
start_keeperd() {
  RUST_LOG=info keeperd --config "$CONF" >>"$LOG" 2>&1 &
  KPID=$!
  wait_for 20 keeperctl --socket "$SOCK" status
}
stop_keeperd() {
  kill -TERM "$KPID"
  wait_for 20 sh -c "! kill -0 $KPID"
}
is_master() { keeperctl --socket "$SOCK" status | grep -q ' master '; }
is_backup() { keeperctl --socket "$SOCK" status | grep -q ' backup '; }
# The listing without the foreign service (its block is 2 lines).
listing() { ipvsadm -Ln | grep -v -e '10.77.0.200:8080' -e ':8080  *Route   7 '; }
ops_lines() { grep -c 'ipvs: [0-9]* operations' "$LOG"; }

conf 2 a >"$CONF"
start_keeperd || fail start "keeperd did not answer"
check "VRRP master alone" wait_for 10 is_master
check "all services programmed" wait_for 10 sh -c "[ \$(ipvsadm -Ln | grep -c '^[TUF]') -eq 9 ]"
listing >"$O/a-actual.txt"
cat >"$O/a-expected.txt" <<'EOF'
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.77.0.100:80 rr
  -> 10.77.0.21:80                Route   1      0          0         
  -> 10.77.0.22:80                Route   1      0          0         
TCP  10.77.0.100:8080 rr
  -> 10.77.0.21:8080              Route   2      0          0         
  -> 10.77.0.22:8080              Route   0      0          0         
TCP  10.77.0.100:9000 wrr
  -> 10.77.0.21:9000              Route   3      0          0         
  -> 10.77.0.22:9000              Route   2      0          0         
TCP  10.77.0.101:80 lc
  -> 10.77.0.22:80                Tunnel  1      0          0         
TCP  10.77.0.102:80 lc
  -> 10.77.0.22:80                Tunnel  1      0          0         
UDP  10.77.0.100:53 wlc persistent 60 mask 255.255.255.0
  -> 10.77.0.21:5353              Masq    1      0          0         
TCP  [fd77::100]:443 mh (mh-port)
  -> [fd77::21]:443               Route   1      0          0         
FWM  7 sh (sh-fallback,sh-port)
  -> 10.77.0.21:0                 Route   1      0          0         
EOF
same_text "ipvsadm -Ln shows exactly the configured table" "$O/a-expected.txt" "$O/a-actual.txt"
ipvsadm -Ln >"$O/ipvsadm.txt"; keeperctl --socket "$SOCK" ipvs >"$O/keeperctl.txt"
same_text "keeperctl ipvs prints what ipvsadm -Ln prints" "$O/ipvsadm.txt" "$O/keeperctl.txt"
ipvsadm -Ln --stats >"$O/ipvsadm.txt"; keeperctl --socket "$SOCK" ipvs --stats >"$O/keeperctl.txt"
same_text "keeperctl ipvs --stats prints what ipvsadm -Ln --stats prints" "$O/ipvsadm.txt" "$O/keeperctl.txt"
check "keeperctl ipvs --json" sh -c "keeperctl --socket $SOCK ipvs --json | grep -q '\"scheduler\": \"wrr\"'"
check "lvs_timeouts applied" sh -c "ipvsadm -L --timeout | grep -qx 'Timeout (tcp tcpfin udp): 900 120 300'"
check "expire_quiescent_template set" grep -qx 1 /proc/sys/net/ipv4/vs/expire_quiescent_template
check "master sync daemon while MASTER" wait_for 10 sh -c "ipvsadm -L --daemon | sed 's/, maxlen=.*)/)/' | grep -qx 'master sync daemon (mcast=br0, syncid=51)' && [ \$(ipvsadm -L --daemon | wc -l) -eq 1 ]"

# Traffic: DR through the director to both real servers.
: >"$O/answers.txt"
for i in 1 2 3 4 5 6 7 8 9 10; do
  ip netns exec client timeout 5 wget -q -O - "http://$VIP/" >>"$O/answers.txt" 2>&1
done
check "client requests answered by rs1 and rs2 (DR)" sh -c "[ \$(grep -c rs1 $O/answers.txt) -eq 5 ] && [ \$(grep -c rs2 $O/answers.txt) -eq 5 ]"

# A long-lived connection through IPVS (echo service), kept across reload and restart.
mkfifo /tmp/conn.in
ip netns exec client nc $VIP 9000 </tmp/conn.in >"$O/conn.out" 2>&1 &
exec 3>/tmp/conn.in
echo before >&3
check "connection open" wait_for 10 grep -q before "$O/conn.out"
# The kernel folds per-CPU counters into what a dump shows every 2 s: wait for the 10.
http_conns='ipvsadm -Ln --stats -t 10.77.0.100:80 | sed -n "s/^TCP  *[^ ]* *\([0-9]*\) .*/\1/p"'
check "connection counter at 10" wait_for 10 sh -c "[ \$($http_conns) -ge 10 ]"

# --- reload: only the difference -----------------------------------------------------------------
ops_before=$(ops_lines)
conf 5 b >"$CONF"
kill -HUP "$KPID"
check "reload applied" wait_for 10 sh -c "[ \$(grep -c 'ipvs: [0-9]* operations' $LOG) -gt $ops_before ]"
check "reload sent exactly the 4 differences" sh -c "grep 'ipvs: [0-9]* operations' $LOG | tail -1 | grep -q 'ipvs: 4 operations: services +0 ~1 -1, real servers +1 ~1 -0'"
listing >"$O/b-actual.txt"
# B: dns gone, mark wrr without flags, http has rs3, echo.rs2 has weight 5.
sed -e '/^UDP  10.77.0.100:53/,+1d' \
    -e 's/^FWM  7 sh (sh-fallback,sh-port)/FWM  7 wrr/' \
    -e 's/^\(  -> 10.77.0.22:9000              Route   \)2 /\15 /' \
    -e '/^  -> 10.77.0.22:80                Route/a\
  -> 10.77.0.23:80                Route   1      0          0         ' \
    "$O/a-expected.txt" >"$O/b-expected.txt"
# Connection counters are live: compare the table up to the weights.
cut -c1-48 "$O/b-expected.txt" >"$O/b-expected.cut"; cut -c1-48 "$O/b-actual.txt" >"$O/b-actual.cut"
same_text "after reload ipvsadm -Ln shows configuration B" "$O/b-expected.cut" "$O/b-actual.cut"
# A service deleted and added again would count from 0 (no HTTP traffic since).
check "services kept across reload (counters not reset)" sh -c "[ \$($http_conns) -ge 10 ]"
echo after-reload >&3
check "connection survives the reload" wait_for 10 grep -q after-reload "$O/conn.out"
foreign >"$O/foreign-now.txt"
same_text "hand-made service untouched by reload" "$O/foreign.txt" "$O/foreign-now.txt"

# --- restart: the table is adopted, never emptied ------------------------------------------------
ipvsadm -Ln | cut -c1-48 >"$O/before-restart.txt"
stop_keeperd || fail "stop" "keeperd did not exit"
ipvsadm -Ln | cut -c1-48 >"$O/while-stopped.txt"
same_text "table unchanged while keeperd is stopped" "$O/before-restart.txt" "$O/while-stopped.txt"
check "sync daemon stopped with keeperd" sh -c "[ -z \"\$(ipvsadm -L --daemon)\" ]"
ops_before=$(ops_lines)
start_keeperd || fail restart "keeperd did not answer"
check "VRRP master again" wait_for 10 is_master
check "master sync daemon again" wait_for 10 sh -c "ipvsadm -L --daemon | grep -q '^master'"
ipvsadm -Ln | cut -c1-48 >"$O/after-restart.txt"
same_text "restart leaves the table unchanged" "$O/before-restart.txt" "$O/after-restart.txt"
check "restart sent no IPVS operation" sh -c "[ \$(grep -c 'ipvs: [0-9]* operations' $LOG) -eq $ops_before ]"
check "services kept across restart (counters not reset)" sh -c "[ \$($http_conns) -ge 10 ]"
echo after-restart >&3
check "connection survives the restart" wait_for 10 grep -q after-restart "$O/conn.out"

# --- VRRP drives the sync daemon ---------------------------------------------------------------
cat >/etc/keeper/peer.toml <<EOF
[global]
vrrp_version = 3
control_socket = "/run/keeper/peer.sock"
[vrrp_instance.VI_1]
interface = "eth0"
virtual_router_id = 51
priority = 200
advert_int = "100ms"
virtual_ipaddress = ["$VIP/24"]
EOF
# Not through the ip function: $! must be keeperd's pid (ip execs it).
/sbin/ip netns exec peer keeperd --config /etc/keeper/peer.toml >"$O/peer.log" 2>&1 &
PEER=$!
check "a higher-priority peer takes over: BACKUP" wait_for 10 is_backup
check "backup sync daemon while BACKUP" wait_for 10 sh -c "ipvsadm -L --daemon | sed 's/, maxlen=.*)/)/' | grep -qx 'backup sync daemon (mcast=br0, syncid=51)' && [ \$(ipvsadm -L --daemon | wc -l) -eq 1 ]"
kill -TERM $PEER
check "peer gone: MASTER" wait_for 10 is_master
check "master sync daemon after the takeover" wait_for 10 sh -c "ipvsadm -L --daemon | sed 's/, maxlen=.*)/)/' | grep -qx 'master sync daemon (mcast=br0, syncid=51)' && [ \$(ipvsadm -L --daemon | wc -l) -eq 1 ]"

# --- a service removed while keeperd is stopped is deleted at start (it owned it) -----------------
stop_keeperd || fail "stop" "keeperd did not exit"
conf 5 c >"$CONF"
start_keeperd || fail restart "keeperd did not answer"
check "services removed while stopped are deleted at start" wait_for 10 sh -c "! ipvsadm -Ln | grep -q '10.77.0.10[12]:80'"
check "the other services stay" sh -c "[ \$(ipvsadm -Ln | grep -c '^[TUF]') -eq 6 ]"
foreign >"$O/foreign-now.txt"
same_text "hand-made service untouched by restarts" "$O/foreign.txt" "$O/foreign-now.txt"

# --- lvs_flush_on_stop VS: keeperd's services go, the hand-made one stays -----------------------
stop_keeperd
conf 5 c 'lvs_flush_on_stop = "VS"' >"$CONF"
start_keeperd
stop_keeperd || fail "stop" "keeperd did not exit"
check "lvs_flush_on_stop VS deletes only keeperd's services" sh -c "[ \$(ipvsadm -Ln | grep -c '^[TUF]') -eq 1 ] && ipvsadm -Ln | grep -q '10.77.0.200:8080'"

exec 3>&-
if grep -E 'ERROR|panicked' "$LOG" >"$O/errors.txt"; then
  fail "no errors logged" "see below"; cat "$O/errors.txt"
else
  pass "no errors logged"
fi

# --- a refusal in the middle of a pipelined batch -----------------------------------------------
# A batch asks the kernel for one ACK, on its last request; the kernel answers each refusal all
# the same. A scheduler module the kernel cannot load refuses one service (and its real server)
# between accepted ones, in one batch: the others are programmed, the refused ones are named.
rmmod ip_vs_nq 2>/dev/null
for m in $(find /lib/modules -name 'ip_vs_nq.ko*'); do mv "$m" "$m.hidden"; done
check "scheduler nq cannot be loaded" sh -c "! modprobe ip_vs_nq 2>/dev/null"
printf '[global]\ncontrol_socket = "%s"\n' "$SOCK" >"$CONF"
for n in 110 111 112; do
  algo=rr; [ $n = 111 ] && algo=nq
  printf '[virtual_server.s%s]\nip = "10.77.0.%s"\nport = 80\nlb_algo = "%s"\nlb_kind = "DR"\n' $n $n $algo >>"$CONF"
  printf '[virtual_server.s%s.real_server.rs1]\nip = "10.77.0.21"\n' $n >>"$CONF"
done
LOG=$O/keeperd-refusal.log
start_keeperd || fail "start (refusal)" "keeperd did not answer"
check "batch applied around the refusal" wait_for 10 grep -q 'ipvs: 6 operations: services +3 ~0 -0, real servers +3 ~0 -0.*refused=2' "$LOG"
check "accepted entries before and after the refused one are programmed" sh -c "ipvsadm -Ln -t 10.77.0.110:80 | grep -q '10.77.0.21:80' && ipvsadm -Ln -t 10.77.0.112:80 | grep -q '10.77.0.21:80'"
check "refused service absent" sh -c "! ipvsadm -Ln | grep -q '10.77.0.111:80'"
check "refused service named in the log" grep -q 'the kernel refused add service TCP 10.77.0.111:80 (nq).*(virtual_server.s111)' "$LOG"
check "its real server's refusal named too" grep -q 'the kernel refused add destination 10.77.0.21:80 to TCP 10.77.0.111:80.*(virtual_server.s111)' "$LOG"
stop_keeperd
[ "$FAILED" -eq 0 ]
