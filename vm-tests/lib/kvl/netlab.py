"""The lab's L2 segment: a network namespace owned by this run (kvl-<pid>) holding a bridge and one tap per VM.

Nothing here touches the host's own interfaces: the taps and the bridge live only inside the namespace, which
has no route anywhere, and deleting the namespace at the end removes all of them.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

from .util import log, run

PREFIX = "kvl-"
BRIDGE = "kvl-br0"


# Runs beside the harness in its own session and holds the read end of a pipe from it: when the harness goes
# away in any way (even SIGKILL), the pipe reaches EOF and this removes whatever is left in the namespace: every
# process in it (VMs and their helpers, all started by that harness) and the namespace with its bridge and taps.
WATCHDOG = r"""
import os, signal, subprocess, sys
ns = sys.argv[1]
sys.stdin.buffer.read()
pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
for p in pids:
    try:
        os.kill(int(p), signal.SIGKILL)
    except (OSError, ValueError):
        pass
subprocess.run(["ip", "netns", "del", ns], capture_output=True)
"""


class LabNet:
    def __init__(self):
        self.ns = f"{PREFIX}{os.getpid()}"
        self.created = False
        self.watchdog = None

    def create(self):
        reap_stale()
        run(["ip", "netns", "add", self.ns])
        self.created = True
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, self.ns],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.ip("link", "set", "lo", "up")
        # No STP and no forwarding delay: a tap joins (and rejoins after unblock) the segment at once.
        self.ip("link", "add", BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        self.ip("link", "set", BRIDGE, "up")

    def ip(self, *args, check=True):
        return run(["ip", "-n", self.ns, *args], check=check, capture=True)

    def add_tap(self, name):
        self.ip("tuntap", "add", "dev", name, "mode", "tap")
        self.ip("link", "set", name, "master", BRIDGE)
        self.ip("link", "set", name, "up")

    def cut(self, tap):
        """Unplug a VM: take its tap out of the bridge (a UML NIC never recovers from its tap going down)."""
        self.ip("link", "set", tap, "nomaster")

    def heal(self, tap):
        self.ip("link", "set", tap, "master", BRIDGE)
        self.ip("link", "set", tap, "up")

    def exec_prefix(self):
        return ["ip", "netns", "exec", self.ns]

    def destroy(self):
        if self.created:
            run(["ip", "netns", "del", self.ns], check=False, capture=True)
            self.created = False
        if self.watchdog is not None:
            self.watchdog.stdin.close()
            try:
                self.watchdog.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.watchdog.kill()
            self.watchdog = None


def reap_stale():
    """Delete kvl-<pid> namespaces left by runs of this harness that no longer exist (killed with SIGKILL)."""
    res = run(["ip", "netns", "list"], check=False, capture=True)
    for line in res.stdout.splitlines():
        m = re.match(rf"({PREFIX}(\d+))\b", line)
        if not m:
            continue
        pid = int(m.group(2))
        cmdline = Path(f"/proc/{pid}/cmdline")
        try:
            alive = b"vm-tests" in cmdline.read_bytes()
        except OSError:
            alive = False
        if not alive:
            # Every process in that namespace is a VM an earlier run of this harness started (and never reaped
            # because it was killed with SIGKILL): stop them before removing the namespace.
            log(f"removing stale namespace {m.group(1)} (its harness process is gone)")
            pids = run(["ip", "netns", "pids", m.group(1)], check=False, capture=True).stdout.split()
            for p in pids:
                try:
                    os.kill(int(p), 9)
                except (OSError, ValueError):
                    pass
            run(["ip", "netns", "del", m.group(1)], check=False, capture=True)
