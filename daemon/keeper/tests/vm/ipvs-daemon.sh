#!/usr/bin/env bash
# keeperd's IPVS on a real kernel: boots one QEMU VM (daemon/ipvs/tests/vm/run-in-vm.sh) that
# runs ipvs-daemon-inner.sh against the current keeperd build, and prints its PASS/FAIL lines.
# The host kernel has no IPVS; the VM has Debian's. About 1-2 minutes with QEMU TCG.
#
# usage: ipvs-daemon.sh [OUTDIR]      (OUTDIR keeps the VM's logs; default a temporary dir)
# Environment: KEEPER_BIN=DIR uses keeperd/keeperctl from DIR instead of building them;
# PROFILE=debug|release (default release) picks the build otherwise.
# Needs: qemu-system-x86, busybox-static, cpio, ipvsadm, iproute2, binutils (strip).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../../../.." && pwd)
if [ -z "${KEEPER_BIN:-}" ]; then
  # PROFILE=debug shares the build of `cargo test` (scripts/layers/ipvs-vm.sh uses it).
  profile=${PROFILE:-release}
  (cd "$top" && cargo build -q --profile "${profile/debug/dev}" -p keeper --bins)
  KEEPER_BIN=$(cd "$top" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/$profile
fi
bins=$(mktemp -d /tmp/keeper-ipvs-bin-XXXXXX)
out=${1:-}
if [ -z "$out" ]; then
  out=$(mktemp -d /tmp/keeper-ipvs-vm-XXXXXX)
  trap 'rm -rf "$out" "$bins"' EXIT
else
  trap 'rm -rf "$bins"' EXIT
fi
# Stripped copies: the initramfs lives in the VM's memory.
for b in keeperd keeperctl; do strip -o "$bins/$b" "$KEEPER_BIN/$b"; done
VM_TOOLS="ip" VM_MEM=${VM_MEM:-512M} VM_TIMEOUT=${VM_TIMEOUT:-600} \
  "$top/daemon/ipvs/tests/vm/run-in-vm.sh" "$out" "$here/ipvs-daemon-inner.sh" \
  "$bins/keeperd" "$bins/keeperctl"
