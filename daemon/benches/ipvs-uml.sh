#!/usr/bin/env bash
# Boot one throwaway user-mode-linux VM (Debian's user-mode-linux package: kernel 6.1 with its
# IPVS modules), run a shell script inside it, copy its /out directory back, and stop. The
# user-mode-linux counterpart of daemon/ipvs/tests/vm/run-in-vm.sh (same interface), for the
# IPVS benchmark: UML runs guest code natively (system calls trap to the host), QEMU TCG
# emulates every instruction, which slows CPU-bound work about 20x.
#
# usage: ipvs-uml.sh OUTDIR INNER_SCRIPT [EXTRA_FILE...]
#   INNER_SCRIPT runs as root inside the VM, in /x, where every EXTRA_FILE is copied (with its
#   shared libraries); whatever it writes under /out ends up in OUTDIR, with its log in
#   OUTDIR/inner.log.
# Environment: VM_TOOLS="ip keepalived ..." adds host commands (with their libraries) to /sbin;
# VM_MEM (default 256M), VM_TIMEOUT (default 300 s), VM_PIN (pin to one host CPU, see below).
# UML is one CPU.
# Needs: user-mode-linux, busybox-static, gcc (the xstate shim below); ipvsadm when installed.
#
# The root file system is a directory of this run's temporary directory, mounted read-write over
# hostfs; the inner script's working directories (/run, /tmp, /etc/keeper, /etc/keepalived) are
# tmpfs in the VM, so the daemons read their configurations from guest memory. No NIC: nothing
# leaves the VM. The VM runs under `timeout` in its own session.
#
# On hosts whose XSAVE area is larger than UML 6.1's buffer (CPUs with AMX), every guest process
# dies at its first exec ("ptrace set fp regs failed, errno = 14"): vm-tests/lib/kvl/
# uml-xstate-shim.c pads that buffer (see its comment); it is built here and LD_PRELOADed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
out=$(realpath -m "$1"); inner=$(realpath "$2"); shift 2
work=$(mktemp -d /tmp/ipvs-uml-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

kernel=$(command -v linux.uml) || { echo "linux.uml not found (apt-get install user-mode-linux)"; exit 1; }
kver=$("$kernel" --version 2>/dev/null | awk '{print $NF}')
moddir=/usr/lib/uml/modules/$kver
[ -f "$moddir/modules.dep" ] || { echo "no UML modules in $moddir"; exit 1; }

cc -O2 -Wall -shared -fPIC -o "$work/uml-xstate-shim.so" "$top/vm-tests/lib/kvl/uml-xstate-shim.c" -ldl

root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,out,x,etc/keeper,etc/keepalived,"lib/modules/$kver"}
cp /bin/busybox "$root/bin/busybox"
# Copy a binary and the shared libraries it loads into the root.
add_bin() {
  local src=$1 dst=$2
  cp "$src" "$root/$dst"
  # Data files (configurations) have no libraries: ldd and grep fail, which is fine.
  { ldd "$src" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | while read -r lib; do
    if [ -f "$lib" ]; then mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; fi
  done
}
if p=$(command -v ipvsadm); then add_bin "$p" sbin/ipvsadm; fi
for tool in ${VM_TOOLS:-}; do
  p=$(command -v "$tool") || { echo "$tool not found on this host"; exit 1; }
  add_bin "$p" "sbin/$tool"
  [ -x "$root/sbin/$tool" ] || { echo "$tool: not copied into the VM"; exit 1; }
done
for f in "$@"; do add_bin "$(realpath "$f")" "x/$(basename "$f")"; done
cp "$inner" "$root/x/inner.sh"
# Modules: networking (ip_vs, its schedulers and dependencies) and lib; modules.dep as shipped.
(cd "$moddir" && find kernel/net kernel/lib -name '*.ko') | while read -r m; do
  mkdir -p "$root/lib/modules/$kver/$(dirname "$m")"; cp "$moddir/$m" "$root/lib/modules/$kver/$m"
done
cp "$moddir"/modules.{dep,order,builtin,alias} "$root/lib/modules/$kver/" 2>/dev/null || true

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; [ -e /dev/null ] || mount -t devtmpfs dev /dev
for d in /run /tmp /etc/keeper /etc/keepalived; do mount -t tmpfs tmpfs $d; done
mkdir -p /var; ln -sf /run /var/run 2>/dev/null
[ -e /sbin/modprobe ] || ln -s /bin/busybox /sbin/modprobe
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_wlc; do
  modprobe $m || echo "modprobe $m failed"
done
ip link set lo up
cd /x && sh /x/inner.sh >/out/inner.log 2>&1; echo "inner exit $?" >>/out/inner.log
sync
poweroff -f
INIT
chmod +x "$root/init"

# VM_PIN=N pins the VM's host threads to CPU N: a UML page fault or system call is several host
# context switches between the VM's kernel thread and the process, and on one CPU those do not
# wait for the other CPU's scheduler (much less spread when the host is busy).
pin=()
[ -n "${VM_PIN:-}" ] && pin=(taskset -c "$VM_PIN")
setsid env LD_PRELOAD="$work/uml-xstate-shim.so" timeout -k 5 "${VM_TIMEOUT:-300}" "${pin[@]}" \
  "$kernel" "mem=${VM_MEM:-256M}" "umid=ipvs-bench-$$" "uml_dir=$work" \
  root=/dev/root rootfstype=hostfs "rootflags=$root" rw init=/init \
  con=null con0=null,fd:1 ssl=null console=tty0 quiet \
  </dev/null >"$work/console.log" 2>&1 || true

mkdir -p "$out"
if [ ! -f "$root/out/inner.log" ]; then
  echo "VM produced no output; console:"; tail -40 "$work/console.log"; exit 1
fi
cp -a "$root/out/." "$out/"
cat "$out/inner.log"
grep -q '^inner exit 0$' "$out/inner.log"
