# Helpers shared by the lab scenarios; loaded before each NN-*.py (by vm-tests/run and by the Nix tests).
# Uses only the NixOS test-driver API (director, backup, rs1, rs2, client with succeed/execute/...) and the
# `lab` dict. Guest commands need bash, iproute2, curl, arping (iputils or busybox), nc (busybox or OpenBSD),
# ipvsadm on the directors; times are measured inside the client VM (/proc/uptime), never by host polling.
import re
import time

IFACE = lab["iface"]
VIP = lab["vip"]
UNIT = lab["unit"]
ADVERT = float(lab["advert_int"])
SLOW = lab.get("slow", 1)
DIRECTORS = [director, backup]
# How block() cuts a node off: the portable lab takes its tap out of the bridge (the node's NIC keeps its carrier,
# like a cable cut behind a switch); the NixOS driver sets the VM's link down, so the director's daemon sees
# its interface fail (FAULT) and gives the VIP up instead of staying master in a split brain.
BLOCK_KEEPS_CARRIER = lab.get("block_keeps_carrier", False)
# True when the implementation under test does not program IPVS and the lab set the virtual services up itself.
IPVS_BY_LAB = lab.get("ipvs_by_lab", False)


def require_daemon_ipvs(what):
    """Scenarios about the daemon's own IPVS work cannot pass on a table the lab programmed."""
    if IPVS_BY_LAB:
        raise Exception(f"not applicable: {lab['impl']} does not program IPVS yet ({what})")


def master_down_interval(priority):
    """RFC 5798: 3 x Advertisement_Interval + Skew_Time, Skew_Time = (256 - priority) x interval / 256."""
    return 3 * ADVERT + (256 - priority) * ADVERT / 256


BACKUP_TAKEOVER = master_down_interval(lab["priority"]["backup"])
SKEW_BACKUP = (256 - lab["priority"]["backup"]) * ADVERT / 256


def timing(label, seconds):
    print(f"[timing] {label}: {seconds:.3f} s")


def has_vip_cmd():
    return f"ip -4 -o addr show dev {IFACE} | grep -q ' inet {VIP}/'"


def vip_holders():
    return [m.name for m in DIRECTORS if m.booted and m.execute(has_vip_cmd())[0] == 0]


def wait_vip(m, timeout):
    m.wait_until_succeeds(has_vip_cmd(), timeout=int(timeout * SLOW))


def wait_no_vip(m, timeout):
    m.wait_until_fails(has_vip_cmd(), timeout=int(timeout * SLOW))


def mac_of(m):
    return m.succeed(f"cat /sys/class/net/{IFACE}/address").strip().lower()


def boot_lab():
    """Start every node, wait for the services and for the director to own the VIP. Returns seconds taken."""
    t0 = time.monotonic()
    start_all()
    for m in DIRECTORS:
        m.wait_for_unit(UNIT, timeout=60 * SLOW)
    for m in (rs1, rs2):
        m.wait_for_unit(lab["http_unit"], timeout=60 * SLOW)
        m.wait_for_unit(lab["echo_unit"], timeout=60 * SLOW)
    wait_vip(director, 30)
    return time.monotonic() - t0


def pool(m, port=80):
    """Real servers of VIP:port in m's IPVS table: {ip: weight}."""
    out = m.succeed(f"ipvsadm -Ln -t {VIP}:{port}")
    return {ip: int(w) for ip, w in re.findall(r"->\s+([\d.]+):\d+\s+\w+\s+(\d+)", out)}


def in_pool(m, rs_name, port=80):
    return pool(m, port).get(lab["ip"][rs_name], 0) > 0


def service_stats(m, port=80):
    """(conns, inpkts, outpkts) of the virtual service VIP:port on m."""
    out = m.succeed(f"ipvsadm -Ln --stats --exact -t {VIP}:{port}")
    row = re.search(rf"TCP\s+{re.escape(VIP)}:{port}\s+(\d+)\s+(\d+)\s+(\d+)", out)
    assert row, f"no stats row for {VIP}:{port} in:\n{out}"
    return tuple(int(x) for x in row.groups())


