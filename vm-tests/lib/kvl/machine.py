"""Lab VMs with the NixOS test driver's Machine API (succeed, fail, execute, wait_until_succeeds, wait_for_unit,
block, crash, start, shutdown, systemctl, ...), on user-mode-linux or QEMU (TCG).

Commands travel over the VM's second serial line to the agent (vm-tests/guest/agent): one request line, one
response line, matched by id, each with a deadline on both sides. Every wait here is bounded.
"""

import base64
import contextlib
import ctypes
import os
import queue
import re
import select
import shlex
import signal
import socket
import subprocess
import threading
import time

from .util import Deadline, HarnessError, log

# NixOS's `succeed`/`fail` have no timeout by default; here every command has one.
DEFAULT_COMMAND_TIMEOUT = 300
POLL_INTERVAL = 0.25


class MachineDied(HarnessError):
    pass


def _die_with_harness():
    """preexec_fn for VM processes: SIGKILL to the VM's main process when the harness dies, even by SIGKILL.
    (UML's helper processes outlive it; the namespace watchdog in netlab.py removes those.)"""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Machine:
    def __init__(self, lab, name, role, host_no):
        self.lab = lab
        self.name = name
        self.role = role
        self.host_no = host_no
        self.ip = f"10.77.0.{host_no}"
        self.ip6 = f"fd77::{host_no}"
        self.mac = f"02:77:00:00:00:{host_no:02d}"
        self.tap = f"kvl-{name}"
        self.process = None
        self.chan = None
        self.reader = None
        self.responses = queue.Queue()
        self.ready = threading.Event()
        self.booted = False
        self.connected = False
        self.blocked = False
        self.boots = 0
        self.seq = 0
        self.lock = threading.Lock()

    def __repr__(self):
        return f"<Machine '{self.name}'>"

    # --- logging -------------------------------------------------------------------------------------------------

    def log(self, msg):
        log(f"{self.name}: {msg}", quiet=not self.lab.verbose)

    @contextlib.contextmanager
    def nested(self, msg, attrs=None):
        self.log(msg)
        t = time.monotonic()
        try:
            yield
        finally:
            self.log(f"({time.monotonic() - t:.2f} s) {msg}")

    # --- life cycle ----------------------------------------------------------------------------------------------

    def start(self, allow_reboot=False):
        """Start the VM (asynchronous, like the NixOS driver: commands wait for the agent)."""
        if self.booted:
            return
        self.boots += 1
        self.responses = queue.Queue()
        self.ready.clear()
        self.process, self.chan = self.lab.backend.launch(self)
        self.booted = True
        self.connected = False
        self.reader = threading.Thread(target=self._read_channel, args=(self.chan, self.responses), daemon=True)
        self.reader.start()
        self.log(f"started (pid {self.process.pid}, boot {self.boots})")

    def _read_channel(self, chan, responses):
        buf = b""
        while True:
            try:
                data = chan.recv(65536)
            except OSError:
                data = b""
            if not data:
                responses.put(None)
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace").strip("\r")
                idx = text.find("@@KVL ")
                if idx < 0:
                    continue  # tty echo before the agent set raw mode, or noise
                fields = text[idx:].split(" ")
                if len(fields) >= 2 and fields[1] == "READY":
                    self.ready.set()
                elif len(fields) == 5:
                    responses.put(fields[1:])

    def connect(self, timeout=None):
        if self.connected:
            return
        if not self.booted:
            self.start()
        limit = timeout or self.lab.backend.boot_timeout
        deadline = Deadline(limit)
        t = time.monotonic()
        while not self.ready.wait(min(0.5, deadline.left())):
            if self.process.poll() is not None:
                raise MachineDied(f"{self.name}: VM exited with {self.process.returncode} while booting "
                                  f"(console: {self.lab.backend.console_path(self)})")
            if deadline.expired():
                raise HarnessError(f"{self.name}: agent not ready after {limit} s "
                                   f"(console: {self.lab.backend.console_path(self)})")
        self.connected = True
        self.log(f"agent ready after {time.monotonic() - t:.2f} s")

    def is_up(self):
        return self.booted and self.connected

    def wait_for_shutdown(self, timeout=60):
        if not self.booted:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.log(f"did not power off within {timeout} s; killing it")
            self._kill()
        self._reaped()

    def _kill(self):
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=20)

    def _reaped(self):
        # UML leaves helper processes in its process group; make sure none survives the VM.
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.chan is not None:
            with contextlib.suppress(OSError):
                self.chan.close()
        self.chan = None
        self.booted = False
        self.connected = False

    def crash(self):
        """Simulate a sudden power failure: the VM process group gets SIGKILL (nothing runs in the guest)."""
        if not self.booted:
            return
        self.log("forced crash")
        self._kill()
        self._reaped()

    def shutdown(self):
        """Power the VM off from inside (services are stopped by init, as on a real host) and wait for it."""
        if not self.booted:
            return
        self.connect()
        self._send(f"REQ 0 30 {base64.b64encode(b'poweroff').decode()}\n")
        self.wait_for_shutdown(timeout=self.lab.backend.boot_timeout)

    def release(self):
        """Kill the VM at the end of a run, whatever state it is in."""
        if self.process is not None and self.process.poll() is None:
            self._kill()
        if self.process is not None:
            self._reaped()

    # --- network -------------------------------------------------------------------------------------------------

    def block(self):
        """Unplug the lab cable: the VM's tap leaves the bridge (the VM's own NIC stays up)."""
        self.log("block (tap leaves the bridge)")
        self.lab.net.cut(self.tap)
        self.blocked = True

    def unblock(self):
        self.log("unblock (tap rejoins the bridge)")
        self.lab.net.heal(self.tap)
        self.blocked = False

    # --- commands ------------------------------------------------------------------------------------------------

    def _send(self, text):
        if self.chan is None:
            raise MachineDied(f"{self.name}: not running")
        self.chan.sendall(text.encode())

    def execute(self, command, check_return=True, check_output=True, timeout=900):
        """Run a shell command (`set -euo pipefail`); return (status, stdout). stderr goes to the log."""
        self.connect()
        if timeout is None:
            timeout = DEFAULT_COMMAND_TIMEOUT
        timeout = max(1, int(timeout + 0.999))
        with self.lock:
            self.seq += 1
            rid = f"{self.boots}.{self.seq}"
            self._send(f"REQ {rid} {timeout} {base64.b64encode(command.encode()).decode()}\n")
            if not check_output:
                return (-2, "")
            deadline = Deadline(timeout + 10)
            while True:
                try:
                    resp = self.responses.get(timeout=max(0.05, deadline.left()))
                except queue.Empty:
                    raise HarnessError(f"{self.name}: no answer to `{command}` within {timeout + 10} s")
                if resp is None:
                    self.responses.put(None)
                    raise MachineDied(f"{self.name}: VM went away during `{command}`")
                if resp[0] == rid:
                    break
        status = int(resp[1])
        out = "" if resp[2] == "-" else base64.b64decode(resp[2]).decode(errors="replace")
        err = "" if resp[3] == "-" else base64.b64decode(resp[3]).decode(errors="replace")
        if self.lab.verbose or status != 0:
            self.log(f"$ {command}  -> {status}")
        if err.strip():
            self.log(f"stderr: {err.rstrip()}")
        if not check_return:
            return (-1, out)
        return (status, out)

    def succeed(self, *commands, timeout=None):
        output = ""
        for command in commands:
            status, out = self.execute(command, timeout=timeout)
            if status != 0:
                self.log(f"output: {out}")
                raise Exception(f"command `{command}` failed (exit code {status})")
            output += out
        return output

    def fail(self, *commands, timeout=None):
        output = ""
        for command in commands:
            status, out = self.execute(command, timeout=timeout)
            if status == 0:
                raise Exception(f"command `{command}` unexpectedly succeeded")
            output += out
        return output

    def _retry(self, what, fn, timeout):
        deadline = Deadline(timeout)
        while True:
            if fn(False):
                return
            if deadline.expired():
                break
            time.sleep(min(POLL_INTERVAL, deadline.left()))
        if not fn(True):
            raise Exception(f"{self.name}: {what}: timed out after {timeout} seconds")

    def wait_until_succeeds(self, command, timeout=900):
        output = ""

        def check(_last):
            nonlocal output
            status, output = self.execute(command, timeout=timeout)
            return status == 0

        self._retry(f"waiting for success: {command}", check, timeout)
        return output

    def wait_until_fails(self, command, timeout=900):
        output = ""

        def check(_last):
            nonlocal output
            status, output = self.execute(command, timeout=timeout)
            return status != 0

        self._retry(f"waiting for failure: {command}", check, timeout)
        return output

    def wait_for_file(self, filename, timeout=900):
        self._retry(f"waiting for file {filename}",
                    lambda _l: self.execute(f"test -e {shlex.quote(filename)}")[0] == 0, timeout)

    def wait_for_open_port(self, port, addr="localhost", timeout=900):
        # busybox nc has no -z: an immediate EOF on stdin makes it connect and close.
        cmd = f"nc -w 1 {addr} {port} </dev/null >/dev/null 2>&1"
        self._retry(f"waiting for TCP port {port} on {addr}", lambda _l: self.execute(cmd)[0] == 0, timeout)

    def wait_for_closed_port(self, port, addr="localhost", timeout=900):
        cmd = f"nc -w 1 {addr} {port} </dev/null >/dev/null 2>&1"
        self._retry(f"waiting for TCP port {port} on {addr} to close", lambda _l: self.execute(cmd)[0] != 0,
                    timeout)

    def sleep(self, secs):
        self.succeed(f"sleep {secs}")

    # --- units ---------------------------------------------------------------------------------------------------

    def systemctl(self, q, user=None):
        if user is not None:
            raise HarnessError("systemctl --user is not supported in the portable lab")
        return self.execute(f"systemctl {q}")

    def start_job(self, jobname, user=None):
        return self.systemctl(f"start {jobname}", user)

    def stop_job(self, jobname, user=None):
        return self.systemctl(f"stop {jobname}", user)

    def get_unit_info(self, unit, user=None):
        status, lines = self.systemctl(f'--no-pager show "{unit}"', user)
        if status != 0:
            raise Exception(f'retrieving systemctl info for unit "{unit}" failed with exit code {status}')
        return dict(m.groups() for m in (re.match(r"^([^=]+)=(.*)$", ln) for ln in lines.split("\n")) if m)

    def get_unit_property(self, unit, property, user=None):
        return self.get_unit_info(unit, user).get(property, "")

    def wait_for_unit(self, unit, user=None, timeout=900):
        """Wait until the unit is active; raise at once if it failed or went inactive (as NixOS does)."""

        def check(_last):
            state = self.get_unit_property(unit, "ActiveState", user)
            if state == "failed":
                raise Exception(f'unit "{unit}" reached state "{state}"')
            if state == "inactive":
                raise Exception(f'unit "{unit}" is inactive and there are no pending jobs')
            return state == "active"

        self._retry(f"waiting for unit {unit}", check, timeout)

    def require_unit_state(self, unit, require_state="active"):
        state = self.get_unit_property(unit, "ActiveState")
        if state != require_state:
            raise Exception(f"Expected unit '{unit}' to to be in state '{require_state}' but it is in state '{state}'")

    wait_for_job = wait_for_unit


