"""What the VMs boot: kernels (UML from the host package, QEMU's Debian cloud kernel fetched with apt) and one
root file system built from the host's own binaries.

The rootfs is a directory under vm-tests/.work/cache: the lab's binaries (keepalived, ipvsadm, iproute2, curl,
busybox) with their shared-library closure at the host's paths, the kernel modules the lab needs for both kernels,
and the guest scripts and configs of this checkout under /usr/share/kvl. UML boots it read-only over hostfs; QEMU
boots it packed as an uncompressed initramfs. keeperd is not part of it: UML mounts the cargo target directory
over hostfs (no rebuild per cargo build), QEMU gets it in a small initramfs segment appended per run.
"""

import hashlib
import json
import os
import re
import shutil
import stat
from pathlib import Path

from .util import HarnessError, log, run

BUILDER_VERSION = 4
MULTIARCH = "x86_64-linux-gnu"

# (command, where it goes in the VM): the lab's tools, copied with their library closure.
LAB_BINARIES = [
    ("keepalived", "usr/sbin"),
    ("ipvsadm", "usr/sbin"),
    ("ip", "usr/sbin"),
    ("curl", "usr/bin"),
    # The shell of every guest script and agent command: bash, as in NixOS (`set -euo pipefail`). Busybox's sh
    # would run its own applets in place of the real tools above (it prefers applets over PATH).
    ("bash", "usr/bin"),
]
OPTIONAL_BINARIES = [("tcpdump", "usr/sbin")]
BUSYBOX = shutil.which("busybox") or "/bin/busybox"

# Modules the nodes load, per kernel flavour; their dependencies come from modules.dep.
UML_MODULES = ["ipv6", "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_wlc"]
QEMU_MODULES = ["virtio_pci", "virtio_net", "ip_vs", "ip_vs_rr", "ip_vs_wrr", "ip_vs_wlc"]

# Host commands the harness needs, and the Debian packages that provide them.
HOST_PACKAGES = {
    "busybox": "busybox-static",
    "keepalived": "keepalived",
    "ipvsadm": "ipvsadm",
    "ip": "iproute2",
    "curl": "curl",
    "linux.uml": "user-mode-linux",
    "qemu-system-x86_64": "qemu-system-x86",
    "cc": "gcc",
    "strip": "binutils",
}