def settled_stats(m, port=80, at_least_conns=0, timeout=8):
    """service_stats once the kernel's estimator (it folds per-CPU counters every 2 s) shows at_least_conns."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        stats = service_stats(m, port)
        if stats[0] >= at_least_conns or time.monotonic() > deadline:
            return stats
        time.sleep(0.5)


# An HTTP GET as a shell function: busybox wget when busybox is there (a static binary: cheap to start in a VM
# whose every syscall is emulated), else curl. busybox wget's own -T crashes: the limit comes from timeout(1).
HTTP_GET_FN = (
    'kvl_get() { if command -v busybox >/dev/null 2>&1; then timeout "$2" busybox wget -q -O - "$1"; '
    'else curl -sS -m "$2" "$1"; fi; }'
)


def requests(n, port=80):
    """n sequential HTTP requests from the client to the VIP; the answering real servers, in order."""
    out = client.succeed(
        f"{HTTP_GET_FN}; for i in $(seq {n}); do kvl_get http://{VIP}:{port}/ 3 || echo FAILED; done",
        timeout=10 + 4 * n,
    )
    return out.split()


def neigh_mac(ip):
    """The client's neighbour entry for ip: its MAC, or None."""
    out = client.succeed(f"ip neigh show {ip} dev {IFACE}")
    m = re.search(r"lladdr ([0-9a-fA-F:]{17})", out)
    return m.group(1).lower() if m else None


def arping_macs(count=3):
    """MACs that answer `arping VIP` from the client (iputils and busybox arping print the same reply lines)."""
    _, out = client.execute(f"arping -c {count} -w {count + 2} -I {IFACE} {VIP} 2>&1")
    return sorted({mac.lower() for mac in re.findall(r"reply from [\d.]+ \[([0-9a-fA-F:]{17})\]", out)})


# --- client-side probe ---------------------------------------------------------------------------------------------
# One HTTP request to the VIP starts every PERIOD seconds, each in the background with a 2 s limit, and logs
# "start end status body" (client uptime). The outage is the largest gap between two successful completions, so
# its resolution is about one period plus one request; requests that hang in a retransmission do not hide it.

PROBE_SCRIPT = HTTP_GET_FN + r"""
kind=$1 url=$2 log=$3 period=$4 max=$5
: >"$log"
rm -f "$log.stop" "$log.done"
read -r t0 _ </proc/uptime
end=$(( ${t0%.*} + max ))
while [ ! -e "$log.stop" ]; do
	(
		read -r s _ </proc/uptime
		if [ "$kind" = icmp ]; then
			ping -c 1 -W 1 "$url" >/dev/null 2>&1 && rc=0 body=pong || rc=$?
		else
			body=$(kvl_get "$url" 2 2>/dev/null) && rc=0 || rc=$?
		fi
		read -r e _ </proc/uptime
		echo "$s $e $rc ${body:--}" >>"$log"
	) &
	sleep "$period"
	read -r now _ </proc/uptime
	[ "${now%.*}" -lt "$end" ] || break
done
wait
touch "$log.done"
"""


def _probe_log(name):
    return f"/tmp/kvl-probe-{name}.log"


PROBE_PERIOD = 0.1


def start_probe(name, period=PROBE_PERIOD, max_seconds=240, kind="http"):
    """Start probing the VIP from the client: kind "http" (GET /, through IPVS to a real server) or "icmp"
    (ping, answered by whichever director holds the VIP)."""
    client.succeed(f"cat >/tmp/kvl-probe.sh <<'EOF'\n{PROBE_SCRIPT}\nEOF")
    log = _probe_log(name)
    target = VIP if kind == "icmp" else f"http://{VIP}/"
    client.succeed(
        # busybox sh forks and starts its applets far cheaper than bash does in an emulated VM.
        "runner=bash; command -v busybox >/dev/null 2>&1 && runner='busybox sh'; "
        f"setsid $runner /tmp/kvl-probe.sh {kind} {target} {log} {period} {max_seconds} >/dev/null 2>&1 </dev/null &"
    )
    # The baseline: the VIP answers before anything happens.
    client.wait_until_succeeds(f"test $(grep -c '^[0-9.]* [0-9.]* 0 ' {log}) -ge 5", timeout=30 * SLOW)


