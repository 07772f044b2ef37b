#!/usr/bin/env bash
# Boot one throwaway QEMU (TCG) VM with a real Debian kernel and the IPVS modules loaded, run a
# shell script inside it, copy its /out directory back, and power off. Used to capture
# real-kernel fixtures (kernel replies, ipvsadm's requests) for the keeper-ipvs codec tests and
# to run the crate's smoke binary against a real IPVS. Not part of `cargo test`: the host kernel
# has no IPVS. (user-mode-linux 6.1 cannot run on hosts with AMX: "ptrace set fp regs failed,
# errno = 14", so this uses QEMU.)
#
# usage: run-in-vm.sh OUTDIR INNER_SCRIPT [EXTRA_FILE...]
#   INNER_SCRIPT runs as root inside the VM, in /x, where every EXTRA_FILE is copied (with its
#   shared libraries); whatever it writes under /out ends up in OUTDIR, with its log in
#   OUTDIR/inner.log.
# Needs: qemu-system-x86, busybox-static, cpio; ipvsadm and strace are included when installed.
# Environment: VM_TOOLS="ip keepalived ..." adds more host commands (with their libraries) to
# /sbin; VM_MEM (default 256M), VM_SMP (default 1), VM_CPU (QEMU -cpu, default max),
# VM_TIMEOUT (default 300 s).
# The Debian cloud kernel is fetched with apt-get download into KERNEL_CACHE when missing.
# No NIC: nothing leaves the VM. Temporary files live in a mktemp dir removed at exit; the VM
# runs under `timeout` in its own process group.
set -euo pipefail
out=$(realpath -m "$1"); inner=$(realpath "$2"); shift 2
cache=${KERNEL_CACHE:-/var/tmp/keeper-ipvs-kernel}
work=$(mktemp -d /tmp/ipvsfx-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

# --- kernel: Debian's cloud kernel (virtio-less boot from initramfs is enough here) ---------------
if ! ls "$cache"/boot/vmlinuz-* >/dev/null 2>&1; then
  mkdir -p "$cache"
  pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1)
  [ -n "$pkg" ] || { apt-get update -q >/dev/null; pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*\)/\1/p' | head -1); }
  (cd "$cache" && apt-get download -q "$pkg" >/dev/null 2>&1 && dpkg -x ./*.deb . && rm -f ./*.deb)
fi
kernel=$(ls "$cache"/boot/vmlinuz-* | sort -V | tail -1)
kver=${kernel##*/vmlinuz-}
moddir=$cache/lib/modules/$kver

root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,out,x,etc,"lib/modules/$kver"}
cp /bin/busybox "$root/bin/busybox"
# Copy a binary and the shared libraries it loads into the initramfs.
add_bin() {
  local src=$1 dst=$2
  cp "$src" "$root/$dst"
  # Data files (configurations) have no libraries: ldd and grep fail, which is fine.
  { ldd "$src" 2>/dev/null || true; } | { grep -oE '/[^ ]+' || true; } | while read -r lib; do
    if [ -f "$lib" ]; then mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; fi
  done
}
for tool in ipvsadm strace ${VM_TOOLS:-}; do
  p=$(command -v "$tool" || true)
  if [ -n "$p" ]; then add_bin "$p" "sbin/$tool"; fi
done
for f in "$@"; do add_bin "$(realpath "$f")" "x/$(basename "$f")"; done
cp "$inner" "$root/x/inner.sh"

# Modules: ip_vs with every scheduler and the SIP persistence engine, plus dummy (a NIC for the
# sync daemon) and veth (namespaces as nodes). Dependencies are resolved by busybox
# depmod/modprobe inside the VM.
(cd "$moddir" && find kernel/net kernel/lib kernel/drivers/net/dummy.ko kernel/drivers/net/veth.ko -name '*.ko' 2>/dev/null) |
  while read -r m; do mkdir -p "$root/lib/modules/$kver/$(dirname "$m")"; cp "$moddir/$m" "$root/lib/modules/$kver/$m"; done
cp "$moddir"/modules.{order,builtin} "$root/lib/modules/$kver/" 2>/dev/null || true
/bin/busybox depmod -b "$root" "$kver"

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /run /var /etc; ln -sf /run /var/run
# The kernel asks /sbin/modprobe for modules on demand (e.g. a bridge).
[ -e /sbin/modprobe ] || ln -s /bin/busybox /sbin/modprobe
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_lc ip_vs_wlc ip_vs_lblc ip_vs_lblcr ip_vs_dh ip_vs_sh \
         ip_vs_sed ip_vs_nq ip_vs_mh ip_vs_fo ip_vs_ovf ip_vs_pe_sip dummy; do
  modprobe $m || echo "modprobe $m failed"
done
ip link set lo up
cd /x && sh /x/inner.sh >/out/inner.log 2>&1; echo "inner exit $?" >>/out/inner.log
# Ship /out back over the second serial port.
{ echo "@@OUT-BEGIN@@"; tar c -C /out . | gzip | base64; echo "@@OUT-END@@"; } >/dev/ttyS1
sync
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

setsid timeout -k 5 "${VM_TIMEOUT:-300}" qemu-system-x86_64 -accel tcg,tb-size=64 -cpu "${VM_CPU:-max}" -m "${VM_MEM:-256M}" -smp "${VM_SMP:-1}" \
  -nographic -no-reboot -nodefaults -display none \
  -kernel "$kernel" -initrd "$work/initrd.gz" -append "console=ttyS0 quiet panic=-1" \
  -serial "file:$work/console.log" -serial "file:$work/out.b64" </dev/null >/dev/null 2>&1 || true

mkdir -p "$out"
if ! grep -q '@@OUT-END@@' "$work/out.b64" 2>/dev/null; then
  echo "VM produced no output; console:"; tail -40 "$work/console.log"; exit 1
fi
sed -n '/@@OUT-BEGIN@@/,/@@OUT-END@@/p' "$work/out.b64" | sed '1d;$d' | tr -d '\r' | base64 -d | tar xz -C "$out"
cat "$out/inner.log"
grep -q '^inner exit 0$' "$out/inner.log"
