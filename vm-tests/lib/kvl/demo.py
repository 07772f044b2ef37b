"""`vm-tests/run demo`: boot the lab and narrate a failover live, from the client's point of view."""

import threading
import time
from pathlib import Path

from . import driver
from .util import log

TICK = 0.4


def run(assets, backend, impl, work, keeperd, verbose):
    run_dir = work / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-demo-{impl}-{backend}"
    run_dir.mkdir(parents=True, exist_ok=True)
    lab = driver.Lab(assets, backend, impl, run_dir, keeperd=keeperd, verbose=verbose)
    try:
        lab.create()
        return Demo(lab).play()
    finally:
        lab.destroy()
        driver.drop_bulk(run_dir)


class Demo:
    def __init__(self, lab):
        self.lab = lab
        self.g = driver.scenario_globals(lab, [])
        common = Path(__file__).resolve().parents[2] / "scenarios/_common.py"
        exec(compile(common.read_text(), str(common), "exec"), self.g)
        self.t0 = time.monotonic()
        self.vip = self.g["VIP"]
        self.names = {}

    def say(self, text):
        print(f"\n>>> {text}", flush=True)

    def tick(self):
        """One client request plus who holds the VIP; prints one line; returns (answer, via, holders)."""
        g = self.g
        client = self.lab.by_name["client"]
        results = {}

        def ask_client():
            _, results["client"] = client.execute(
                f"{g['HTTP_GET_FN']}; kvl_get http://{self.vip}/ 1 2>/dev/null || echo -; "
                f"ip neigh show {self.vip} dev {g['IFACE']} | grep -o 'lladdr [0-9a-f:]*' || echo -",
                timeout=10,
            )

        def ask_holder(m):
            # Only a node whose agent is up can answer; a booting director holds nothing yet.
            if m.booted and m.ready.is_set():
                results[m.name] = m.execute(g["has_vip_cmd"](), timeout=10)[0] == 0

        threads = [threading.Thread(target=ask_client)] + [
            threading.Thread(target=ask_holder, args=(self.lab.by_name[n],)) for n in ("director", "backup")
        ]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        lines = results.get("client", "").split("\n")
        answer = lines[0].strip() if lines and lines[0].strip() not in ("", "-") else None
        mac = lines[1].replace("lladdr", "").strip() if len(lines) > 1 else "-"
        via = self.names.get(mac, "?")
        holders = [n for n in ("director", "backup") if results.get(n)]
        t = time.monotonic() - self.t0
        what = f"answered by {answer} (frames to {via})" if answer else "no answer within 1 s"
        print(f"  {t:6.1f} s  client -> {self.vip}: {what:36}  VIP held by: {', '.join(holders) or 'nobody'}",
              flush=True)
        time.sleep(TICK)
        return answer, via, holders

    def until(self, done, limit):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if done(*self.tick()):
                return True
        return False

    def play(self):
        lab, g = self.lab, self.g
        director, backup = lab.by_name["director"], lab.by_name["backup"]
        print(f"keeper VM lab demo: {lab.impl} on {lab.backend.name}; VIP {self.vip}, "
              "director .11 (priority 100), backup .12 (priority 50), rs1 .21, rs2 .22, client .31")
        self.say("booting 5 VMs on one private L2 segment")
        t = time.monotonic()
        lab.start_all()
        print(f"  all nodes answer after {time.monotonic() - t:.1f} s")
        self.names = {g["mac_of"](director): "director", g["mac_of"](backup): "backup"}
        self.say(f"waiting for {lab.impl} to elect a master (VRRP: a MASTER starts as BACKUP for 3 adverts)")
        try:
            g["wait_vip"](director, 30)
        except Exception:  # noqa: BLE001 - told to the user, not a crash of the demo
            print(f"  the VIP did not appear on the director within 30 s: {lab.impl} holds no VIP here")
            return 1
        print(f"  director holds the VIP after {time.monotonic() - t:.1f} s")
        g["start_probe"]("demo")

        self.say("steady state: the director spreads the client's requests over rs1 and rs2 (LVS-DR, round robin)")
        for _ in range(6):
            self.tick()

        self.say("the director crashes (power cut, no goodbye)")
        t_crash = g["mark"]("demo", "crash")
        director.crash()
        ok = self.until(lambda a, via, h: a and via == "backup", 30)
        t_taken = g["mark"]("demo", "taken")
        print("  the backup took over" if ok else "  the backup did not take over within 30 s")
        for _ in range(3):
            self.tick()

        self.say("the director boots again; with the higher priority it takes the VIP back (preemption)")
        t_back = g["mark"]("demo", "return")
        director.start()
        ok = self.until(lambda a, via, h: a and via == "director" and h == ["director"], 60) and ok
        t_returned = g["mark"]("demo", "returned")
        for _ in range(3):
            self.tick()

        reqs, _ = g["stop_probe"]("demo")
        crash = g["outage_after"]([r for r in reqs if r[1] <= t_back], t_crash, t_taken, quiet=True)
        back = g["outage_after"](reqs, t_back, t_returned, quiet=True)
        self.say("what the client saw (a request every 0.1 s in the background, client clock)")
        print(f"  director crash:  {crash.gap:.2f} s without an answer "
              f"(RFC 5798 master-down interval for the backup: {g['BACKUP_TAKEOVER']:.2f} s)")
        print(f"  director return: {back.gap:.2f} s largest gap between answers")
        print(f"  requests: {sum(1 for r in reqs if r[2] == 0)} answered, {sum(1 for r in reqs if r[2] != 0)} failed")
        log(f"demo done; logs in {lab.run_dir}", quiet=True)
        return 0 if ok else 1
