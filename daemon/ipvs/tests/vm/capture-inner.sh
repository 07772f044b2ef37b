# Runs inside the VM (see capture.sh): programs IPVS with keeper-ipvs and ipvsadm, records the
# kernel's raw answers, ipvsadm's requests (strace) and ipvsadm's listings into /out.
set -x
P=/x/ipvs-probe
O=/out
S="strace -f -qq -e trace=sendmsg -xx -s 65536 -o"
# modprobe dummy may already have created dummy0 (numdummies=1).
ip link add dummy0 type dummy 2>/dev/null; ip link set dummy0 up
ip addr add 10.77.0.11/24 dev dummy0
ip addr add 10.77.0.100/32 dev dummy0
ip -6 addr add fd77::11/64 dev dummy0 nodad
ip route add 224.0.0.0/4 dev dummy0   # the master sync daemon sends to 224.0.0.81

# --- ipvsadm's requests, one strace log per command ----------------------------------------
$S $O/req-add-service.strace  ipvsadm -A -t 10.77.0.100:80 -s wrr
$S $O/req-add-dest.strace     ipvsadm -a -t 10.77.0.100:80 -r 10.77.0.21:80 -g -w 3
$S $O/req-edit-dest.strace    ipvsadm -e -t 10.77.0.100:80 -r 10.77.0.21:80 -g -w 0 -x 100 -y 50
$S $O/req-edit-service.strace ipvsadm -E -t 10.77.0.100:80 -s sh -b sh-fallback,sh-port -p 120 -M 255.255.255.0
$S $O/req-del-dest.strace     ipvsadm -d -t 10.77.0.100:80 -r 10.77.0.21:80
$S $O/req-add-fwm6.strace     ipvsadm -A -f 9 -6 -s mh -b mh-port
$S $O/req-add-dest6-tun.strace ipvsadm -a -f 9 -6 -r [fd77::21]:0 -i --tun-type gue --tun-port 6080 --tun-csum -w 2
$S $O/req-add-udp6.strace     ipvsadm -A -u [fd77::100]:53 -s rr -p 60 -M 64 -o
$S $O/req-add-sctp.strace     ipvsadm -A --sctp-service 10.77.0.100:3868 -s lc
$S $O/req-add-pe.strace       ipvsadm -A -u 10.77.0.100:5060 -s rr -p 360 --pe sip
$S $O/req-set-timeout.strace  ipvsadm --set 900 120 300
$S $O/req-zero.strace         ipvsadm -Z
$S $O/req-zero-service.strace ipvsadm -Z -t 10.77.0.100:80
$S $O/req-del-service.strace  ipvsadm -D -t 10.77.0.100:80
$S $O/req-start-master.strace ipvsadm --start-daemon master --mcast-interface dummy0 --syncid 7
$S $O/req-start-backup.strace ipvsadm --start-daemon backup --mcast-interface dummy0 --syncid 7 --sync-maxlen 1400 --mcast-group 224.0.0.82 --mcast-port 8849 --mcast-ttl 2
$S $O/req-stop-backup.strace  ipvsadm --stop-daemon backup
$S $O/req-stop-master.strace  ipvsadm --stop-daemon master
$S $O/req-flush.strace        ipvsadm -C
ipvsadm -Ln

# --- keeper-ipvs programs the scenario table; the kernel's answers are recorded ------------------
$P apply-scenario
$P apply-scenario   # a second run must find nothing to do
ipvsadm --set 900 120 300
ipvsadm --start-daemon master --mcast-interface dummy0 --syncid 7
ipvsadm --start-daemon backup --mcast-interface dummy0 --syncid 7 --mcast-group 224.0.0.82 --mcast-port 8849 --mcast-ttl 2

# Some traffic through IPVS so the counters are not all zero: a local real server. (The
# committed t1 counters came from a run where dummy0 stayed down; with it up, this local path
# was not counted on the last run: to be redone with a client VM in the shared lab.)
mkdir -p /www && echo hello >/www/index.html
httpd -p 10.77.0.11:8080 -h /www
ipvsadm -e -t 10.77.0.100:80 -r 10.77.0.11:8080 -m -w 100
ipvsadm -e -t 10.77.0.100:80 -r 10.77.0.21:80 -g -w 0
ipvsadm -e -t 10.77.0.100:80 -r 10.77.0.22:80 -g -w 0 -x 1000 -y 500
for i in 1 2 3 4 5; do timeout 5 wget -q -O /dev/null http://10.77.0.100/ ; done
sleep 1

$P dump $O/t1
ipvsadm -Ln > $O/t1-ipvsadm-Ln.txt
ipvsadm -Ln --stats > $O/t1-ipvsadm-stats.txt
ipvsadm -Z
$P dump $O/t2
ipvsadm -Ln --rate > $O/t2-ipvsadm-rate.txt
ipvsadm -Ln --stats > $O/t2-ipvsadm-stats.txt
$P errors $O/errors
$P flush
$P load 1000 10
$P load 1000 10
ipvsadm -C
true
