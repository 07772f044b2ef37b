# Layer: keeperd's IPVS on a real kernel (the host has no IPVS). One QEMU VM with Debian's
# kernel (fetched by apt-get download on first use) runs daemon/keeper/tests/vm/ipvs-daemon-inner.sh:
# exact table after start, reload applies only the difference (a connection survives),
# restart adopts the table, hand-made services untouched, sync daemon follows VRRP.
# About 2 minutes of VM time (TCG). Sourced by scripts/test-all (uses check/pass/fail).
ipvs_vm_log=$(mktemp -t keeper-ipvs-vm.XXXXXX)
PROFILE=debug "$top/daemon/keeper/tests/vm/ipvs-daemon.sh" >"$ipvs_vm_log" 2>&1
ipvs_vm_rc=$?
cat "$ipvs_vm_log"
while read -r verdict name; do
  case $verdict in
    PASS) pass "ipvs-vm: $name" ;;
    FAIL) fail "ipvs-vm: $name" ;;
  esac
done < <(grep -E '^(PASS|FAIL) ' "$ipvs_vm_log")
if ! grep -qE '^(PASS|FAIL) ' "$ipvs_vm_log"; then
  fail "ipvs-vm: the VM ran no check (exit $ipvs_vm_rc; see above)"
elif [ "$ipvs_vm_rc" -ne 0 ] && ! grep -q '^FAIL ' "$ipvs_vm_log"; then
  fail "ipvs-vm: exit $ipvs_vm_rc after its checks (see above)"
fi
rm -f "$ipvs_vm_log"
