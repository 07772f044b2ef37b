"""`vm-tests/run shell`: boot the lab and type `NODE COMMAND` lines (or `py EXPR` with the scenario globals)."""

import sys
import time

from . import driver
from .util import log


def run(assets, backend, impl, work, keeperd, verbose):
    run_dir = work / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-shell"
    run_dir.mkdir(parents=True, exist_ok=True)
    lab = driver.Lab(assets, backend, impl, run_dir, keeperd=keeperd, verbose=verbose)
    try:
        lab.create()
        t = time.monotonic()
        lab.start_all()
        log(f"lab up in {time.monotonic() - t:.1f} s; logs in {run_dir}")
        g = driver.scenario_globals(lab, [])
        interactive = sys.stdin.isatty()
        while True:
            if interactive:
                print("kvl> ", end="", flush=True)
            line = sys.stdin.readline()
            if not line:
                break
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            node, _, cmd = line.partition(" ")
            try:
                if node == "py":
                    exec(cmd, g)
                elif node in lab.by_name:
                    t = time.monotonic()
                    rc, out = lab.by_name[node].execute(cmd, timeout=120)
                    print(out, end="" if out.endswith("\n") or not out else "\n")
                    print(f"[{node} rc={rc} {time.monotonic() - t:.2f}s]")
                else:
                    print(f"unknown node {node}")
            except Exception as e:  # noqa: BLE001 - interactive
                print(f"error: {e}")
    finally:
        lab.destroy()
        driver.drop_bulk(run_dir)
    return 0
