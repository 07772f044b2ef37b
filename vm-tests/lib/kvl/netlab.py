"""The lab's L2 segment: a network namespace owned by this run (kvl-<pid>) holding a bridge and one tap per VM.

Nothing here touches the host's own interfaces: the taps and the bridge live only inside the namespace, which
has no route anywhere, and deleting the namespace at the end removes all of them.
"""

import os
import re
from pathlib import Path

from .util import log, run

PREFIX = "kvl-"
BRIDGE = "br0"


class LabNet:
    def __init__(self):
        self.ns = f"{PREFIX}{os.getpid()}"
        self.created = False

    def create(self):
        reap_stale()
        run(["ip", "netns", "add", self.ns])
        self.created = True
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
