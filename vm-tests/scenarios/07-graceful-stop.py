# Graceful stop of the director: the service stops (priority 0 advert), the backup takes over after its skew
# time instead of the full master-down interval. Then the same for a clean power-off of the whole director.
boot_lab()
# RFC 5798: on a priority-0 advert the backup waits Skew_Time = (256 - priority) x interval / 256 instead of the
# master-down interval; the limit sits between the two, so it tells a graceful handover from a timeout.
limit = (SKEW_BACKUP + BACKUP_TAKEOVER) / 2


def handover(name, how):
    start_probe(name)
    t = mark(name, how)
    if how == "service-stop":
        director.succeed(f"systemctl stop {UNIT}")
    else:
        director.shutdown()
    wait_vip(backup, 10)
    settled = mark(name, "backup-has-vip")
    wait_probe_ok_after(name, t, count=10)
    reqs, _ = stop_probe(name)
    o = outage_after(reqs, t, settled)
    print(f"{failed_requests_after(reqs, t)} requests failed; answered by {o.answered}; "
          f"skew time {SKEW_BACKUP:.3f} s, master-down interval {BACKUP_TAKEOVER:.2f} s")
    check_outage(f"director {how}: client outage (largest gap between answers)", o, limit)
    assert vip_holders() == ["backup"], vip_holders()


with subtest("systemctl stop on the director: handover in about the skew time"):
    handover("stop", "service-stop")
    director.fail(has_vip_cmd())  # a graceful stop removes the VIP

with subtest("the service starts again and the director preempts"):
    director.succeed(f"systemctl start {UNIT}")
    director.wait_for_unit(UNIT)
    wait_vip(director, 15)
    wait_no_vip(backup, 10)

with subtest("the director powers off cleanly: same handover"):
    handover("poweroff", "poweroff")
