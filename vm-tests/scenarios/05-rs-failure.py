# Real-server failure: httpd stopped on rs1 takes it out of the pool (removed, or weight 0 with
# inhibit_on_failure) within the checker's window, all requests go to rs2; restarted, rs1 comes back.
require_daemon_ipvs("checks that add and remove real servers")
boot_lab()
chk = lab["checker"]
# keepalived's HTTP_GET: a check every delay_loop; a failure is retried `retry` times, delay_before_retry apart,
# each attempt bounded by connect_timeout. A refused connection fails at once.
window = chk["delay_loop"] + chk["retry"] * (chk["connect_timeout"] + chk["delay_before_retry"]) + chk["connect_timeout"]
limit = window + 2


def wait_pool(m, rs_name, present, timeout):
    t = time.monotonic()
    deadline = t + timeout * SLOW
    while in_pool(m, rs_name) != present:
        assert time.monotonic() < deadline, f"{m.name}: {rs_name} in pool is not {present} after {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - t


with subtest("both real servers are in the pool and serve"):
    for m in DIRECTORS:
        wait_pool(m, "rs1", True, 20)
        wait_pool(m, "rs2", True, 20)
    assert {"rs1", "rs2"} <= set(requests(4))

with subtest("httpd stops on rs1: rs1 leaves the pool on both directors"):
    rs1.succeed(f"systemctl stop {lab['http_unit']}")
    rs1.wait_for_closed_port(80)
    gone = wait_pool(director, "rs1", False, limit)
    timing("rs1 httpd stopped to rs1 out of the director's pool (host polling, 0.2 s)", gone)
    print(f"checker window: delay_loop + retry x (connect_timeout + delay_before_retry) + connect_timeout = {window} s")
    assert gone <= limit
    wait_pool(backup, "rs1", False, limit)
    print(director.succeed(f"ipvsadm -Ln -t {VIP}:80"))

with subtest("all requests go to rs2"):
    answers = requests(10)
    assert answers == ["rs2"] * 10, answers

with subtest("httpd starts again on rs1: rs1 rejoins the pool"):
    rs1.succeed(f"systemctl start {lab['http_unit']}")
    rs1.wait_for_open_port(80)
    back = wait_pool(director, "rs1", True, chk["delay_loop"] + limit)
    timing("rs1 httpd started to rs1 back in the director's pool (host polling, 0.2 s)", back)
    wait_pool(backup, "rs1", True, chk["delay_loop"] + limit)
    answers = requests(10)
    assert answers.count("rs1") == 5 and answers.count("rs2") == 5, answers
