# IPVS connection sync: a TCP connection that has sent at least 3 packets through the director (IPVS syncs a
# connection from its 3rd packet) survives the director's crash, on the same real server. A connection that has
# sent only its handshake is not synced and is reset by the backup: the control that shows the sync matters.
import shlex

require_daemon_ipvs("the IPVS sync daemon")
boot_lab()
port = lab["echo_port"]
for m in DIRECTORS:
    m.wait_until_succeeds(f"ipvsadm -Ln -t {VIP}:{port} | grep -c Route | grep -qx 2", timeout=20 * SLOW)

with subtest("the sync daemons run: master on the director, backup on the backup"):
    director.wait_until_succeeds("ipvsadm -Ln --daemon | grep -q 'master sync daemon'", timeout=10 * SLOW)
    backup.wait_until_succeeds("ipvsadm -Ln --daemon | grep -q 'backup sync daemon'", timeout=10 * SLOW)

# Session A sends a numbered line every 0.2 s; session B connects and stays silent until after the crash.
# Each received line is stamped with the client's uptime; "nc-exit N" says the connection ended.
feed_a = "i=0; while [ $i -lt 400 ]; do echo a$i; i=$((i + 1)); sleep 0.2; done"
feed_b = "while [ ! -e /tmp/kvl-b.go ]; do sleep 0.1; done; echo b-after-crash; sleep 60"


def lines(path):
    return [ln.split(" ", 1) for ln in client.succeed(f"cat {path}").splitlines() if " " in ln]


with subtest("two sessions through the director; A is synced to the backup"):
    for name, feed in (("a", feed_a), ("b", feed_b)):
        stamp_fn = "stamp() { while IFS= read -r l; do read -r t _ </proc/uptime; echo \"$t $l\"; done; }"
        client.succeed(
            f"{stamp_fn}; export -f stamp; setsid bash -c "
            + shlex.quote(f"({feed}) | (nc {VIP} {port}; echo nc-exit $?) | stamp >/tmp/kvl-{name}.out 2>&1")
            + " >/dev/null 2>&1 </dev/null &"
        )
    client.wait_until_succeeds("test $(grep -c ' a' /tmp/kvl-a.out) -ge 10", timeout=20 * SLOW)
    rs_a = lines("/tmp/kvl-a.out")[0][1].split()[0]
    print(f"session A is on {rs_a}: {director.succeed(f'ipvsadm -Lnc | grep :{port} || true')}")
    t = time.monotonic()
    # A's entry: ESTABLISHED, to A's real server (B, on the other real server, has sent too few packets).
    a_dest = f"{lab['ip'][rs_a]}:{port}"
    backup.wait_until_succeeds(f"ipvsadm -Lnc | grep ESTABLISHED | grep -q ' {a_dest}'", timeout=10 * SLOW)
    timing("session A's connection seen in the backup's table (host polling)", time.monotonic() - t)
    print(f"backup's synced connections:\n{backup.succeed(f'ipvsadm -Lnc | grep :{port} || true')}")

with subtest("the director crashes: A continues on the same real server, B is reset"):
    n_before = len(lines("/tmp/kvl-a.out"))
    t_crash = float(client.succeed("cut -d' ' -f1 /proc/uptime"))
    director.crash()
    wait_vip(backup, 15)
    client.succeed("touch /tmp/kvl-b.go")
    client.wait_until_succeeds(
        f"test $(grep -c ' a' /tmp/kvl-a.out) -ge {n_before + 15}", timeout=(BACKUP_TAKEOVER + 20) * SLOW
    )
    got = lines("/tmp/kvl-a.out")
    after = [(float(ts), rest) for ts, rest in got if ts != "0" and float(ts) > t_crash]
    stamps = [float(ts) for ts, _ in got if ts != "0"]
    stall = max(b - a for a, b in zip(stamps, stamps[1:]) if b > t_crash)
    timing("session A stalled across the crash (largest gap between echoed lines)", stall)
    servers = {rest.split()[0] for _, rest in after}
    assert servers == {rs_a}, f"session A moved to {servers}"
    assert not any(rest.startswith("nc-exit") for _, rest in got), "session A was closed"
    client.wait_until_succeeds("grep -q nc-exit /tmp/kvl-b.out", timeout=10 * SLOW)
    b_out = client.succeed("cat /tmp/kvl-b.out")
    print(f"session B (never synced): {b_out.strip()!r}")
    assert "b-after-crash" not in b_out, "session B survived without sync: the check cannot tell sync from luck"