# --- backends --------------------------------------------------------------------------------------------------


class UmlBackend:
    """user-mode-linux: the rootfs directory is the VM's root over hostfs (read-only)."""

    name = "uml"
    boot_timeout = 60

    def __init__(self, lab, kernel, rootfs):
        self.lab = lab
        self.kernel = kernel
        self.rootfs = rootfs

    def console_path(self, m):
        return self.lab.run_dir / f"{m.name}.console.{m.boots}.log"

    def launch(self, m):
        host_end, vm_end = socket.socketpair()
        uml_dir = self.lab.run_dir / "uml"
        uml_dir.mkdir(exist_ok=True)
        args = [
            str(self.kernel.image),
            f"mem={self.lab.mem_mb}M",
            f"umid=kvl-{os.getpid()}-{m.name}",
            f"uml_dir={uml_dir}",
            "root=/dev/root",
            "rootfstype=hostfs",
            f"rootflags={self.rootfs}",
            "ro",
            "init=/usr/share/kvl/init",
            f"vec0:transport=tap,ifname={m.tap},mac={m.mac}",
            "con=null",
            "ssl=null",
            "con0=null,fd:1",
            f"ssl1=fd:{vm_end.fileno()}",
            "console=tty0",
            "quiet",
            *self.lab.kernel_params(m),
        ]
        env = dict(os.environ)
        if self.lab.assets.uml_shim is not None:
            env["LD_PRELOAD"] = str(self.lab.assets.uml_shim)
        console = open(self.console_path(m), "wb")
        proc = subprocess.Popen(
            self.lab.net.exec_prefix() + args,
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            env=env,
            pass_fds=(vm_end.fileno(),),
            start_new_session=True,
            preexec_fn=_die_with_harness,
            cwd=self.lab.run_dir,
        )
        console.close()
        vm_end.close()
        return proc, host_end


