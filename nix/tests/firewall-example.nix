# Settings that exercise every rule nix/lib/firewall.nix writes: multicast VRRP, IPv4 and IPv6 unicast peers, a
# custom sync daemon port and group, TCP, UDP and IPv6 virtual services. scripts/layers/nix.sh loads the result into
# real nftables and iptables inside a private network namespace.
let
  lab = import ../examples/director.nix { priority = 150; state = "MASTER"; };
in
import ../lib/firewall.nix {
  settings = lab // {
    global = lab.global // {
      lvs_sync_daemon = { interface = "eth1"; instance = "VI_1"; port = 8849; group = "224.0.0.82"; };
    };
    vrrp_instance = lab.vrrp_instance // {
      U4 = { interface = "eth1"; virtual_router_id = 61; unicast_peer = [ "10.77.0.12" "10.77.0.13/24" ]; virtual_ipaddress = [ "10.77.0.101" ]; };
      U6 = { interface = "eth1"; version = 3; virtual_router_id = 62; unicast_peer = [ "fd77::12" ]; virtual_ipaddress = [ "fd77::101" ]; };
    };
    virtual_server = lab.virtual_server // {
      dns = { ip = "10.77.0.100"; port = 53; protocol = "UDP"; };
      web6 = { ip = "fd77::100"; port = 443; protocol = "TCP"; };
      marked = { fwmark = 7; };
    };
  };
}
