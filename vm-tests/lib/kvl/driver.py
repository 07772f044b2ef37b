"""The lab: five VMs on one segment, the scenario runner, and clean-up that happens whatever goes wrong."""

import contextlib
import os
import shutil
import signal
import threading
import time
import traceback
from pathlib import Path

from . import assets
from .machine import Machine, QemuBackend, UmlBackend
from .netlab import LabNet
from .util import log, set_log_file

# name, role, host number (10.77.0.N, fd77::N, MAC 02:77:00:00:00:N)
NODES = [
    ("director", "director", 11),
    ("backup", "backup", 12),
    ("rs1", "rs", 21),
    ("rs2", "rs", 22),
    ("client", "client", 31),
]
VIP = "10.77.0.100"
VIP6 = "fd77::100"
UNITS = {"keepalived": "keepalived", "keeperd": "keeper"}
# keeperd programs IPVS itself (virtual servers, checks, sync daemon). When false, the lab programs the directors'
# IPVS for keeperd with ipvsadm and scenarios 01, 05, 08 do not apply (lab["ipvs_by_lab"]).
KEEPERD_PROGRAMS_IPVS = True


class Interrupted(BaseException):
    """SIGTERM/SIGHUP: unwind like Ctrl-C so every VM, tap and the namespace are removed."""


def _raise_interrupted(signum, _frame):
    raise Interrupted(f"signal {signum}")


def install_signal_handlers():
    # Ctrl-C must reach the clean-up even when the harness was started with SIGINT ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _raise_interrupted)


class Assets:
    """Kernels, rootfs and initramfs, prepared once per harness invocation and shared by every lab."""

    def __init__(self, repo: Path, work: Path):
        self.repo = repo
        self.work = work
        self.cache = work / "cache"
        self.cache.mkdir(parents=True, exist_ok=True)
        self.kernels = {}
        self.rootfs = None
        self.initrd_base = None
        self.uml_shim = None

    def prepare(self, backends, keeperd):
        cmds = ["busybox", "keepalived", "ipvsadm", "ip", "curl"]
        if "uml" in backends:
            cmds += ["linux.uml", "cc"]
        if "qemu" in backends:
            cmds += ["qemu-system-x86_64", "strip"]
        assets.ensure_host_packages(cmds)
        # Every kernel at hand contributes its modules to the one rootfs, so a UML-only run and a QEMU run do not
        # rebuild it back and forth.
        if "uml" in backends or shutil.which("linux.uml"):
            self.kernels["uml"] = assets.uml_kernel()
        if "qemu" in backends:
            self.kernels["qemu"] = assets.qemu_kernel(self.cache)
        else:
            self.kernels["qemu"] = assets.cached_qemu_kernel(self.cache)
        if "uml" in backends:
            self.uml_shim = assets.uml_xstate_shim(self.cache)
        kernels = [k for k in self.kernels.values() if k is not None]
        self.rootfs = assets.build_rootfs(self.cache, kernels, self.repo, keeperd)
        if "qemu" in backends:
            self.initrd_base = assets.rootfs_initramfs(self.cache, self.rootfs)


class Lab:
    def __init__(self, assets_, backend, impl, run_dir: Path, keeperd=None, verbose=False, mem_mb=128):
        self.assets = assets_
        self.impl = impl
        # Until keeperd programs IPVS itself, the lab does it for keeperd's directors (see guest/boot).
        self.ipvs_by_lab = impl == "keeperd" and not KEEPERD_PROGRAMS_IPVS
        self.keeperd = keeperd
        self.run_dir = run_dir
        self.verbose = verbose
        self.mem_mb = mem_mb
        self.net = LabNet()
        self.machines = [Machine(self, n, r, h) for n, r, h in NODES]
        self.by_name = {m.name: m for m in self.machines}
        if backend == "uml":
            self.backend = UmlBackend(self, assets_.kernels["uml"], assets_.rootfs)
        else:
            initrd = assets_.initrd_base
            if impl == "keeperd":
                seg = assets.keeperd_initramfs(run_dir / "keeperd.cpio", keeperd)
                initrd = run_dir / "initrd.cpio"
                with open(initrd, "wb") as out:
                    for part in (assets_.initrd_base, seg):
                        with open(part, "rb") as f:
                            shutil.copyfileobj(f, out, 1 << 20)
            self.backend = QemuBackend(self, assets_.kernels["qemu"], initrd)

    def facts(self):
        """The `lab` dict scenarios read (the Nix tests define the same keys)."""
        return {
            "impl": self.impl,
            "unit": UNITS[self.impl],
            "backend": self.backend.name,
            "iface": "eth0",
            "block_keeps_carrier": True,
            "ipvs_by_lab": self.ipvs_by_lab,
            "vip": VIP,
            "vip6": VIP6,
            "ip": {m.name: m.ip for m in self.machines},
            "ip6": {m.name: m.ip6 for m in self.machines},
            "http_port": 80,
            "http_unit": "httpd",
            "echo_port": 9000,
            "echo_unit": "tcp-echo",
            "advert_int": 1.0,
            "priority": {"director": 100, "backup": 50},
            # Checker timing of the configs (delay_loop, connect_timeout, retry, delay_before_retry).
            "checker": {"delay_loop": 2, "connect_timeout": 1, "retry": 1, "delay_before_retry": 1},
            # Scale for deadlines (not for the timing assertions): TCG emulation is slower than UML.
            "slow": 3 if self.backend.name == "qemu" else 1,
        }

    def kernel_params(self, m):
        p = [
            f"kvl.node={m.name}",
            f"kvl.role={m.role}",
            f"kvl.ip={m.ip}",
            f"kvl.ip6={m.ip6}",
            f"kvl.vip={VIP}",
            f"kvl.vip6={VIP6}",
            f"kvl.impl={self.impl}",
            f"kvl.backend={self.backend.name}",
        ]
        if self.impl == "keeperd" and self.backend.name == "uml":
            p.append(f"kvl.keeper_hostdir={Path(self.keeperd).parent}")
        if self.ipvs_by_lab:
            p.append("kvl.ipvs_by_lab=1")
            p.append("kvl.rs_ips=" + ",".join(m.ip for m in self.machines if m.role == "rs"))
        return p

    def create(self):
        self.net.create()
        for m in self.machines:
            self.net.add_tap(m.tap)

    def start_all(self):
        for m in self.machines:
            m.start()
        for m in self.machines:
            m.connect()

    def destroy(self):
        for m in self.machines:
            with contextlib.suppress(Exception):
                m.release()
        self.net.destroy()

    def collect_diagnostics(self):
        """On failure: what each running node knows, saved next to the console logs."""
        cmd = ("set +e; echo '## units'; for u in $(cat /etc/kvl/enabled 2>/dev/null); do systemctl status $u; done; "
               "echo '## addresses'; ip addr; echo '## neighbours'; ip neigh; "
               "echo '## ipvs'; ipvsadm -Ln --stats 2>&1; ipvsadm -Lnc 2>&1; "
               "echo '## logs'; for f in /var/log/*.log; do echo \"# $f\"; tail -n 200 $f; done; "
               "echo '## dmesg'; dmesg | tail -n 80")
        for m in self.machines:
            if not m.is_up() or m.process is None or m.process.poll() is not None:
                continue
            try:
                _, out = m.execute(cmd, timeout=30)
            except Exception as e:  # noqa: BLE001 - diagnostics are best effort
                out = f"(diagnostics failed: {e})"
            (self.run_dir / f"{m.name}.diag.txt").write_text(out)


