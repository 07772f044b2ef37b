"""`vm-tests/run selftest`: the harness's own pure parts, without VMs: the outage arithmetic every timing assertion
rests on, and the initramfs writer (checked by busybox cpio reading its output back)."""

import io
import subprocess
import tempfile
import unittest
from pathlib import Path

from . import assets

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


def common_globals():
    """_common.py's helpers, with placeholder nodes (only the pure helpers are called here)."""
    g = {"lab": {"iface": "eth0", "vip": "10.77.0.100", "unit": "keepalived", "advert_int": 1.0,
                 "priority": {"director": 100, "backup": 50}}}
    for name in ("director", "backup", "rs1", "rs2", "client"):
        g[name] = object()
    exec(compile((SCENARIOS / "_common.py").read_text(), "_common.py", "exec"), g)
    return g


def probe(period, events):
    """Synthetic probe log: one request every `period` s from 0 to 10; events(t) -> (status, duration)."""
    reqs = []
    for i in range(int(round(10 / period))):
        t = round(i * period, 3)
        rc, dur = events(t)
        reqs.append((t, round(t + dur, 3), rc, "rs1" if rc == 0 else "-"))
    return reqs


class OutageArithmetic(unittest.TestCase):
    def setUp(self):
        self.g = common_globals()

    def test_rfc_intervals(self):
        self.assertAlmostEqual(self.g["BACKUP_TAKEOVER"], 3 + 206 / 256)
        self.assertAlmostEqual(self.g["SKEW_BACKUP"], 206 / 256)

    def test_outage_is_the_hole_around_the_event(self):
        # Service down from 3.0 to 6.5 s; requests then time out after 2 s.
        reqs = probe(0.1, lambda t: (0, 0.05) if t < 3.0 or t >= 6.5 else (143, 2.0))
        o = self.g["outage_after"](reqs, 2.9, settled=7.0, quiet=True)
        self.assertAlmostEqual(o.gap, 6.55 - 2.95, places=2)
        self.assertAlmostEqual(o.resolution, 0.1, places=2)

    def test_retransmitted_syn_does_not_hide_the_outage(self):
        # Down 3.0-6.5 s; a request started at 5.8 s succeeds by its SYN retransmission at 6.8 s.
        def ev(t):
            if t < 3.0 or t >= 6.5:
                return (0, 0.05)
            return (0, 1.0) if abs(t - 5.8) < 0.01 else (143, 2.0)

        o = self.g["outage_after"](probe(0.1, ev), 2.9, settled=7.0, quiet=True)
        self.assertGreater(o.gap, 3.4)

    def test_later_stall_after_settled_is_not_the_event(self):
        reqs = [r for r in probe(0.1, lambda t: (0, 0.05)) if not 8.0 < r[0] < 9.5]
        self.assertAlmostEqual(self.g["outage_after"](reqs, 2.0, settled=4.0, quiet=True).gap, 0.1, places=2)
        self.assertGreater(self.g["outage_after"](reqs, 2.0, quiet=True).gap, 1.4)

    def test_starved_probe_widens_the_limit_by_its_lag_only(self):
        reqs = probe(0.5, lambda t: (0, 0.05))
        o = self.g["outage_after"](reqs, 2.0, settled=4.0, quiet=True)
        self.assertAlmostEqual(o.resolution, 0.5, places=2)
        self.g["check_outage"]("lagging", o, 0.2)  # 0.5 s gaps, limit 0.2 + 0.4 lag
        with self.assertRaises(AssertionError):
            self.g["check_outage"]("too long", self.g["Outage"](1.0, 0, [], 0.1), 0.5)

    def test_no_answer_again_fails(self):
        reqs = probe(0.1, lambda t: (0, 0.05) if t < 3 else (143, 2.0))
        with self.assertRaises(AssertionError):
            self.g["outage_after"](reqs, 3.0, quiet=True)


class Initramfs(unittest.TestCase):
    def test_busybox_reads_back_what_the_writer_wrote(self):
        with tempfile.TemporaryDirectory() as d:
            root = Path(d) / "tree"
            (root / "usr/bin").mkdir(parents=True)
            (root / "usr/bin/tool").write_bytes(b"#!/bin/sh\necho hi\n")
            (root / "bin").symlink_to("usr/bin")
            buf = io.BytesIO()
            c = assets.Cpio(buf)
            c.add_tree(root)
            c.add_chardev("dev/console", 5, 1)
            c.add_file("odd-size", b"12345")
            c.finish()
            out = subprocess.run([assets.BUSYBOX, "cpio", "-t", "-v"], input=buf.getvalue(), capture_output=True)
            listing = out.stdout.decode()
            self.assertEqual(out.returncode, 0, out.stderr)
            for name in ("usr/bin/tool", "bin -> usr/bin", "dev/console", "odd-size"):
                self.assertIn(name, listing)
            self.assertRegex(listing, r"crw-------.*dev/console")


def run():
    suite = unittest.defaultTestLoader.loadTestsFromModule(__import__(__name__, fromlist=["*"]))
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    return 0 if result.wasSuccessful() else 1
