#!/usr/bin/env bash
# IPVS programming benchmark: keeperd vs keepalived in one VM, the same table of
# SERVICES x REALS (default 1,000 x 10, DR, wrr, no checkers):
#   cold    process start -> every entry visible in /proc/net/ip_vs
#   reload  SIGHUP with one real server's weight changed -> the new weight visible in a netlink
#           dump of that service (POLL_PROC=1: in /proc/net/ip_vs, ~50 ms per read in UML)
# Prints every run, the medians, and where keeperd's time goes (from its log). Each run gets a
# fresh network namespace (see ipvs-inner.sh). Results: docs/benchmarks.md.
#
# usage: daemon/benches/ipvs.sh [SERVICES [REALS]]     (RUNS=5 BACKEND=uml VM_MEM=1G by default;
#        ONLY=keeperd or ONLY=keepalived runs one; KEEP=1 keeps the VM's logs;
#        KEEPERD_DIR=DIR uses DIR/keeperd and DIR/keeperctl instead of building this checkout;
#        KEEPERD_ENV="NAME=VALUE ..." adds to keeperd's environment;
#        KEEPERD_BASE_DIR=DIR also runs DIR/keeperd, as keeperd-base, interleaved)
# BACKEND=uml: user-mode-linux (Debian's user-mode-linux package, kernel 6.1, one CPU; guest
#   code runs natively), see ipvs-uml.sh; pinned to one host CPU (VM_PIN=N, default the last).
# BACKEND=qemu: QEMU TCG with Debian's cloud kernel (VM_SMP=2 vCPUs), see
#   daemon/ipvs/tests/vm/run-in-vm.sh; TCG emulates every instruction (CPU-bound code ~20x).
# Needs: user-mode-linux and gcc (uml) or qemu-system-x86 and cpio (qemu), busybox-static,
# ipvsadm, iproute2, keepalived, binutils, python3, rustc.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
services=${1:-1000}; reals=${2:-10}
work=$(mktemp -d /tmp/keeper-ipvs-bench-XXXXXX)
trap '[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
# KEEPERD_DIR=DIR takes keeperd and keeperctl from DIR instead of building this checkout.
if [ -n "${KEEPERD_DIR:-}" ]; then
  bindir=$KEEPERD_DIR
else
  (cd "$top" && cargo build -q --release -p keeper --bins)
  bindir=$(cd "$top" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release
fi
for b in keeperd keeperctl; do strip -o "$work/$b" "$bindir/$b"; done
# KEEPERD_BASE_DIR=DIR: DIR/keeperd runs too, as `keeperd-base`, interleaved with the others.
base_bin=
if [ -n "${KEEPERD_BASE_DIR:-}" ]; then
  strip -o "$work/keeperd-base" "$KEEPERD_BASE_DIR/keeperd"; base_bin=$work/keeperd-base
fi
rustc -O --edition 2024 "$here/ipvs-poll.rs" -o "$work/ipvs-poll"
python3 "$here/ipvs-gen.py" "$work/gen" "$services" "$reals"
echo "${RUNS:-5}" >"$work/gen/runs"
echo "${ONLY:-${KEEPERD_BASE_DIR:+keeperd-base }keeperd keepalived}" >"$work/gen/only"
echo "${POLL_TIMEOUT_MS:-600000}" >"$work/gen/timeout-ms"
# POLL_PROC=1: see the reload in /proc/net/ip_vs (as before) instead of a netlink dump.
echo "${POLL_PROC:-}" >"$work/gen/poll-proc"
# KEEPERD_ENV="NAME=VALUE ...": extra environment for keeperd (experiments, e.g. GLIBC_TUNABLES).
echo "${KEEPERD_ENV:-}" >"$work/gen/keeperd-env"
backend=${BACKEND:-uml}
case $backend in
  # Pinned to the host's last CPU unless VM_PIN says otherwise (VM_PIN= does not pin): see
  # ipvs-uml.sh; unpinned, timings spread 5x on a busy host.
  uml) runner=$here/ipvs-uml.sh; export VM_PIN=${VM_PIN-$(($(nproc) - 1))}
       vm="UML $(linux.uml --version 2>/dev/null | awk '{print $NF}'), 1 CPU${VM_PIN:+, pinned to host CPU $VM_PIN}" ;;
  qemu) runner=$top/daemon/ipvs/tests/vm/run-in-vm.sh; vm="QEMU TCG, ${VM_SMP:-2} vCPU" ;;
  *) echo "BACKEND must be uml or qemu"; exit 2 ;;