class Subtest:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        log(f"subtest: {self.name}")
        self.t = time.monotonic()

    def __exit__(self, *exc):
        log(f"subtest done: {self.name} ({time.monotonic() - self.t:.1f} s)")
        return False


def scenario_globals(lab: Lab, out_lines):
    def tee_print(*args, **kw):
        text = " ".join(str(a) for a in args)
        out_lines.append(text)
        log(text)

    g = {
        "__name__": "__kvl_scenario__",
        "start_all": lab.start_all,
        "join_all": lambda: None,
        "machines": lab.machines,
        "lab": lab.facts(),
        "subtest": Subtest,
        "print": tee_print,
    }
    g.update(lab.by_name)
    return g


def run_scenario(path: Path, assets_, backend, impl, work: Path, keeperd=None, verbose=False, keep=False,
                 time_limit=None):
    """Boot a fresh lab, run one scenario file, tear the lab down. Returns (ok, seconds, run_dir)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = work / "runs" / f"{stamp}-{impl}-{backend}-{path.stem}"
    run_dir.mkdir(parents=True, exist_ok=True)
    logf = open(run_dir / "harness.log", "w")
    set_log_file(logf)
    lab = Lab(assets_, backend, impl, run_dir, keeperd=keeperd, verbose=verbose)
    limit = time_limit or (300 if backend == "uml" else 900)
    watchdog = threading.Timer(limit, _watchdog_fire, args=(lab, limit))
    watchdog.daemon = True
    t0 = time.monotonic()
    ok = False
    out_lines = []
    try:
        lab.create()
        watchdog.start()
        g = scenario_globals(lab, out_lines)
        common = path.parent / "_common.py"
        if common.exists():
            exec(compile(common.read_text(), str(common), "exec"), g)
        exec(compile(path.read_text(), str(path), "exec"), g)
        ok = True
    except Interrupted:
        log("interrupted")
        raise
    except KeyboardInterrupt:
        log("interrupted (Ctrl-C)")
        raise
    except Exception:  # noqa: BLE001 - a scenario failure of any kind is reported, never fatal to the run
        log("scenario failed:\n" + traceback.format_exc().rstrip())
        with contextlib.suppress(Exception):
            lab.collect_diagnostics()
    finally:
        watchdog.cancel()
        lab.destroy()
        set_log_file(None)
        logf.close()
    secs = time.monotonic() - t0
    if ok and not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        drop_bulk(run_dir)
    return ok, secs, run_dir, out_lines


def drop_bulk(run_dir: Path):
    """What a kept run directory does not need: initramfs images, sockets, UML's per-VM state."""
    for p in list(run_dir.glob("*.cpio")) + list(run_dir.glob("*.sock")):
        p.unlink(missing_ok=True)
    shutil.rmtree(run_dir / "uml", ignore_errors=True)


def prune_runs(work: Path, keep=30):
    """Keep the newest `keep` run directories (logs of failed runs accumulate otherwise)."""
    runs = sorted((work / "runs").glob("*"), key=lambda p: p.stat().st_mtime) if (work / "runs").is_dir() else []
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def _watchdog_fire(lab, limit):
    log(f"scenario time limit ({limit} s) reached: killing the lab")
    for m in lab.machines:
        with contextlib.suppress(Exception):
            m.release()


def find_keeperd(repo: Path):
    target = Path(os.environ.get("CARGO_TARGET_DIR", repo / "target"))
    found = [p for p in (target / "release/keeperd", target / "debug/keeperd") if p.is_file()]
    if not found:
        return None
    return max(found, key=lambda p: p.stat().st_mtime)
