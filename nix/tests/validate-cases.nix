# Cases for nix/lib/validate.nix: settings plus the messages they must produce (a substring each) and no others.
# scripts/layers/nix.sh records one result per case, and one per case comparing the verdict with `keeperd --check`
# on the same settings rendered to TOML (auth_pass supplied as KEEPER_… variables, as the module does); `nixOnly`
# marks the rule keeperd does not have (no secrets in the Nix store).
let
  validate = import ../lib/validate.nix;
  example = import ../examples/director.nix;
  instance = extra: {
    interface = "eth1";
    virtual_router_id = 51;
    virtual_ipaddress = [ "10.77.0.100/24" ];
  } // extra;
  web = extra: { ip = "10.77.0.100"; port = 80; lb_kind = "DR"; real_server.a.ip = "10.77.0.21"; } // extra;

  cases = {
    example-director = { settings = example { priority = 150; state = "MASTER"; }; expect = [ ]; };
    example-backup = { settings = example { priority = 100; state = "BACKUP"; }; expect = [ ]; };
    empty = { settings = { }; expect = [ ]; };
    keepalived-options = {
      settings.vrrp_instance.VI_1 = instance {
        garp_master_delay = 5;
        virtual_ipaddress = [ "10.77.0.100/24 dev eth1 label eth1:vip" ];
        unicast_peer = [ "10.77.0.12 min_ttl 254" ];
      };
      expect = [ ];
    };
    vrid-range = {
      settings.vrrp_instance = { A = instance { virtual_router_id = 0; }; B = instance { virtual_router_id = 256; }; };
      expect = [ "vrrp_instance.A.virtual_router_id must be between 1 and 255, got 0" "vrrp_instance.B.virtual_router_id must be between 1 and 255, got 256" ];
    };
    vrid-missing = {
      settings.vrrp_instance.A = removeAttrs (instance { }) [ "virtual_router_id" ];
      expect = [ "vrrp_instance.A: missing key `virtual_router_id`" ];
    };
    interface-missing = {
      settings.vrrp_instance.A = removeAttrs (instance { }) [ "interface" ];
      expect = [ "vrrp_instance.A: missing key `interface`" ];
    };
    interface-empty = {
      settings.vrrp_instance.A = instance { interface = " "; };
      expect = [ "vrrp_instance.A: missing key `interface`" ];
    };
    priority-range = {
      settings.vrrp_instance.A = instance { priority = 0; };
      expect = [ "vrrp_instance.A.priority must be between 1 and 255, got 0" ];
    };
    version-range = {
      settings.vrrp_instance.A = instance { version = 4; };
      expect = [ "vrrp_instance.A.version must be between 2 and 3, got 4" ];
    };
    auth-needs-v2 = {
      settings.vrrp_instance.A = instance { version = 3; authentication.auth_type = "PASS"; };
      expect = [ "vrrp_instance.A.authentication: authentication exists only in VRRPv2" ];
    };
    auth-needs-v2-global = {
      settings = { global.vrrp_version = 3; vrrp_instance.A = instance { authentication.auth_type = "PASS"; }; };
      expect = [ "vrrp_instance.A.authentication: authentication exists only in VRRPv2" ];
    };
    auth-ah-unsupported = {
      settings.vrrp_instance.A = instance { authentication.auth_type = "AH"; };
      expect = [ "vrrp_instance.A.authentication.auth_type: only PASS is supported" ];
    };
    auth-pass-not-in-store = {
      settings.vrrp_instance.VI_1 = instance { authentication = { auth_type = "PASS"; auth_pass = "s3cret"; }; };
      expect = [ "KEEPER_VRRP_INSTANCE__VI_1__AUTHENTICATION__AUTH_PASS" ];
      nixOnly = true;
    };
    advert-v2-whole-seconds = {
      settings.vrrp_instance.A = instance { advert_int = 0.5; };
      expect = [ "vrrp_instance.A.advert_int: VRRPv2 adverts are whole seconds 1-255" ];
    };
    advert-v2-range = {
      settings.vrrp_instance.A = instance { advert_int = 256; };
      expect = [ "vrrp_instance.A.advert_int: VRRPv2 adverts are whole seconds 1-255" ];
    };
    advert-v3-steps = {
      settings.vrrp_instance = {
        A = instance { version = 3; advert_int = 0.1; };
        B = instance { version = 3; virtual_router_id = 9; advert_int = 41; };
        C = instance { version = 3; virtual_router_id = 10; advert_int = 0.015; };
      };
      expect = [ "vrrp_instance.B.advert_int: VRRPv3 adverts are 10 ms steps" "vrrp_instance.C.advert_int: VRRPv3 adverts are 10 ms steps" ];
    };
    advert-duration-string = {
      settings.vrrp_instance.A = instance { version = 3; advert_int = "100ms"; };
      expect = [ ];
    };
    mixed-families = {
      settings.vrrp_instance.A = instance { version = 3; virtual_ipaddress = [ "10.0.0.1" "fd00::1" ]; };
      expect = [ "vrrp_instance.A.virtual_ipaddress: one instance serves one address family" ];
    };
    ipv6-instance = {
      settings.vrrp_instance.A = instance { version = 3; virtual_ipaddress = [ "fd77::100/64" ]; };
      expect = [ ];
    };
    unicast-peer-family = {
      settings.vrrp_instance.A = instance { unicast_peer = [ "10.77.0.12" "fd77::12" ]; };
      expect = [ "vrrp_instance.A.unicast_peer: every peer must be of the instance's address family" ];
    };
    unicast-peer-empty = {
      settings.vrrp_instance.A = instance { unicast_peer = [ ]; };
      expect = [ "vrrp_instance.A.unicast_peer: is empty" ];
    };
    track-script-exists = {
      settings = {
        vrrp_script.chk.script = "/run/current-system/sw/bin/true";
        vrrp_instance.A = instance { track_script = [ "chk weight -20" "gone" ]; };
      };
      expect = [ "vrrp_instance.A.track_script: no vrrp_script named gone" ];
    };
    script-fields = {
      settings.vrrp_script = { s.weight = 300; t = { script = "true"; rise = 0; }; };
      expect = [ "vrrp_script.s: missing key `script`" "vrrp_script.s.weight must be between -253 and 253" "vrrp_script.t.rise must be between 1 and 1000000" ];
    };
    duplicate-vrid = {
      settings.vrrp_instance = { A = instance { }; B = instance { }; C = instance { interface = "eth2"; }; };
      expect = [ "vrrp_instance: A, B use the same VRID on one interface and address family" ];
    };
    same-vrid-other-family = {
      settings.vrrp_instance = { A = instance { }; B = instance { version = 3; virtual_ipaddress = [ "fd77::100" ]; }; };
      expect = [ ];
    };
    sync-group-members-exist = {
      settings = { vrrp_instance.A = instance { }; vrrp_sync_group.G.group = [ "A" "B" ]; };
      expect = [ "vrrp_sync_group.G.group: no vrrp_instance named B" ];
    };
    sync-group-empty = {
      settings.vrrp_sync_group.G.group = [ ];
      expect = [ "vrrp_sync_group.G.group: a sync group needs at least one member" ];
    };
    sync-group-one-each = {
      settings = { vrrp_instance.A = instance { }; vrrp_sync_group = { G.group = [ "A" ]; H.group = [ "A" ]; }; };
      expect = [ "vrrp_sync_group: A is a member of more than one sync group" ];
    };
    virtual-server-fields = {
      settings.virtual_server.web = web { port = 70000; protocol = "ICMP"; lb_kind = "FULLNAT"; lb_algo = "random"; delay_loop = 0; };
      expect = [
        "virtual_server.web.port must be between 0 and 65535"
        "virtual_server.web.protocol: must be TCP, UDP or SCTP"
        "virtual_server.web.lb_kind: must be NAT, DR or TUN"
        "virtual_server.web.lb_algo: must be one of"
        "virtual_server.web.delay_loop: must be above 0"
      ];
    };
    virtual-server-address = {
      settings.virtual_server = { a = { port = 80; }; b = web { fwmark = 3; }; c = removeAttrs (web { }) [ "port" ]; };
      expect = [
        "virtual_server.a: set exactly one of"
        "virtual_server.a.port: `port` goes with `ip`"
        "virtual_server.b: set exactly one of"
        "virtual_server.c: missing key `port` (with `ip`)"
      ];
    };
    virtual-server-group = {
      settings.virtual_server.g = { group = "G"; };
      expect = [ "virtual_server.g.group: virtual_server_group: groups are not supported yet" ];
    };
    duplicate-services = {
      settings.virtual_server = { a = web { }; b = web { }; c = web { protocol = "UDP"; }; };
      expect = [ "virtual_server: two virtual servers serve TCP 10.77.0.100 80" ];
    };
    fwmark-service = {
      settings.virtual_server.marked = { fwmark = 1; lb_kind = "DR"; real_server.a.ip = "10.77.0.21"; };
      expect = [ ];
    };
    dr-port-left-to-ipvs = {
      settings.virtual_server.web = web { real_server.a = { ip = "10.77.0.21"; port = 8080; }; };
      expect = [ ];
    };
    real-server-fields = {
      settings.virtual_server.web = web { real_server = { a.weight = -1; b = { ip = "10.77.0.22"; port = 70000; }; }; };
      expect = [
        "virtual_server.web.real_server.a: missing key `ip`"
        "virtual_server.web.real_server.a.weight must be between 0 and 65535"
        "virtual_server.web.real_server.b.port must be between 0 and 65535"
      ];
    };
    real-server-family = {
      settings.virtual_server = {
        web = web { real_server.a.ip = "fd77::21"; };
        tun = web { port = 81; lb_kind = "TUN"; real_server.a.ip = "fd77::21"; };
      };
      expect = [ "virtual_server.web.real_server.a.ip: fd77::21 is not of the virtual server's family" ];
    };
    duplicate-real-servers = {
      settings.virtual_server.web = web { real_server = { a.ip = "10.77.0.21"; b = { ip = "10.77.0.21"; port = 80; }; }; };
      expect = [ "virtual_server.web: two real servers have the same address and port (10.77.0.21 80)" ];
    };
  };

  hasInfix = needle: s: builtins.match ".*${escape needle}.*" s != null;
  escape = builtins.replaceStrings
    [ "." "(" ")" "[" "]" "{" "}" "*" "+" "?" "|" "^" "$" "\\" ]
    [ "\\." "\\(" "\\)" "\\[" "\\]" "\\{" "\\}" "\\*" "\\+" "\\?" "\\|" "\\^" "\\$" "\\\\" ];
  run = name: case:
    let
      got = map (a: a.message) (builtins.filter (a: !a.assertion) (validate case.settings));
      missing = builtins.filter (e: !(builtins.any (hasInfix e) got)) case.expect;
      unexpected = builtins.filter (m: !(builtins.any (e: hasInfix e m) case.expect)) got;
    in
    {
      inherit name got;
      inherit (case) settings;
      ok = missing == [ ] && unexpected == [ ];
      rejects = got != [ ];
      nixOnly = case.nixOnly or false;
      detail = { inherit missing unexpected; };
    };
in
map (name: run name cases.${name}) (builtins.attrNames cases)
