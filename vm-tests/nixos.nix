# The VM lab as NixOS tests: one pkgs.testers.runNixOSTest per scenario, with the nodes director, backup (keeperd
# through services.keeper), rs1, rs2 (httpd, services.keeper.realServer) and client on one segment (vlan 1: eth1).
#
# Each test's script is a Python preamble that defines `lab` (the facts the scenarios read) followed by one
# scenario file, unchanged: vm-tests/scenarios/NN-name.py (shared with the portable lab, vm-tests/run) or
# nix/vm-scenarios/*.py (NixOS-only: reload through switch-to-configuration, and the unit's hardening).
{ pkgs
, keeperModule
, keeperPackage
}:

let
  inherit (pkgs) lib;

  iface = "eth1";
  hosts = {
    director = 11;
    backup = 12;
    rs1 = 21;
    rs2 = 22;
    client = 31;
  };
  ip4 = n: "10.77.0.${toString hosts.${n}}";
  ip6 = n: "fd77::${toString hosts.${n}}";
  vip = "10.77.0.100";
  vip6 = "fd77::100";
  envFile = "/var/lib/keeper-lab/keeper.env";
  # A test secret: in the environment file (as the module requires), never in the settings.
  authPass = "s3cret";

  # The facts a scenario may read (same keys as the portable driver's `lab`).
  labFacts = {
    driver = "nixos";
    impl = "keeperd";
    unit = "keeper";
    inherit iface vip vip6;
    prefix = 24;
    prefix6 = 64;
    nodes = lib.attrNames hosts;
    directors = [ "director" "backup" ];
    real_servers = [ "rs1" "rs2" ];
    ip = lib.mapAttrs (n: _: ip4 n) hosts;
    ip6 = lib.mapAttrs (n: _: ip6 n) hosts;
    http_port = 80;
    config_dir = "/etc/keeper";
    control_socket = "/run/keeper/keeper.sock";
    env_file = envFile;
  };

  preamble = ''
    # --- prepended by vm-tests/nixos.nix: the lab as the NixOS test driver sees it ---
    import json as _lab_json

    lab = _lab_json.loads(${builtins.toJSON (builtins.toJSON labFacts)})
    # --- scenario ---
  '';

  directorSettings = { priority, state }: import ../nix/examples/lab-director.nix {
    inherit priority state iface vip vip6;
    realServers = lib.genAttrs labFacts.real_servers ip4;
  };

  common = name: { ... }: {
    virtualisation.memorySize = 512;
    # One lab NIC on vlan 1 with the lab's own addresses (not the driver's 192.168.1.x).
    virtualisation.interfaces.${iface}.vlan = 1;
    networking.interfaces.${iface} = {
      ipv4.addresses = [{ address = ip4 name; prefixLength = 24; }];
      ipv6.addresses = [{ address = ip6 name; prefixLength = 64; }];
    };
    environment.systemPackages = with pkgs; [ curl iputils tcpdump iproute2 ipvsadm procps ];
  };

  director = { priority, state }: { ... }: {
    imports = [ keeperModule ];
    services.keeper = {
      enable = true;
      package = keeperPackage;
      openFirewall = true;
      settings = directorSettings { inherit priority state; };
      environmentFile = envFile;
    };
    systemd.tmpfiles.rules = [
      "d /var/lib/keeper-lab 0700 root root -"
      "f ${envFile} 0600 root root - KEEPER_VRRP_INSTANCE__VI_1__AUTHENTICATION__AUTH_PASS=${authPass}"
    ];
    # A member of the socket group may use keeperctl; nobody else may (hardening scenario).
    users.users.operator = {
      isNormalUser = true;
      extraGroups = [ "keeper" ];
    };
    # The reload scenario switches to this and back: one more virtual service, applied by SIGHUP.
    specialisation.reload-probe.configuration = {
      services.keeper.settings.virtual_server.reload-probe = {
        ip = vip;
        port = 8080;
        protocol = "TCP";
        lb_algo = "rr";
        lb_kind = "DR";
        real_server.rs1 = {
          ip = ip4 "rs1";
          port = 8080;
          weight = 1;
        };
      };
    };
  };

  realServer = name: { ... }: {
    imports = [ keeperModule ];
    services.keeper.realServer = {
      vips = [ vip vip6 ];
      interfaces = [ iface ];
    };
    services.httpd = {
      enable = true;
      adminAddr = "lab@example.invalid";
      virtualHosts.localhost.documentRoot = pkgs.writeTextDir "index.html" "${name}\n";
    };
    networking.firewall.allowedTCPPorts = [ 80 ];
  };

  nodes = lib.mapAttrs (name: role: { imports = [ (common name) role ]; }) {
    director = director { priority = 150; state = "MASTER"; };
    backup = director { priority = 100; state = "BACKUP"; };
    rs1 = realServer "rs1";
    rs2 = realServer "rs2";
    client = { ... }: { };
  };

  mkTest = name: scenario: pkgs.testers.runNixOSTest {
    name = "keeper-${name}";
    inherit nodes;
    # The scenarios are shared with the portable driver and not written against the NixOS driver's type stubs;
    # pyflakes still runs on every script.
    skipTypeCheck = true;
    testScript = preamble + builtins.readFile scenario;
  };

  sharedDir = ./scenarios;
  isScenario = f: builtins.match "[0-9][0-9]-.*\\.py" f != null;
  shared = lib.optionals (builtins.pathExists sharedDir)
    (lib.filter isScenario (lib.attrNames (builtins.readDir sharedDir)));
in
lib.listToAttrs (map (f: lib.nameValuePair (lib.removeSuffix ".py" f) (mkTest (lib.removeSuffix ".py" f) (sharedDir + "/${f}"))) shared)
  // {
  reload-no-flap = mkTest "reload-no-flap" ../nix/vm-scenarios/reload-no-flap.py;
  hardening = mkTest "hardening" ../nix/vm-scenarios/hardening.py;
}
