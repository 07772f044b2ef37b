#!/usr/bin/env python3
"""Writes the IPVS benchmark's configurations into DIR: SERVICES virtual servers x REALS real
servers (DR, wrr, no checkers), for keeperd (TOML) and keepalived, each in a cold version and a
reload version that changes one real server's weight; and reload.line, the /proc/net/ip_vs line
fragment that shows the change.

usage: ipvs-gen.py DIR [SERVICES [REALS]]
"""
import sys
from pathlib import Path

out = Path(sys.argv[1])
services = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
reals = int(sys.argv[3]) if len(sys.argv) > 3 else 10
CHANGED = (services // 2, reals // 2)  # (service, real server) whose weight changes
NEW_WEIGHT = 60


def vip(s):
    return f"10.{10 + s // 250}.{s % 250}.1"


def rip(s, r):
    # DR: a real server listens on the virtual server's port (keepalived resets other ports).
    return f"10.{100 + s // 250}.{s % 250}.{10 + r}"


def weight(s, r, reload):
    return NEW_WEIGHT if reload and (s, r) == CHANGED else r + 1


def keeper(reload):
    lines = ['[global]', 'control_socket = "/run/keeper/keeper.sock"', '']
    for s in range(services):
        lines += [f'[virtual_server.vs{s}]', f'ip = "{vip(s)}"', 'port = 80', 'lb_algo = "wrr"',
                  'lb_kind = "DR"']
        for r in range(reals):
            lines += [f'[virtual_server.vs{s}.real_server.rs{r}]', f'ip = "{rip(s, r)}"',
                      f'weight = {weight(s, r, reload)}']
    return "\n".join(lines) + "\n"


def keepalived(reload):
    lines = ['global_defs {', '  router_id bench', '}']
    for s in range(services):
        lines += [f'virtual_server {vip(s)} 80 {{', '  lb_algo wrr', '  lb_kind DR', '  protocol TCP']
        for r in range(reals):
            lines.append(f'  real_server {rip(s, r)} 80 {{ weight {weight(s, r, reload)} }}')
        lines.append('}')
    return "\n".join(lines) + "\n"


out.mkdir(parents=True, exist_ok=True)
(out / "keeper-cold.toml").write_text(keeper(False))
(out / "keeper-reload.toml").write_text(keeper(True))
(out / "keepalived-cold.conf").write_text(keepalived(False))
(out / "keepalived-reload.conf").write_text(keepalived(True))
s, r = CHANGED
a, b, c, d = (int(x) for x in rip(s, r).split("."))
# /proc/net/ip_vs: "  -> %08X:%04X      %-7s %-6d ..."
(out / "reload.line").write_text(f"-> {a:02X}{b:02X}{c:02X}{d:02X}:0050      Route   {NEW_WEIGHT} ")
# The same change as ipvs-poll --dest arguments (read over netlink: see ipvs-poll.rs).
(out / "reload.dest").write_text(f"{vip(s)} 80 {rip(s, r)} {NEW_WEIGHT}\n")
(out / "lines").write_text(f"{3 + services + services * reals}\n")
