# The director returns after a crash: it preempts the backup, client traffic moves back to it, and exactly one
# node holds the VIP.
boot_lab()
dmac = mac_of(director)
director.crash()
wait_vip(backup, 15)

with subtest("the director boots again and takes the VIP back"):
    start_probe("return")
    t = mark("return", "director-start")
    t_host = time.monotonic()
    director.start()
    director.wait_for_unit(UNIT, timeout=60 * SLOW)
    wait_vip(director, 30)
    timing("director start to VIP on the director (host clock, includes VM boot)", time.monotonic() - t_host)
    wait_no_vip(backup, 2 * ADVERT + 2)
    timing("director start to VIP released by the backup (host clock)", time.monotonic() - t_host)
    settled = mark("return", "backup-released")
    wait_probe_ok_after("return", settled, count=10)
    reqs, _ = stop_probe("return")
    o = outage_after(reqs, t, settled)
    print(f"{failed_requests_after(reqs, t)} requests failed; answered by {o.answered}")
    # A SYN that reaches the backup just after it released the VIP is retransmitted 1 s later; a client left
    # on the backup's MAC (no GARP from the returning director) would be cut off for 5 s or more.
    check_outage("preemption: client outage (largest gap between answers)", o, BACKUP_TAKEOVER)

with subtest("exactly one VIP: the director's, and the client uses it"):
    assert vip_holders() == ["director"], vip_holders()
    for m in (rs1, rs2, client):
        m.fail(has_vip_cmd())
    assert arping_macs(3) == [dmac]
    assert neigh_mac(VIP) == dmac, neigh_mac(VIP)

with subtest("new requests go through the director's IPVS, not the backup's"):
    d0, b0 = settled_stats(director), settled_stats(backup)
    answers = requests(10)
    assert "FAILED" not in answers and {"rs1", "rs2"} <= set(answers), answers
    d1 = settled_stats(director, at_least_conns=d0[0] + 10)
    b1 = service_stats(backup)
    print(f"conns: director +{d1[0] - d0[0]}, backup +{b1[0] - b0[0]}")
    assert d1[0] - d0[0] >= 10 and b1[0] == b0[0]