def mark(*names_and_label):
    """mark(probe..., label): note an event on the client's clock, taken just before the event is triggered."""
    *names, label = names_and_label
    logs = " ".join(_probe_log(n) for n in names)
    out = client.succeed(
        f"read -r t _ </proc/uptime; for f in {logs}; do echo \"$t $t MARK {label}\" >>$f; done; echo $t"
    )
    return float(out.strip())


def wait_probe_ok_after(name, t, count=5, timeout=30):
    """Wait until count requests that started after client time t succeeded."""
    log = _probe_log(name)
    client.wait_until_succeeds(
        f"test $(awk '$3 == 0 && $1 > {t} {{ n++ }} END {{ print n + 0 }}' {log}) -ge {count}",
        timeout=int(timeout * SLOW),
    )


def stop_probe(name):
    log = _probe_log(name)
    client.succeed(f"touch {log}.stop")
    client.wait_until_succeeds(f"test -e {log}.done", timeout=10 * SLOW)
    reqs, marks = [], {}
    for line in client.succeed(f"cat {log}").splitlines():
        f = line.split(" ", 3)
        if len(f) == 4 and f[2] == "MARK":
            marks[f[3]] = float(f[0])
        elif len(f) >= 3:
            reqs.append((float(f[0]), float(f[1]), int(f[2]), f[3] if len(f) > 3 else ""))
    return reqs, marks


class Outage:
    """What the client saw around an event: the largest gap between successful completions after it (gap), the
    first success after it, the servers that answered after it, and the probe's resolution there (the largest
    spacing of request starts: more than the period when the client VM was short of CPU)."""

    def __init__(self, gap, first_ok, answered, resolution):
        self.gap, self.first_ok, self.answered, self.resolution = gap, first_ok, answered, resolution


def outage_after(reqs, t, settled=None, quiet=False):
    """The Outage caused by an event at client time t: the largest gap between successful completions that
    begins at or after the last success before t and before `settled` (client time by which the host saw the
    new state: later gaps are not this event's; on a loaded host the client VM itself can stall later)."""
    oks = sorted((e, body) for s, e, rc, body in reqs if rc == 0)
    before = [e for e, _ in oks if e <= t]
    after = [(e, body) for e, body in oks if e > t]
    assert after, "the client never got an answer again"
    prev = before[-1] if before else t
    gap, gap_end = 0.0, t
    for e, _ in after:
        if e - prev > gap and (settled is None or prev <= settled):
            gap, gap_end = e - prev, e
        prev = e
    starts = sorted(s for s, _, _, _ in reqs if gap_end - gap - 0.3 <= s <= gap_end + 0.3)
    resolution = max([b - a for a, b in zip(starts, starts[1:])] + [PROBE_PERIOD])
    # The requests around the largest gap, for the log: what the client saw while it waited.
    for s, e, rc, body in [] if quiet else sorted(reqs):
        if gap_end - gap - 0.3 <= e <= gap_end + 0.3 or gap_end - gap - 0.3 <= s <= gap_end:
            print(f"  probe: start {s:.2f} end {e:.2f} ({e - s:.2f} s) status {rc} {body}")
    return Outage(gap, after[0][0], sorted({body for _, body in after}), resolution)


def check_outage(label, outage, limit):
    """Print an outage and assert it is within limit, widened by the probe's lag where the client was starved
    of CPU (a loaded host): the measurement cannot be finer than the probe's actual spacing."""
    slack = max(0.0, outage.resolution - PROBE_PERIOD)
    timing(label, outage.gap)
    print(f"  probe resolution {outage.resolution:.2f} s; limit {limit:.2f} s (+{slack:.2f} s probe lag)")
    assert outage.gap <= limit + slack, f"{label}: {outage.gap:.2f} s > {limit:.2f} s (+{slack:.2f} s)"


def failed_requests_after(reqs, t):
    return sum(1 for s, e, rc, body in reqs if s > t and rc != 0)
