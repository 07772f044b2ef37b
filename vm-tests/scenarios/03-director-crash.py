# Director crash (power cut) and, separately, a cut link: the backup takes the VIP and the client is served
# again; the outage the client saw is printed. The core scenario (also run on QEMU).
boot_lab()
dmac, bmac = mac_of(director), mac_of(backup)
limit = BACKUP_TAKEOVER + 1.5  # RFC 5798 master-down interval, plus the takeover's GARP and one probe period


def failover(name, cause):
    start_probe(name)
    t = mark(name, cause)
    before = settled_stats(backup)
    if cause == "crash":
        director.crash()
    else:
        director.block()
    wait_vip(backup, 15)
    settled = mark(name, "backup-has-vip")
    wait_probe_ok_after(name, t, count=10)
    reqs, _ = stop_probe(name)
    o = outage_after(reqs, t, settled)
    print(f"{failed_requests_after(reqs, t)} requests failed; answered after the {cause} by {o.answered}; "
          f"the backup's master-down interval is {BACKUP_TAKEOVER:.2f} s")
    check_outage(f"director {cause}: client outage (largest gap between answers)", o, limit)
    assert o.answered == ["rs1", "rs2"], o.answered
    assert neigh_mac(VIP) == bmac, "the client does not send to the backup"
    conns = settled_stats(backup, at_least_conns=before[0] + 5)[0]
    assert conns >= before[0] + 5, "the backup's IPVS did not forward the client's requests"


with subtest("director crash: the backup takes over"):
    failover("crash", "crash")
    assert vip_holders() == ["backup"]

with subtest("the director comes back and preempts"):
    director.start()
    director.wait_for_unit(UNIT, timeout=60 * SLOW)
    wait_vip(director, 30)
    wait_no_vip(backup, 10)

with subtest("director link cut: the backup takes over"):
    failover("cut", "link-cut")
    # Cut off behind the switch, the director still believes it is master: both hold the VIP until the heal.
    assert sorted(vip_holders()) == (["backup", "director"] if BLOCK_KEEPS_CARRIER else ["backup"]), vip_holders()
    director.unblock()
    wait_no_vip(backup, 10)
    assert vip_holders() == ["director"]
