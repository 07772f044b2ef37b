#!/usr/bin/env python3
"""Spurious-failover soak: a master and a backup at 10 ms VRRPv3 adverts while `stress-ng --cpu N`
loads the machine, for M minutes. Counts the backup's false takeovers (the master never fails),
for keeperd (with vrrp_rt_priority / vrrp_no_swap) and keepalived (same settings), one after the
other in the same namespace lab.

Root only; namespaces prefixed kfs<pid>, removed at exit.
Usage: daemon/benches/soak.py [--minutes 10] [--cpu 2] [--advert 0.01] [--impl keeperd,keepalived]
"""

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import failover as fb  # noqa: E402  (the same lab and daemon launchers)

fb.P = f"kfs{os.getpid()}"


def keeperd_conf(work, node, prio, adv, rt):
    text = (f'[global]\ncontrol_socket = "{work}/{node}.sock"\nvrrp_version = 3\n'
            f'vrrp_rt_priority = {rt}\nvrrp_no_swap = true\n'
            f'[vrrp_instance.VI_1]\ninterface = "eth0"\nvirtual_router_id = 51\npriority = {prio}\n'
            f'advert_int = {adv}\nvirtual_ipaddress = ["{fb.VIP}/24 dev eth0"]\n')
    path = os.path.join(work, f"{node}.toml")
    with open(path, "w") as f:
        f.write(text)
    return [os.path.join(fb.TOP, "target/release/keeperd"), "--config", path]


def keepalived_conf(work, node, prio, adv, rt):
    text = (f"global_defs {{\n  vrrp_version 3\n  vrrp_rt_priority {rt}\n  vrrp_no_swap\n}}\n"
            f"vrrp_instance VI_1 {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n"
            f"  priority {prio}\n  advert_int {adv}\n  virtual_ipaddress {{\n    {fb.VIP}/24 dev eth0\n  }}\n}}\n")
    path = os.path.join(work, f"{node}.conf")
    with open(path, "w") as f:
        f.write(text)
    n = f"{work}/{node}-{time.monotonic_ns()}"
    return ["keepalived", "-n", "-l", "-D", "-P", "-f", path, "-p", n + ".pid", "-r", n + "-vrrp.pid",
            "-c", n + "-chk.pid", "-b", n + "-bfd.pid"]


def count_takeovers(log_path, impl):
    with open(log_path, errors="replace") as f:
        text = f.read()
    if impl == "keeperd":
        return text.count("-> master")
    return text.count("Entering MASTER STATE")


def soak(impl, minutes, cpu, adv, rt, work):
    conf = keeperd_conf if impl == "keeperd" else keepalived_conf
    logs = {n: open(os.path.join(work, f"{impl}-{n}.log"), "w") for n in ("a", "b")}
    a = fb.Daemon("a", conf(work, "a", 100, adv, rt), logs["a"])
    if not fb.wait(lambda: fb.holds_vip("a"), 10):
        raise RuntimeError(f"{impl}: a did not become master")
    b = fb.Daemon("b", conf(work, "b", 50, adv, rt), logs["b"])
    time.sleep(2)  # b settles as backup
    before = count_takeovers(logs["b"].name, impl)
    stress = subprocess.Popen(["stress-ng", "--cpu", str(cpu), "--timeout", f"{int(minutes * 60)}s", "--quiet"],
                              start_new_session=True)
    t0 = time.monotonic()
    stress.wait()
    elapsed = time.monotonic() - t0
    for f in logs.values():
        f.flush()
    false = count_takeovers(logs["b"].name, impl) - before
    for d in (a, b):
        d.signal(signal.SIGKILL)
        d.wait()
    for node in ("a", "b"):
        fb.kill_daemons(node)
        fb.sh("ip", "-n", fb.ns(node), "addr", "del", f"{fb.VIP}/24", "dev", "eth0", check=False)
    return false, elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--cpu", type=int, default=2)
    ap.add_argument("--advert", type=float, default=0.01)
    ap.add_argument("--rt", type=int, default=50)
    ap.add_argument("--impl", default="keeperd,keepalived")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    subprocess.run(["cargo", "build", "--release", "-q", "--bin", "keeperd"], cwd=fb.TOP, check=True)
    work = tempfile.mkdtemp(prefix="keeper-soak-")
    rows = []
    try:
        fb.setup()
        for impl in args.impl.split(","):
            false, elapsed = soak(impl, args.minutes, args.cpu, args.advert, args.rt, work)
            row = f"| {impl} | {args.advert * 1000:.0f} ms v3 | stress-ng --cpu {args.cpu} | {elapsed / 60:.1f} min | {args.rt} | {false} |"
            rows.append(row)
            print(row, flush=True)
    finally:
        fb.teardown()
    print("\n| implementation | adverts | load | duration | vrrp_rt_priority | false takeovers by the backup |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(r)
    print(f"\nlogs: {work}")


if __name__ == "__main__":
    main()
