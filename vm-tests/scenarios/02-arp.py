# ARP suppression: only the active director answers for the VIP, and a real server's traffic sourced from the VIP
# does not move the client's neighbour entry (arp_ignore=1 / arp_announce=2 on the real servers, seeds 002/003).
boot_lab()
dmac = mac_of(director)
rs1_mac = mac_of(rs1)
client_ip = lab["ip"]["client"]


def rs_sysctls(m, ignore, announce):
    for conf in ("all", IFACE):
        m.succeed(f"sysctl -qw net.ipv4.conf.{conf}.arp_ignore={ignore} net.ipv4.conf.{conf}.arp_announce={announce}")


def send_from_vip(m):
    """A packet from the VIP to the client, with the client's entry flushed first so m has to ARP for it.
    The echo reply goes to the director (the client's idea of the VIP), so the ping itself fails."""
    m.succeed(f"ip neigh flush dev {IFACE}")
    m.execute(f"ping -c 1 -W 1 -I {VIP} {client_ip} >/dev/null 2>&1")


with subtest("the client resolves the VIP to the director's MAC"):
    client.succeed(f"ip neigh flush dev {IFACE}")
    assert "FAILED" not in requests(2)
    assert neigh_mac(VIP) == dmac, (neigh_mac(VIP), dmac)

with subtest("arping VIP is answered by the director only"):
    t = time.monotonic()
    macs = arping_macs(3)
    timing("arping -c 3", time.monotonic() - t)
    print(f"arping replies from {macs} (director {dmac})")
    assert macs == [dmac], macs

with subtest("traffic a real server sources from the VIP does not move the client's entry"):
    for m in (rs1, rs2):
        send_from_vip(m)
        assert neigh_mac(VIP) == dmac, f"after {m.name} sent from the VIP: {neigh_mac(VIP)}"

with subtest("control: without arp_ignore/arp_announce, rs1 answers for the VIP and poisons the client"):
    # Proves the two checks above can fail in this lab.
    rs_sysctls(rs1, 0, 0)
    macs = arping_macs(3)
    print(f"arping replies without suppression: {macs}")
    assert rs1_mac in macs, macs
    client.succeed(f"ip neigh flush dev {IFACE}")
    requests(1)
    send_from_vip(rs1)
    poisoned = neigh_mac(VIP)
    print(f"client's entry for the VIP after rs1 sent from it unsuppressed: {poisoned}")
    assert poisoned == rs1_mac, poisoned
    rs_sysctls(rs1, 1, 2)
    client.succeed(f"ip neigh flush dev {IFACE}")
    assert "FAILED" not in requests(2)
    assert neigh_mac(VIP) == dmac and arping_macs(2) == [dmac]