def ensure_host_packages(commands):
    """Install (apt-get, as root) the packages behind any missing command; fail if still missing."""
    missing = [c for c in commands if shutil.which(c) is None]
    if not missing:
        return
    pkgs = sorted({HOST_PACKAGES[c] for c in missing})
    log(f"installing host packages for {', '.join(missing)}: {' '.join(pkgs)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *pkgs]
    if run(install, env=env, check=False, capture=True).returncode:
        apt_update()
        run(install, env=env, check=False, capture=True)
    global BUSYBOX
    BUSYBOX = shutil.which("busybox") or BUSYBOX
    still = [c for c in commands if shutil.which(c) is None]
    if still:
        raise HarnessError(f"missing commands after apt-get install {' '.join(pkgs)}: {', '.join(still)}")


_apt_updated = False
_apt_update_error = ""


def apt_update():
    """apt-get update once per run; its failure is kept so that a later error can name the cause."""
    global _apt_updated, _apt_update_error
    if not _apt_updated:
        log("apt-get update")
        res = run(["apt-get", "update", "-q"], check=False, capture=True,
                  env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        if res.returncode:
            lines = [ln for ln in (res.stderr or "").splitlines() if ln.strip()]
            _apt_update_error = f"apt-get update exited {res.returncode}: {' | '.join(lines[-3:])}"
            log(_apt_update_error)
        _apt_updated = True


def _free_space(path: Path):
    st = os.statvfs(path)
    return f"{st.f_bavail * st.f_frsize / 2**30:.1f} GiB free under {path}"


class Kernel:
    """A bootable kernel: its image, its version and its (host) modules directory."""

    def __init__(self, flavour, image, version, modules_dir, wanted_modules):
        self.flavour = flavour
        self.image = Path(image)
        self.version = version
        self.modules_dir = Path(modules_dir)
        self.wanted_modules = wanted_modules


def uml_kernel():
    image = shutil.which("linux.uml")
    if image is None:
        raise HarnessError("linux.uml not found (Debian package user-mode-linux)")
    versions = sorted(p.name for p in Path("/usr/lib/uml/modules").iterdir() if (p / "modules.dep").exists())
    if not versions:
        raise HarnessError("no UML modules under /usr/lib/uml/modules")
    out = run([image, "--version"], capture=True, check=False).stdout.strip()
    version = out.split()[-1] if out else versions[-1]
    if version not in versions:
        version = versions[-1]
    return Kernel("uml", image, version, f"/usr/lib/uml/modules/{version}", UML_MODULES)


def uml_xstate_shim(cache: Path):
    """Build the LD_PRELOAD shim that lets UML 6.1 run on hosts with a large XSAVE area (see its source).

    Returns its path, or None when no C compiler is there and the host does not need it (no AMX)."""
    src = Path(__file__).with_name("uml-xstate-shim.c")
    out = cache / "uml-xstate-shim.so"
    stamp = cache / "uml-xstate-shim.stamp"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    if out.exists() and stamp.exists() and stamp.read_text() == digest:
        return out
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        if "amx_tile" in Path("/proc/cpuinfo").read_text():
            raise HarnessError("this CPU has AMX: UML 6.1 needs vm-tests/lib/kvl/uml-xstate-shim.c, and no C "
                               "compiler (cc) is installed to build it (apt-get install gcc)")
        return None
    run([cc, "-O2", "-Wall", "-shared", "-fPIC", "-o", str(out), str(src), "-ldl"], capture=True)
    stamp.write_text(digest)
    return out


def qemu_kernel(cache: Path):
    """Debian's cloud kernel, fetched with apt-get download + dpkg -x into the cache (no install)."""
    root = cache / "qemu-kernel"
    found = _find_cloud_kernel(root)
    if found is None and _find_cloud_kernel(SHARED_KERNEL_CACHE) is not None:
        # The IPVS layer (daemon/ipvs/tests/vm/run-in-vm.sh) unpacks the same package there: link, don't fetch.
        log(f"using the cloud kernel unpacked in {SHARED_KERNEL_CACHE}")
        tmp = cache / "qemu-kernel.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for sub in ("boot", "lib"):
            if (SHARED_KERNEL_CACHE / sub).is_dir():
                shutil.copytree(SHARED_KERNEL_CACHE / sub, tmp / sub, symlinks=True, copy_function=_link_or_copy)
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
        found = _find_cloud_kernel(root)
    if found is None:
        dl = cache / "dl"
        dl.mkdir(parents=True, exist_ok=True)
        pkg = _cloud_kernel_package()
        log(f"fetching {pkg} (apt-get download)")
        for attempt in range(2):
            res = run(["apt-get", "download", pkg], cwd=dl, check=False, capture=True)
            if res.returncode == 0:
                break
            if attempt == 0:
                apt_update()
                pkg = _cloud_kernel_package()
        else:
            raise HarnessError(f"apt-get download {pkg} failed: {res.stderr.strip()}; {_free_space(dl)}")
        debs = sorted(dl.glob(f"{pkg}_*.deb"))
        if not debs:
            raise HarnessError(f"apt-get download {pkg} left no .deb in {dl}")
        tmp = cache / "qemu-kernel.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        run(["dpkg", "-x", str(debs[-1]), str(tmp)])
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
        for deb in debs:
            deb.unlink()
        found = _find_cloud_kernel(root)
        if found is None:
            raise HarnessError(f"{debs[-1].name} has no vmlinuz/modules")
    image, version = found
    mods = root / "lib/modules" / version
    if not (mods / "modules.dep").exists():
        # The .deb ships no modules.dep (depmod runs at install time); busybox depmod makes one.
        run([BUSYBOX, "depmod", "-b", str(root), version])
    return Kernel("qemu", image, version, mods, QEMU_MODULES)


# Where daemon/ipvs/tests/vm/run-in-vm.sh keeps the same Debian cloud kernel (KERNEL_CACHE there).
SHARED_KERNEL_CACHE = Path(os.environ.get("KERNEL_CACHE", "/var/tmp/keeper-ipvs-kernel"))


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def cached_qemu_kernel(cache: Path):
    """The cloud kernel if an earlier run fetched it (never downloads), else None."""
    found = _find_cloud_kernel(cache / "qemu-kernel")
    if found is None or not (cache / "qemu-kernel/lib/modules" / found[1] / "modules.dep").exists():
        return None
    return Kernel("qemu", found[0], found[1], cache / "qemu-kernel/lib/modules" / found[1], QEMU_MODULES)


def _find_cloud_kernel(root: Path):
    images = sorted(root.glob("boot/vmlinuz-*-cloud-amd64"))
    if not images:
        return None
    version = images[-1].name[len("vmlinuz-") :]
    if not (root / "lib/modules" / version).is_dir():
        return None
    return images[-1], version


def _cloud_kernel_package():
    """linux-image-cloud-amd64 is a metapackage; the image is in the versioned package it depends on."""
    for attempt in range(2):
        res = run(["apt-cache", "depends", "linux-image-cloud-amd64"], capture=True, check=False)
        for line in res.stdout.splitlines():
            m = re.match(r"\s*Depends:\s*(linux-image-[0-9][^\s]*-cloud-amd64)$", line)
            if m:
                return m.group(1)
        if attempt == 0:
            apt_update()
    why = f"; {_apt_update_error}" if _apt_update_error else ""
    raise HarnessError(f"apt-cache knows no linux-image-cloud-amd64 (is this Debian with main enabled?){why}; "
                       f"{_free_space(Path('/var/lib/apt'))}")


# --- the root file system --------------------------------------------------------------------------------------


def _ldd_closure(binary):
    """Shared objects a binary loads, as host paths (interpreter included)."""
    res = run(["ldd", binary], capture=True, check=False)
    if res.returncode != 0 and "not a dynamic executable" in (res.stdout + res.stderr):
        return []
    libs = []
    for line in res.stdout.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(0x", line)
        if m:
            libs.append(m.group(1))
        elif "not found" in line:
            raise HarnessError(f"{binary}: {line.strip()}")
    return libs


def _module_closure(kernel: Kernel):
    """Relative paths of the wanted modules and their dependencies, and the modules.dep lines for them."""
    deps = {}
    for line in (kernel.modules_dir / "modules.dep").read_text().splitlines():
        if ":" not in line:
            continue
        mod, rest = line.split(":", 1)
        deps[mod.strip()] = rest.split()
    by_name = {}
    for mod in deps:
        name = os.path.basename(mod).split(".ko")[0].replace("-", "_")
        by_name[name] = mod
    want, seen = [], set()
    for name in kernel.wanted_modules:
        mod = by_name.get(name)
        if mod is None:
            continue  # built into this kernel
        stack = [mod]
        while stack:
            m = stack.pop()
            if m in seen:
                continue
            seen.add(m)
            want.append(m)
            stack.extend(deps.get(m, []))
    lines = [f"{m}: {' '.join(deps[m])}" for m in sorted(want)]
    return sorted(want), lines


def _copy_file(src, dst: Path):
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    shutil.copy2(os.path.realpath(src), dst)


def _in_usr(path: str) -> str:
    """The merged-/usr location of a host path, relative to the rootfs."""
    p = path.lstrip("/")
    for top in ("lib/", "lib64/", "bin/", "sbin/"):
        if p.startswith(top):
            return "usr/" + p
    return p


def _inputs_stamp(binaries, kernels, extra_libs):
    h = {"builder": BUILDER_VERSION, "binaries": [], "kernels": [], "extra": sorted(extra_libs)}
    for path in [p for p, _ in binaries] + [BUSYBOX]:
        st = os.stat(path)
        h["binaries"].append([path, st.st_size, int(st.st_mtime)])
    for k in kernels:
        h["kernels"].append([k.flavour, k.version, str(k.modules_dir)])
    return json.dumps(h, sort_keys=True)


def build_rootfs(cache: Path, kernels, repo: Path, keeperd=None):
    """Build (or reuse) the rootfs directory; always refresh its /usr/share/kvl from this checkout."""
    root = cache / "rootfs"
    binaries = []
    for cmd, dest in LAB_BINARIES + OPTIONAL_BINARIES:
        path = shutil.which(cmd)
        if path is None:
            if (cmd, dest) in OPTIONAL_BINARIES:
                continue
            raise HarnessError(f"{cmd} not found on the host")
        binaries.append((os.path.realpath(path), dest))
    # keeperd is mounted/appended per run, but the libraries it needs must be in the rootfs.
    extra_libs = set(_ldd_closure(keeperd)) if keeperd else set()
    stamp = _inputs_stamp(binaries, kernels, extra_libs)
    stamp_file = cache / "rootfs.stamp"
    if not (root.is_dir() and stamp_file.exists() and stamp_file.read_text() == stamp):
        log("building the VM root file system from host binaries")
        tmp = cache / "rootfs.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        _populate_rootfs(tmp, binaries, kernels, extra_libs)
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
        stamp_file.write_text(stamp)
    sync_guest_files(root, repo)
    return root


def _populate_rootfs(root: Path, binaries, kernels, extra_libs):
    for d in ("usr/bin", "usr/sbin", f"usr/lib/{MULTIARCH}", "usr/lib64", "usr/share/kvl", "proc", "sys", "dev",
              "run", "tmp", "var", "etc", "root", "srv", "opt", "mnt"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for link in ("bin", "sbin", "lib", "lib64"):
        os.symlink(f"usr/{link}", root / link)
    libs = set(extra_libs)
    for path, dest in binaries:
        _copy_file(path, root / dest / os.path.basename(path))
        libs.update(_ldd_closure(path))
    for lib in libs:
        _copy_file(lib, root / _in_usr(lib))
    _copy_file(BUSYBOX, root / "usr/bin/busybox")
    for lib in _ldd_closure(BUSYBOX):  # none for busybox-static; Debian's plain busybox is dynamic
        _copy_file(lib, root / _in_usr(lib))
    os.symlink("bash", root / "usr/bin/sh")
    os.symlink("/usr/share/kvl/systemctl", root / "usr/bin/systemctl")
    applets = run([BUSYBOX, "--list"], capture=True).stdout.split()
    for applet in applets:
        if applet in ("busybox", "[[", "linuxrc"):
            continue
        if not any((root / d / applet).exists() for d in ("usr/bin", "usr/sbin")):
            os.symlink("busybox", root / "usr/bin" / applet)
    for k in kernels:
        mods, dep_lines = _module_closure(k)
        dest = root / "usr/lib/modules" / k.version
        for m in mods:
            _copy_file(k.modules_dir / m, dest / m)
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "modules.dep").write_text("\n".join(dep_lines) + "\n")


def sync_guest_files(root: Path, repo: Path):
    """Copy vm-tests/guest and vm-tests/configs into the rootfs (UML sees the change at once over hostfs)."""
    dst = root / "usr/share/kvl"
    tmp = root / "usr/share/kvl.new"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(repo / "vm-tests/guest", tmp, symlinks=True)
    shutil.copytree(repo / "vm-tests/configs", tmp / "configs", symlinks=True)
    old = root / "usr/share/kvl.old"
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists():
        dst.rename(old)
    tmp.rename(dst)
    shutil.rmtree(old, ignore_errors=True)


def tree_digest(path: Path):
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        h.update(str(p.relative_to(path)).encode())
        if p.is_file() and not p.is_symlink():
            h.update(p.read_bytes())
    return h.hexdigest()


# --- initramfs (QEMU) ------------------------------------------------------------------------------------------


class Cpio:
    """A minimal writer for the kernel's initramfs format (SVR4 "newc", no compression needed)."""

    def __init__(self, fh):
        self.fh = fh
        self.ino = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join(
            f"{v:08x}"
            for v in (self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0)
        )
        self.ino += 1
        self.fh.write(hdr.encode() + name_b)
        self.fh.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
        self.fh.write(data)
        self.fh.write(b"\0" * ((4 - len(data) % 4) % 4))

    def add_tree(self, root: Path, prefix=""):
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, root)
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                rel = os.path.normpath(os.path.join(prefix, rel_dir, name))
                self.add_path(full, rel)

    def add_path(self, full, rel):
        st = os.lstat(full)
        if stat.S_ISLNK(st.st_mode):
            self._entry(rel, st.st_mode, os.readlink(full).encode())
        elif stat.S_ISDIR(st.st_mode):
            self._entry(rel, st.st_mode)
        elif stat.S_ISREG(st.st_mode):
            with open(full, "rb") as f:
                self._entry(rel, st.st_mode, f.read())

    def add_dir(self, rel, mode=0o755):
        self._entry(rel, stat.S_IFDIR | mode)

    def add_file(self, rel, data: bytes, mode=0o755):
        self._entry(rel, stat.S_IFREG | mode, data)

    def add_symlink(self, rel, target):
        self._entry(rel, stat.S_IFLNK | 0o777, target.encode())

    def add_chardev(self, rel, major, minor, mode=0o600):
        self._entry(rel, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)


def rootfs_initramfs(cache: Path, root: Path):
    """The rootfs as one uncompressed cpio (cached; rebuilt when the rootfs or its guest files change)."""
    out = cache / "rootfs.cpio"
    digest_file = cache / "rootfs.cpio.stamp"
    digest = (cache / "rootfs.stamp").read_text() + tree_digest(root / "usr/share/kvl")
    if out.exists() and digest_file.exists() and digest_file.read_text() == digest:
        return out
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        c = Cpio(fh)
        c.add_tree(root)
        c.add_chardev("dev/console", 5, 1)
        c.add_symlink("init", "usr/share/kvl/init")
        c.finish()
    tmp.rename(out)
    digest_file.write_text(digest)
    return out


def keeperd_initramfs(path: Path, keeperd):
    """A cpio segment with keeperd at /keeper-image/keeperd, appended to the rootfs initramfs.

    The binary is stripped of debug info first when `strip` is there: a debug build is ~90 MB, and all of it
    would sit in the VM's RAM."""
    binary = Path(keeperd)
    stripped = path.with_name("keeperd.stripped")
    if shutil.which("strip") and run(["strip", "--strip-debug", "-o", str(stripped), str(binary)],
                                     check=False, capture=True).returncode == 0:
        binary = stripped
    with open(path, "wb") as fh:
        c = Cpio(fh)
        c.add_dir("keeper-image")
        c.add_file("keeper-image/keeperd", binary.read_bytes())
        c.finish()
    stripped.unlink(missing_ok=True)
    return path
