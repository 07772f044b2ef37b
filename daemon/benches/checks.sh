#!/usr/bin/env bash
# Checker benchmark: keeperd vs keepalived's checker in one QEMU VM (Debian's kernel, real IPVS),
# the same configuration for both: SERVICES x REALS real servers (default 100 x 100 = 10,000, DR,
# wrr), every real server checked every second, first by TCP connect, then by HTTP GET / (200).
# The real servers are real sockets: 10.100.0.0/16 routed locally in the VM's namespace to one
# listener (checks-server.rs, a minimal HTTP/1.0 server) on port 80. Each daemon runs alone in a
# fresh namespace; after WARMUP s, a window of WINDOW s measures its CPU (user+system, % of one
# CPU), the connections the real servers accepted per second (the work done), its RSS, and, for
# keeperd, the attempts that started late by more than 10 % of their interval (its own count,
# `keeperctl status`). See checks-inner.sh. Results: docs/benchmarks.md.
#
# usage: daemon/benches/checks.sh [SERVICES [REALS]]
#   WARMUP=20 WINDOW=30 VM_SMP=2 VM_MEM=2G by default; KINDS="tcp http"; ONLY=keeperd or
#   ONLY=keepalived runs one; KEEP=1 keeps the VM's logs.
# Needs: qemu-system-x86, busybox-static, cpio, ipvsadm, iproute2, keepalived, python3, rustc.
# Not a test: the VM is software-emulated (TCG), so absolute numbers are many times a real
# machine's; the comparison is the point (same VM, same configuration, same run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
services=${1:-100}; reals=${2:-100}
work=$(mktemp -d /tmp/keeper-checks-bench-XXXXXX)
trap '[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
(cd "$top" && cargo build -q --release -p keeper --bins)
target=$(cd "$top" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
for b in keeperd keeperctl; do strip -o "$work/$b" "$target/release/$b"; done
rustc -O --edition 2024 "$here/checks-server.rs" -o "$work/checks-server"
python3 "$here/checks-gen.py" "$work/gen" "$services" "$reals"
echo "${WARMUP:-20}" >"$work/gen/warmup"
echo "${WINDOW:-30}" >"$work/gen/window"
echo "${KINDS:-tcp http}" >"$work/gen/kinds"
echo "${ONLY:-keeperd keepalived}" >"$work/gen/only"
echo "$services services x $reals real servers, checks every 1 s; keeperd $(git -C "$top" rev-parse --short HEAD), $(keepalived --version 2>&1 | head -1); VM: ${VM_SMP:-2} vCPU TCG, ${VM_MEM:-2G}"
VM_TOOLS="keepalived ip" VM_SMP=${VM_SMP:-2} VM_MEM=${VM_MEM:-2G} VM_TIMEOUT=${VM_TIMEOUT:-1800} \
  "$top/daemon/ipvs/tests/vm/run-in-vm.sh" "$work/out" "$here/checks-inner.sh" \
  "$work/keeperd" "$work/keeperctl" "$work/checks-server" "$work"/gen/* >"$work/vm.log" 2>&1 || true
grep -E '^(RESULT|FAIL)' "$work/vm.log" | tee "$work/results" || true
if grep -q '^FAIL' "$work/results" || ! grep -q '^RESULT' "$work/results"; then
  tail -30 "$work/vm.log"; exit 1
fi
python3 - "$work/results" <<'EOF'
import sys
r = {}
for line in open(sys.argv[1]):
    _, kind, impl, key, *value = line.split()
    r[(kind, impl, key)] = value
print(f"{'check':6} {'daemon':10} {'CPU %':>7} {'conn/s':>7} {'RSS MB':>7} {'in table':>8}  attempts, late starts (keeperd)")
for kind in ("tcp", "http"):
    for impl in ("keeperd", "keepalived"):
        g = lambda k: r.get((kind, impl, k), ["-"])[0]
        if g("cpu_percent") == "-":
            continue
        rss = g("rss_kb")
        rss = f"{int(rss) / 1024:.1f}" if rss != "-" else "-"
        late = ""
        if impl == "keeperd":
            late = f"{g('attempts_per_s')}/s; {g('late_starts')} late of {g('attempts')} (by lateness <1,4,16,64,256,1000,>1000 ms: {' '.join(r.get((kind, impl, 'lateness_histogram'), []))})"
        print(f"{kind:6} {impl:10} {g('cpu_percent'):>7} {g('conn_per_s'):>7} {rss:>7} {g('real_servers_in_table'):>8}  {late}")
EOF
