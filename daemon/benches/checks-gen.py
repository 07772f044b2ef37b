#!/usr/bin/env python3
"""Writes the checker benchmark's configurations into DIR: SERVICES virtual servers x REALS real
servers (DR, wrr), every real server checked every second, once by TCP (`tcp-*`) and once by
HTTP GET of / expecting 200 (`http-*`), for keeperd (TOML) and keepalived. The real servers'
addresses are 10.100.0.0/16 (the VM routes that prefix locally to one listener on port 80).

usage: checks-gen.py DIR [SERVICES [REALS]]
"""
import sys
from pathlib import Path

out = Path(sys.argv[1])
services = int(sys.argv[2]) if len(sys.argv) > 2 else 100
reals = int(sys.argv[3]) if len(sys.argv) > 3 else 100
assert services * reals <= 65000, "10.100.0.0/16 holds the real servers"


def vip(s):
    return f"10.{10 + s // 250}.{s % 250}.1"


def rip(s, r):
    n = s * reals + r + 1
    return f"10.100.{n // 256}.{n % 256}"


def keeper(kind):
    lines = ['[global]', 'control_socket = "/run/keeper/keeper.sock"', '']
    for s in range(services):
        lines += [f'[virtual_server.vs{s}]', f'ip = "{vip(s)}"', 'port = 80', 'lb_algo = "wrr"',
                  'lb_kind = "DR"', 'protocol = "TCP"', 'delay_loop = 1']
        for r in range(reals):
            lines += [f'[virtual_server.vs{s}.real_server.rs{r}]', f'ip = "{rip(s, r)}"', 'port = 80',
                      'weight = 1']
            if kind == "tcp":
                lines.append('tcp_check = { connect_timeout = 3 }')
            else:
                lines.append('http_get = { connect_timeout = 3, url.root = { path = "/", status_code = 200 } }')
    return "\n".join(lines) + "\n"


def keepalived(kind):
    lines = ['global_defs {', '  router_id bench', '}']
    for s in range(services):
        lines += [f'virtual_server {vip(s)} 80 {{', '  delay_loop 1', '  lb_algo wrr', '  lb_kind DR',
                  '  protocol TCP']
        for r in range(reals):
            lines.append(f'  real_server {rip(s, r)} 80 {{')
            lines.append('    weight 1')
            if kind == "tcp":
                lines.append('    TCP_CHECK { connect_timeout 3 }')
            else:
                lines.append('    HTTP_GET { url { path / status_code 200 } connect_timeout 3 }')
            lines.append('  }')
        lines.append('}')
    return "\n".join(lines) + "\n"


out.mkdir(parents=True, exist_ok=True)
for kind in ("tcp", "http"):
    (out / f"keeper-{kind}.toml").write_text(keeper(kind))
    (out / f"keepalived-{kind}.conf").write_text(keepalived(kind))
# /proc/net/ip_vs lines when every real server is in the table: a header of 3, then each service.
(out / "lines").write_text(f"{3 + services + services * reals}\n")
