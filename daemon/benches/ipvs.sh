#!/usr/bin/env bash
# IPVS programming benchmark: keeperd vs keepalived in one QEMU VM (Debian's kernel), the same
# table of SERVICES x REALS (default 1,000 x 10, DR, wrr, no checkers):
#   cold    process start -> every entry visible in /proc/net/ip_vs
#   reload  SIGHUP with one real server's weight changed -> the new weight visible
# Prints every run and the medians. Results: docs/benchmarks.md.
#
# usage: daemon/benches/ipvs.sh [SERVICES [REALS]]     (RUNS=5 VM_SMP=2 VM_MEM=1G by default;
#        ONLY=keeperd or ONLY=keepalived runs one; KEEP=1 keeps the VM's logs)
# Needs: qemu-system-x86, busybox-static, cpio, ipvsadm, keepalived, binutils, python3, rustc.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
services=${1:-1000}; reals=${2:-10}
work=$(mktemp -d /tmp/keeper-ipvs-bench-XXXXXX)
trap '[ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
(cd "$top" && cargo build -q --release -p keeper --bins)
target=$(cd "$top" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
for b in keeperd keeperctl; do strip -o "$work/$b" "$target/release/$b"; done
rustc -O --edition 2024 "$here/ipvs-poll.rs" -o "$work/ipvs-poll"
python3 "$here/ipvs-gen.py" "$work/gen" "$services" "$reals"
echo "${RUNS:-5}" >"$work/gen/runs"
echo "${ONLY:-keeperd keepalived}" >"$work/gen/only"
echo "${POLL_TIMEOUT_MS:-600000}" >"$work/gen/timeout-ms"
echo "RUNS=${RUNS:-5} $services services x $reals real servers; keeperd $(git -C "$top" rev-parse --short HEAD), $(keepalived --version 2>&1 | head -1)"
RUNS=${RUNS:-5} VM_TOOLS="keepalived" VM_SMP=${VM_SMP:-2} VM_MEM=${VM_MEM:-1G} VM_TIMEOUT=${VM_TIMEOUT:-3000} \
  "$top/daemon/ipvs/tests/vm/run-in-vm.sh" "$work/out" "$here/ipvs-inner.sh" \
  "$work/keeperd" "$work/keeperctl" "$work/ipvs-poll" "$work"/gen/* | grep -E '^(RESULT|FAIL)' | tee "$work/results"
grep -q '^FAIL' "$work/results" && exit 1
echo "median ms:"
for impl in keeperd keepalived; do
  for what in cold reload; do
    awk -v i=$impl -v w=$what '$2==i && $3==w {print $4}' "$work/results" | sort -n |
      awk -v i=$impl -v w=$what '{v[NR]=$1} END {m = NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "  %-10s %-6s %8.1f  (n=%d, min %.1f, max %.1f)\n", i, w, m, NR, v[1], v[NR]}'
  done
done
