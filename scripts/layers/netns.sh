# Root tests in network namespaces: VRRP on the wire (keeperd with itself and with keepalived),
# and every other daemon feature that a namespace can show. Sourced by scripts/test-all.
if [ "$(id -u)" -ne 0 ]; then
  fail "netns: needs root (network namespaces, raw sockets)"
else
  cargo_tests netns cargo test -p keeper --features netns-tests --test 'netns_*'
fi
