# services.keeper.settings of the lab's two directors (vm-tests/nixos.nix) and of docs/nix.md's example: VRRPv2
# with PASS authentication (the password comes from the environment file), an IPv6 VRRPv3 instance in the same
# sync group, and one LVS-DR web service over rs1 and rs2 with HTTP checks. Plain data (builtins only), so
# scripts/layers/nix.sh checks it with nix/lib/validate.nix and, once keeperd has --check, with keeperd itself.
{ priority
, state
, iface ? "eth1"
, vip ? "10.77.0.100"
, vip6 ? "fd77::100"
, realServers ? { rs1 = "10.77.0.21"; rs2 = "10.77.0.22"; }
}:
{
  global.router_id = if state == "MASTER" then "director" else "backup";
  vrrp_instance.VI_1 = {
    interface = iface;
    inherit state priority;
    virtual_router_id = 51;
    advert_int = 1;
    virtual_ipaddress = [ "${vip}/24" ];
    authentication.auth_type = "PASS";
  };
  vrrp_instance.VI_6 = {
    interface = iface;
    inherit state priority;
    virtual_router_id = 52;
    version = 3;
    advert_int = 1;
    virtual_ipaddress = [ "${vip6}/64" ];
  };
  vrrp_sync_group.LAB.group = [ "VI_1" "VI_6" ];
  virtual_server.web = {
    ip = vip;
    port = 80;
    protocol = "TCP";
    lb_algo = "rr";
    lb_kind = "DR";
    delay_loop = 1;
    real_server = builtins.mapAttrs
      (_: ip: {
        inherit ip;
        port = 80;
        weight = 1;
        http_get = {
          connect_timeout = 1;
          url.root = {
            path = "/";
            status_code = 200;
          };
        };
      })
      realServers;
  };
}