class QemuBackend:
    """QEMU with software emulation (TCG) and Debian's cloud kernel; the rootfs is the initramfs."""

    name = "qemu"
    boot_timeout = 180

    def __init__(self, lab, kernel, initrd):
        self.lab = lab
        self.kernel = kernel
        self.initrd = initrd

    def console_path(self, m):
        return self.lab.run_dir / f"{m.name}.console.{m.boots}.log"

    def launch(self, m):
        sock_path = self.lab.run_dir / f"{m.name}.agent.sock"
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        # no_timer_check: the kernel's IO-APIC timer check misfires when an emulated CPU is starved by a busy
        # host ("MP-BIOS bug: 8254 timer not connected to IO-APIC") and its fallback path then hangs the boot.
        append = " ".join(["console=ttyS0", "quiet", "panic=-1", "no_timer_check", "rdinit=/usr/share/kvl/init",
                           *self.lab.kernel_params(m)])
        args = [
            "qemu-system-x86_64",
            "-nodefaults",
            "-accel", "tcg,tb-size=32",
            "-cpu", "max",
            "-smp", "1",
            # The initramfs is the root file system: room for its image and its unpacked copy, plus the node.
            "-m", f"{self.lab.mem_mb + 2 * (self.initrd.stat().st_size >> 20)}M",
            "-display", "none",
            "-no-reboot",
            "-kernel", str(self.kernel.image),
            "-initrd", str(self.initrd),
            "-append", append,
            "-chardev", f"file,id=con,path={self.console_path(m)}",
            "-serial", "chardev:con",
            "-chardev", f"socket,id=agent,path={sock_path},server=on,wait=off",
            "-serial", "chardev:agent",
            "-netdev", f"tap,id=n0,ifname={m.tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=n0,mac={m.mac}",
            "-monitor", "none",
        ]
        log_fh = open(self.lab.run_dir / f"{m.name}.qemu.log", "ab")
        proc = subprocess.Popen(
            self.lab.net.exec_prefix() + args,
            stdin=subprocess.DEVNULL,
            stdout=log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_harness,
            cwd=self.lab.run_dir,
        )
        log_fh.close()
        deadline = Deadline(30)
        while True:
            if proc.poll() is not None:
                raise HarnessError(f"{m.name}: qemu exited with {proc.returncode} "
                                   f"(see {self.lab.run_dir / (m.name + '.qemu.log')})")
            if sock_path.exists():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(str(sock_path))
                    return proc, s
                except OSError:
                    s.close()
            if deadline.expired():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                raise HarnessError(f"{m.name}: qemu agent socket did not appear")
            select.select([], [], [], 0.05)
