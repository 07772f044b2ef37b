#!/usr/bin/env bash
# Capture the real-kernel fixtures of the keeper-ipvs tests: builds ipvs-probe, boots one QEMU VM
# (run-in-vm.sh) that runs capture-inner.sh, and copies the results to tests/fixtures/kernel/.
# Run by hand when the codec changes; the fixtures are committed, the VM is not needed by
# `cargo test`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
crate=$(cd "$here/../.." && pwd)
(cd "$crate" && cargo build --release --example ipvs-probe)
target=$(cd "$crate" && cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
out=$(mktemp -d /tmp/ipvsfx-out-XXXXXX)
trap 'rm -rf "$out"' EXIT
"$here/run-in-vm.sh" "$out" "$here/capture-inner.sh" "$target/release/examples/ipvs-probe"
dest=$crate/tests/fixtures/kernel
mkdir -p "$dest"
rm -f "$dest"/*
cp "$out"/*.hex "$out"/*-ipvsadm-*.txt "$out"/*.strace "$out"/inner.log "$dest/"
cp "$out/t1-daemons.hex" "$dest/daemons-master-backup.hex"
echo "fixtures in $dest"
