# Boot: the VIP on the director only, its IPVS services configured, 20 requests balanced over rs1 and rs2 in DR.
require_daemon_ipvs("the daemon's virtual services")
boot_secs = boot_lab()
timing("lab start to VIP on the director (host clock, includes VM boot)", boot_secs)

with subtest("the VIP is on the director only; the real servers have it on lo"):
    assert vip_holders() == ["director"], vip_holders()
    for m in (rs1, rs2):
        m.succeed(f"ip -4 -o addr show dev lo | grep -q ' inet {VIP}/32'")
        m.fail(has_vip_cmd())
    client.fail(has_vip_cmd())

with subtest("ipvsadm -Ln on the director shows the configured services"):
    out = director.succeed("ipvsadm -Ln")
    print(out)
    for port in (80, lab["echo_port"]):
        assert re.search(rf"TCP\s+{re.escape(VIP)}:{port}\s+rr", out), f"no rr service {VIP}:{port}"
        for rs in ("rs1", "rs2"):
            assert re.search(rf"->\s+{re.escape(lab['ip'][rs])}:{port}\s+Route\s+1\b", out), f"{rs}:{port} missing"

with subtest("20 client requests are answered by rs1 and rs2, the director forwards only one way"):
    before = service_stats(director)
    t = time.monotonic()
    answers = requests(20)
    timing("20 sequential requests through the VIP", time.monotonic() - t)
    counts = {name: answers.count(name) for name in sorted(set(answers))}
    print(f"answers: {counts}")
    assert "FAILED" not in counts, counts
    assert counts.get("rs1", 0) > 0 and counts.get("rs2", 0) > 0, counts
    assert sum(counts.values()) == 20, counts
    after = settled_stats(director, at_least_conns=before[0] + 20)
    conns, inpkts, outpkts = (a - b for a, b in zip(after, before))
    print(f"director VIP:80 counters: conns +{conns}, in packets +{inpkts}, out packets +{outpkts}")
    assert conns >= 20, "the requests did not go through the director's IPVS"
    # LVS-DR: replies go from the real servers straight to the client, never back through the director.
    assert outpkts == 0, f"director OutPkts {outpkts}: replies went through the director"
