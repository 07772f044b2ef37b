# shellcheck shell=bash
# Layer: the VM failover lab (vm-tests/, issue 6). Sourced by scripts/test-all, which provides check/pass/fail.
# `vm-tests/run all` runs every scenario with keepalived on user-mode-linux, the scenarios expected to pass
# with keeperd, and the core scenario on QEMU (TCG); it prints one PASS/FAIL line per scenario run after
# "VM lab:", recorded here one result each. Logs of failed runs stay in vm-tests/.work/runs/.
vm_lab_layer() {
  # The outage arithmetic and the initramfs writer, without VMs.
  check "vm: harness selftest" "$top/vm-tests/run" selftest
  if [ "$(id -u)" -ne 0 ]; then
    fail "vm: the VM lab needs root"
    return
  fi
  local out rc n_before
  out=$(mktemp)
  n_before=$(wc -l <"$results")
  # The lab's own deadlines end every wait; this limit only guards against a hung harness.
  timeout --kill-after=30 1500 "$top/vm-tests/run" all 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  local status name
  while read -r status name; do
    case "$status" in
    PASS) pass "vm: $name" ;;
    FAIL) fail "vm: $name" ;;
    esac
  done < <(sed -n '/^VM lab: /,$p' "$out" | grep -E '^(PASS|FAIL) ')
  if [ "$(wc -l <"$results")" -eq "$n_before" ]; then
    fail "vm: vm-tests/run exited $rc without results"
  fi
  rm -f "$out"
}
vm_lab_layer
