# Reload without flap: a configuration change deployed with switch-to-configuration (a real server's weight) reloads
# keeper (SIGHUP, same process), IPVS shows the new weight, the director keeps the VIP throughout and clients see no
# error.
# Then the environment file: rewritten unchanged, nothing happens; changed, keeper restarts and takes the VIP back.
# NixOS-only (it exercises the module's reload and restart triggers); reads `lab` from the vm-tests/nixos.nix preamble.
import time

vip = lab["vip"]
iface = lab["iface"]
unit = lab["unit"]
probe = lab["reload_probe"]


def main_pid():
    return director.succeed(f"systemctl show -p MainPID --value {unit}").strip()


def units_in(output, action):
    """The units switch-to-configuration lists after "<action> the following units:"."""
    for line in output.splitlines():
        if line.startswith(f"{action} the following units:"):
            return [u.strip() for u in line.split(":", 1)[1].split(",")]
    return []


def weight_is(weight):
    rs = probe["real_server"].replace(".", r"\.")
    return f"ipvsadm -Ln -t {probe['service']} | grep -Eq '{rs}\\s+\\w+\\s+{weight}\\s'"


def holds_vip(node):
    return node.execute(f"ip -o -4 addr show dev {iface} | grep -qw {vip}")[0] == 0


start_all()
for node in (director, backup):
    node.wait_for_unit(f"{unit}.service")
for rs in (rs1, rs2):
    rs.wait_for_unit("httpd.service")
director.wait_until_succeeds(f"ip -o -4 addr show dev {iface} | grep -qw {vip}", timeout=60)
client.wait_until_succeeds(f"curl -sf -m 2 http://{vip}/", timeout=60)

# Watch for a flap while switching: the backup's address changes, and the client's requests (one per 0.1 s, bounded).
backup.succeed(f"(timeout 40 ip -o monitor address dev {iface} > /tmp/addr-monitor.log 2>&1 &)")
client.succeed(
    f"(for i in $(seq 1 150); do curl -s -m 1 -o /dev/null -w '%{{http_code}}\\n' http://{vip}/; sleep 0.1; done"
    " > /tmp/probe.log 2>&1 &)"
)
pid_before = main_pid()
t0 = time.monotonic()
out = director.succeed(
    "/run/booted-system/specialisation/reload-probe/bin/switch-to-configuration test 2>&1"
)
print(out)
assert f"{unit}.service" in units_in(out, "reloading"), "keeper was not reloaded"
for action in ("stopping", "starting", "restarting"):
    assert f"{unit}.service" not in units_in(out, action), f"keeper was {action.replace('ing', 'ed')}"
director.wait_until_succeeds(weight_is(probe["weight"]), timeout=30)
print(f"reload applied in {time.monotonic() - t0:.2f} s")
assert main_pid() == pid_before, "keeperd's process changed on reload"
director.succeed(f"systemctl is-active {unit}")
assert holds_vip(director) and not holds_vip(backup)

# Let the probe loop finish (150 requests at >= 0.1 s each), then read it.
client.wait_until_succeeds("test $(wc -l < /tmp/probe.log) -ge 150", timeout=180)
codes = client.succeed("cat /tmp/probe.log").split()
bad = [c for c in codes if c != "200"]
print(f"client: {len(codes)} requests during the reload, {len(bad)} failed")
assert not bad, f"client saw errors during the reload: {bad}"
assert vip not in backup.succeed("cat /tmp/addr-monitor.log"), "the backup took the VIP during the reload"

# Back to the base configuration: reloaded again, the weight is back.
out = director.succeed("/run/booted-system/bin/switch-to-configuration test 2>&1")
assert f"{unit}.service" in units_in(out, "reloading"), out
director.wait_until_succeeds(weight_is(probe["weight_before"]), timeout=30)
assert main_pid() == pid_before

# The environment file: rewritten with the same content (as secret managers do on every activation), keeper keeps
# running; changed (a secret rotation), keeper restarts (it reads KEEPER_* at start only) and the director preempts.
env_file = lab["env_file"]
WATCHER_RUN = "systemctl show -p ExecMainExitTimestampMonotonic --value keeper-environment.service"
before = director.succeed(WATCHER_RUN).strip()
director.succeed(f"cp {env_file} /tmp/env.copy && cat /tmp/env.copy > {env_file}")
# The path unit ran the watcher and the watcher has finished (its exit time moved).
director.wait_until_succeeds(f"test \"$({WATCHER_RUN})\" != '{before}'", timeout=30)
assert main_pid() == pid_before, "an unchanged environment file restarted keeper"

director.succeed(f"echo '# rotated' >> {env_file}")
director.wait_until_succeeds(
    f"test \"$(systemctl show -p MainPID --value {unit})\" != {pid_before} && systemctl is-active {unit}",
    timeout=60,
)
director.wait_until_succeeds(f"ip -o -4 addr show dev {iface} | grep -qw {vip}", timeout=60)
client.wait_until_succeeds(f"curl -sf -m 2 http://{vip}/", timeout=60)