esac
echo "RUNS=${RUNS:-5} $services services x $reals real servers; ${KEEPERD_BASE_DIR:+keeperd-base $KEEPERD_BASE_DIR, }keeperd ${KEEPERD_DIR:-$(git -C "$top" rev-parse --short HEAD)$(git -C "$top" diff --quiet HEAD || echo +changes)}, $(keepalived --version 2>&1 | head -1); VM: $vm"
VM_TOOLS="keepalived ip" VM_SMP=${VM_SMP:-2} VM_MEM=${VM_MEM:-1G} VM_TIMEOUT=${VM_TIMEOUT:-3000} \
  "$runner" "$work/out" "$here/ipvs-inner.sh" \
  "$work/keeperd" "$work/keeperctl" $base_bin "$work/ipvs-poll" "$work"/gen/* >"$work/vm.log" 2>&1 || true
grep -E '^(RESULT|FAIL)' "$work/vm.log" | tee "$work/results" || true
grep -E '^RSS' "$work/vm.log" | awk '{s[$2]+=$3; n[$2]++} END {for (i in s) printf "RSS %s: %.1f MB (mean of %d)\n", i, s[i]/n[i]/1024, n[i]}' || true
# Page faults and CPU time (ticks of 10 ms) of the daemon: up to idle after the cold start, and
# for the reload.
grep -E '^COST' "$work/vm.log" | sort -k2,3 | awk '{k = $2 " " $3; f[k] = f[k] " " $4; t[k] = t[k] " " $5 * 10} END {for (k in f) printf "COST %s: minor faults%s; CPU ms%s\n", k, f[k], t[k]}' | sort || true
if grep -q '^FAIL' "$work/results" || ! grep -q '^RESULT' "$work/results"; then
  tail -20 "$work/vm.log"; exit 1
fi
python3 - "$work/results" "$work/out" <<'EOF'
import re, statistics, sys
from datetime import datetime
from pathlib import Path

results, out = sys.argv[1], Path(sys.argv[2])
runs = {}
for line in open(results):
    _, impl, what, ms = line.split()
    runs.setdefault((impl, what), []).append(float(ms))
print("median ms (min-max):")
for (impl, what), v in sorted(runs.items()):
    print(f"  {impl:10} {what:6} {statistics.median(v):9.1f}  ({min(v):.1f}-{max(v):.1f}, n={len(v)})")

# keeperd's phases: the event (t0 from ipvs-poll) to its log lines.
def ts(line):
    m = re.match(r"(?:\x1b\[[0-9;]*m)*(\d{4}-\d\d-\d\dT[\d:.]+)Z", line)
    return datetime.fromisoformat(m.group(1) + "+00:00").timestamp() if m else None

log = [(ts(l), re.sub(r"\x1b\[[0-9;]*m", "", l)) for l in (out / "keeperd.log").read_text().splitlines()]
log = [(t, l) for t, l in log if t]
events, mark = [], None
for l in (out / "poll.log").read_text().splitlines():
    if l.startswith("mark ") and l.split()[1] == "keeperd":
        mark = l.split()[2]
    elif l.startswith("mark "):
        mark = None
    elif l.startswith("ipvs-poll: t0") and mark:
        events.append((mark, float(l.split()[2])))
        mark = None

def after(t0, pattern):
    return next((t for t, l in log if t >= t0 and re.search(pattern, l)), None)

phases = {"cold": [], "reload": []}
for what, t0 in events:
    if what == "cold":
        started, applied = after(t0, "keeperd started"), after(t0, r"ipvs: \d+ operations")
        if started and applied:
            phases["cold"].append((started - t0, applied - started))
    else:
        # keeperd hands IPVS the new configuration first, then reloads VRRP, checkers, tracker.
        loaded, applied = after(t0, "configuration reloaded"), after(t0, r"ipvs: \d+ operations")
        if loaded and applied:
            phases["reload"].append((applied - t0, loaded - applied))
labels = {"cold": ("start + configuration", "IPVS (dump, plan, apply)"),
          "reload": ("SIGHUP to IPVS applied (configuration, plan, apply)",
                     "then VRRP, checkers, tracker reloaded")}
print("keeperd phases, median ms:")
for what, v in phases.items():
    if v:
        a, b = labels[what]
        print(f"  {what:6} {a}: {statistics.median(x for x, _ in v) * 1000:.1f}, "
              f"{b}: {statistics.median(y for _, y in v) * 1000:.1f}")
EOF
