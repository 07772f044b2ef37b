# Partition and heal: the director is cut off (both directors then hold the VIP: a split brain), then
# reconnected. After the heal exactly one node holds the VIP and the client reaches it within one advert interval.
#
# "Reaches it" is measured with ping to the VIP, which the VIP holder answers itself: that is the VRRP/ARP
# part. HTTP through IPVS is measured too and only reported: the isolated director's checkers lost both real
# servers during the partition, so its pool is empty until they pass again (keepalived then resets clients).
boot_lab()
dmac = mac_of(director)
# One advert interval, plus the probe's resolution (one period and one ping); a client left on the loser's MAC
# would wait 5-25 s.
heal_limit = ADVERT + 0.5
chk = lab["checker"]

with subtest("partition: the director is cut off, the backup serves the client"):
    start_probe("part-icmp", kind="icmp")
    start_probe("part-http")
    t_block = mark("part-icmp", "part-http", "block")
    director.block()
    wait_vip(backup, 15)
    t_taken = mark("part-icmp", "part-http", "backup-has-vip")
    wait_probe_ok_after("part-http", t_block, count=10)
    assert sorted(vip_holders()) == (["backup", "director"] if BLOCK_KEEPS_CARRIER else ["backup"]), vip_holders()
    # Let the split brain last a few adverts (both masters keep advertising into their own halves).
    client.succeed(f"sleep {3 * ADVERT}")
    print("director's pool before the heal:", pool(director))

with subtest("heal: one VIP holder, the client follows within one advert interval"):
    t_heal = mark("part-icmp", "part-http", "heal")
    t_host = time.monotonic()
    director.unblock()
    wait_no_vip(backup, 3 * ADVERT + 2)
    timing("heal to VIP released by the backup (host polling)", time.monotonic() - t_host)
    t_released = mark("part-icmp", "part-http", "backup-released")
    # The isolated director's checkers have to pass again before HTTP through it works.
    t_pool = time.monotonic()
    director.wait_until_succeeds(f"ipvsadm -Ln -t {VIP}:80 | grep -c Route | grep -qx 2",
                                 timeout=int((3 * chk["delay_loop"] + 10) * SLOW))
    timing("heal to the isolated director's pool refilled by its checkers (host polling)",
           time.monotonic() - t_pool + (t_pool - t_host))
    t_refilled = mark("part-icmp", "part-http", "pool-refilled")
    wait_probe_ok_after("part-icmp", t_refilled, count=10)
    wait_probe_ok_after("part-http", t_refilled, count=10)
    icmp, _ = stop_probe("part-icmp")
    http, _ = stop_probe("part-http")
    o = outage_after([r for r in http if r[1] <= t_heal], t_block, t_taken)
    check_outage("partition: HTTP outage until the backup took over", o, BACKUP_TAKEOVER + 1.5)
    o = outage_after(icmp, t_heal, t_released)
    check_outage("heal: client cannot reach the VIP (ping; largest gap between answers)", o, heal_limit)
    o = outage_after(http, t_heal, t_refilled)
    print(f"{failed_requests_after(http, t_heal)} HTTP requests failed after the heal; answered by {o.answered}")
    check_outage("heal: HTTP outage (includes the isolated director's checkers' recovery)", o,
                 3 * chk["delay_loop"] + ADVERT + 2)

with subtest("exactly one node holds the VIP, and the client sends to it"):
    for _ in range(3):
        assert vip_holders() == ["director"], vip_holders()
        client.succeed(f"sleep {ADVERT}")
    assert arping_macs(3) == [dmac]
    assert neigh_mac(VIP) == dmac
