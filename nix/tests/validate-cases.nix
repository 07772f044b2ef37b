# Cases for nix/lib/validate.nix: each is settings plus the messages it must produce (a substring each), and no
# others. Evaluated by scripts/layers/nix.sh with a bare nix-instantiate; one result per case.
let
  validate = import ../lib/validate.nix;
  lab = import ../examples/lab-director.nix;
  instance = extra: {
    interface = "eth1";
    virtual_router_id = 51;
    virtual_ipaddress = [ "10.77.0.100/24" ];
  } // extra;

  cases = {
    lab-director = { settings = lab { priority = 150; state = "MASTER"; }; expect = [ ]; };
    lab-backup = { settings = lab { priority = 100; state = "BACKUP"; }; expect = [ ]; };
    empty = { settings = { }; expect = [ ]; };
    keepalived-options-pass-through = {
      settings.vrrp_instance.VI_1 = instance {
        vrrp_garp_master_delay = 5;
        virtual_ipaddress = [ "10.77.0.100/24 dev eth1 label eth1:vip" ];
      };
      expect = [ ];
    };
    vrid-range = {
      settings.vrrp_instance = { A = instance { virtual_router_id = 0; }; B = instance { virtual_router_id = 256; }; };
      expect = [ "vrrp_instance.A: virtual_router_id must be an integer from 1 to 255, got 0" "vrrp_instance.B: virtual_router_id must be an integer from 1 to 255, got 256" ];
    };
    vrid-missing = {
      settings.vrrp_instance.A = removeAttrs (instance { }) [ "virtual_router_id" ];
      expect = [ "vrrp_instance.A: `virtual_router_id` is required" ];
    };
    interface-missing = {
      settings.vrrp_instance.A = removeAttrs (instance { }) [ "interface" ];
      expect = [ "vrrp_instance.A: `interface` is required" ];
    };
    priority-range = {
      settings.vrrp_instance.A = instance { priority = 0; };
      expect = [ "vrrp_instance.A: priority must be an integer from 1 to 255, got 0" ];
    };
    auth-needs-v2 = {
      settings.vrrp_instance.A = instance { version = 3; authentication.auth_type = "PASS"; };
      expect = [ "vrrp_instance.A: `authentication` needs VRRP version 2" ];
    };
    auth-needs-v2-global = {
      settings = { global.vrrp_version = 3; vrrp_instance.A = instance { authentication.auth_type = "AH"; }; };
      expect = [ "vrrp_instance.A: `authentication` needs VRRP version 2" ];
    };
    auth-type = {
      settings.vrrp_instance.A = instance { authentication.auth_type = "MD5"; };
      expect = [ "vrrp_instance.A: authentication.auth_type must be PASS or AH, got MD5" ];
    };
    auth-pass-not-in-store = {
      settings.vrrp_instance.VI_1 = instance { authentication = { auth_type = "PASS"; auth_pass = "s3cret"; }; };
      expect = [ "KEEPER_VRRP_INSTANCE__VI_1__AUTHENTICATION__AUTH_PASS" ];
    };
    advert-v2-whole-seconds = {
      settings.vrrp_instance.A = instance { advert_int = 0.5; };
      expect = [ "vrrp_instance.A: VRRPv2 advert_int must be whole seconds from 1 to 255" ];
    };
    advert-v3-range = {
      settings.vrrp_instance = { A = instance { version = 3; advert_int = 0.1; }; B = instance { version = 3; virtual_router_id = 9; advert_int = 41; }; };
      expect = [ "vrrp_instance.B: VRRPv3 advert_int must be from 0.01 to 40.95 seconds" ];
    };
    advert-duration-string = {
      settings.vrrp_instance.A = instance { version = 3; advert_int = "100ms"; };
      expect = [ ];
    };
    mixed-families = {
      settings.vrrp_instance.A = instance { version = 3; virtual_ipaddress = [ "10.0.0.1" "fd00::1" ]; };
      expect = [ "vrrp_instance.A: virtual_ipaddress mixes IPv4 and IPv6" ];
    };
    ipv6-needs-v3 = {
      settings.vrrp_instance.A = instance { virtual_ipaddress = [ "fd77::100/64" ]; };
      expect = [ "vrrp_instance.A: IPv6 virtual addresses need VRRP version 3" ];
    };
    unicast-peer-family = {
      settings.vrrp_instance.A = instance { unicast_peer = [ "10.77.0.12" "fd77::12" ]; };
      expect = [ "vrrp_instance.A: unicast_peer addresses must be of the same family" ];
    };
    track-script-exists = {
      settings = { vrrp_script.chk.script = "true"; vrrp_instance.A = instance { track_script = [ "chk" "gone" ]; }; };
      expect = [ "vrrp_instance.A: track_script names a vrrp_script that does not exist (gone)" ];
    };
    duplicate-vrid = {
      settings.vrrp_instance = { A = instance { }; B = instance { }; C = instance { interface = "eth2"; }; };
      expect = [ "instances A, B share interface, address family and virtual_router_id" ];
    };
    same-vrid-other-family = {
      settings.vrrp_instance = { A = instance { }; B = instance { version = 3; virtual_ipaddress = [ "fd77::100" ]; }; };
      expect = [ ];
    };
    sync-group-members-exist = {
      settings = { vrrp_instance.A = instance { }; vrrp_sync_group.G.group = [ "A" "B" ]; };
      expect = [ "vrrp_sync_group.G: group names instances that do not exist (B)" ];
    };
    sync-group-empty = {
      settings.vrrp_sync_group.G.group = [ ];
      expect = [ "vrrp_sync_group.G: `group` must list at least one vrrp_instance" ];
    };
    sync-group-one-each = {
      settings = { vrrp_instance.A = instance { }; vrrp_sync_group = { G.group = [ "A" ]; H.group = [ "A" ]; }; };
      expect = [ "an instance may belong to one vrrp_sync_group only (A)" ];
    };
    virtual-server-fields = {
      settings.virtual_server.web = { ip = "10.77.0.100"; port = 70000; protocol = "ICMP"; lb_kind = "FULLNAT"; lb_algo = "random"; };
      expect = [
        "virtual_server.web: `port` must be an integer from 0 to 65535"
        "virtual_server.web: protocol must be TCP, UDP or SCTP, got ICMP"
        "virtual_server.web: lb_kind must be NAT, DR or TUN, got FULLNAT"
        "virtual_server.web: lb_algo must be one of"
      ];
    };
    virtual-server-address = {
      settings.virtual_server.web = { port = 80; };
      expect = [ "virtual_server.web: set `ip` (or `fwmark`)" ];
    };
    fwmark-service = {
      settings.virtual_server.marked = { fwmark = 1; lb_kind = "DR"; real_server.a.ip = "10.77.0.21"; };
      expect = [ ];
    };
    dr-cannot-translate-ports = {
      settings.virtual_server.web = { ip = "10.77.0.100"; port = 80; lb_kind = "DR"; real_server = { a = { ip = "10.77.0.21"; port = 8080; }; b.ip = "10.77.0.22"; }; };
      expect = [ "virtual_server.web: lb_kind DR cannot translate ports; real_server a must use port 80" ];
    };
    nat-translates-ports = {
      settings.virtual_server.web = { ip = "10.77.0.100"; port = 80; lb_kind = "NAT"; real_server.a = { ip = "10.77.0.21"; port = 8080; }; };
      expect = [ ];
    };
    real-server-fields = {
      settings.virtual_server.web = { ip = "10.77.0.100"; port = 80; real_server.a = { weight = -1; }; };
      expect = [ "virtual_server.web.real_server.a: `ip` is required" "virtual_server.web.real_server.a: weight must be an integer from 0 to 65535" ];
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
      inherit name;
      ok = missing == [ ] && unexpected == [ ];
      detail = { inherit missing unexpected; };
    };
in
map (name: run name cases.${name}) (builtins.attrNames cases)
