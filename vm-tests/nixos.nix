# The VM lab as NixOS tests: one pkgs.testers.runNixOSTest per scenario, with the nodes director, backup (keeperd
# through services.keeper), rs1, rs2 (httpd and a line echo service; services.keeper.realServer) and client on one
# segment (vlan 1, the NIC eth1).
#
# A test's script is: a preamble defining `lab` (the same keys as the portable driver's, vm-tests/lib/kvl), then
# vm-tests/scenarios/_common.py, then one scenario file, all unchanged: vm-tests/scenarios/NN-name.py (shared with
# vm-tests/run) or nix/vm-scenarios/*.py (NixOS-only: reload through switch-to-configuration, the unit's hardening).
# The directors run the portable lab's own keeperd configs (vm-tests/configs/keeper-{director,backup}.toml), moved
# to eth1 and with auth_pass moved to the environment file; nix/examples/director.nix stands in while they are absent.
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
  echoPort = 9000;
  envFile = "/var/lib/keeper-lab/keeper.env";
  # The stand-in config's test secret (the portable configs carry their own, moved to the environment file).
  examplePass = "s3cret";

  # --- the directors' configuration ---------------------------------------------------------------------------
  labConfig = node: ./configs + "/keeper-${node}.toml";
  # Every string naming the portable lab's NIC names this lab's.
  retarget = v:
    if builtins.isString v then builtins.replaceStrings [ "eth0" ] [ iface ] v
    else if builtins.isList v then map retarget v
    else if builtins.isAttrs v then lib.mapAttrs (_: retarget) v
    else v;
  rawConfig = node:
    if builtins.pathExists (labConfig node)
    then retarget (builtins.fromTOML (builtins.readFile (labConfig node)))
    else
      import ../nix/examples/director.nix
        {
          priority = if node == "director" then 100 else 50;
          state = if node == "director" then "MASTER" else "BACKUP";
          inherit iface vip vip6;
          realServers = { rs1 = ip4 "rs1"; rs2 = ip4 "rs2"; };
        };
  # auth_pass leaves the settings (the module refuses secrets in the store) for KEEPER_… variables.
  passOf = inst: inst.authentication.auth_pass or examplePass;
  withPass = cfg: lib.filterAttrs (_: inst: (inst.authentication.auth_type or null) == "PASS") (cfg.vrrp_instance or { });
  settingsOf = node:
    let cfg = rawConfig node; in
    cfg // {
      vrrp_instance = lib.mapAttrs
        (_: inst: inst // lib.optionalAttrs (inst ? authentication) {
          authentication = removeAttrs inst.authentication [ "auth_pass" ];
        })
        (cfg.vrrp_instance or { });
    };
  envOf = node: lib.mapAttrsToList
    (name: inst: "KEEPER_VRRP_INSTANCE__${name}__AUTHENTICATION__AUTH_PASS=${passOf inst}")
    (withPass (rawConfig node));

  firstOf = set: set.${lib.head (lib.attrNames set)};
  firstInstance = node: firstOf (rawConfig node).vrrp_instance;
  firstService = firstOf (rawConfig "director").virtual_server;
  firstCheck =
    let rs = firstOf firstService.real_server; in
      rs.http_get or rs.tcp_check or { };

  # What the reload scenario changes: the weight of the first real server of the HTTP service (the one the
  # scenario's client requests go to), else of the first virtual service.
  probe =
    let
      services = (settingsOf "director").virtual_server;
      http = lib.filter (n: (services.${n}.port or null) == 80) (lib.attrNames services);
      service = lib.head (http ++ lib.attrNames services);
      vs = services.${service};
      realServer = lib.head (lib.attrNames vs.real_server);
      rs = vs.real_server.${realServer};
    in
    {
      inherit service realServer;
      address = "${vs.ip}:${toString vs.port}";
      rsAddress = "${rs.ip}:${toString (rs.port or vs.port)}";
      weightBefore = rs.weight or 1;
      weight = (rs.weight or 1) + 2;
    };

  # --- the facts a scenario reads (the portable driver's keys, plus a few NixOS-only ones) -------------------
  labFacts = {
    impl = "keeperd";
    unit = "keeper";
    backend = "nixos";
    inherit iface vip vip6;
    ip = lib.mapAttrs (n: _: ip4 n) hosts;
    ip6 = lib.mapAttrs (n: _: ip6 n) hosts;
    http_port = 80;
    http_unit = "httpd";
    echo_port = echoPort;
    echo_unit = "tcp-echo";
    advert_int = (firstInstance "director").advert_int or 1;
    priority = {
      director = (firstInstance "director").priority or 100;
      backup = (firstInstance "backup").priority or 100;
    };
    checker = {
      delay_loop = firstService.delay_loop or 60;
      connect_timeout = firstCheck.connect_timeout or 5;
      retry = firstCheck.retry or 1;
      delay_before_retry = firstCheck.delay_before_retry or 1;
    };
    # NixOS tests run under KVM: no scaling of deadlines.
    slow = 1;
    # NixOS-only scenarios.
    real_servers = [ "rs1" "rs2" ];
    control_socket = "/run/keeper/keeper.sock";
    env_file = envFile;
    reload_probe = {
      service = probe.address;
      real_server = probe.rsAddress;
      inherit (probe) weight;
      weight_before = probe.weightBefore;
    };
  };

  sharedDir = ./scenarios;
  common = sharedDir + "/_common.py";
  preamble = ''
    # --- prepended by vm-tests/nixos.nix: the lab as the NixOS test driver sees it ---
    import json as _lab_json

    lab = _lab_json.loads(${builtins.toJSON (builtins.toJSON labFacts)})
    # --- vm-tests/scenarios/_common.py ---
  '' + lib.optionalString (builtins.pathExists common) (builtins.readFile common) + ''
    # --- scenario ---
  '';

  # --- nodes ------------------------------------------------------------------------------------------------------
  base = name: { ... }: {
    virtualisation.memorySize = 512;
    # One lab NIC on vlan 1 with the lab's own addresses (instead of the driver's 192.168.1.x).
    virtualisation.interfaces.${iface}.vlan = 1;
    networking.interfaces.${iface} = {
      ipv4.addresses = [{ address = ip4 name; prefixLength = 24; }];
      ipv6.addresses = [{ address = ip6 name; prefixLength = 64; }];
    };
    # What the scenarios run in the guests (vm-tests/scenarios/_common.py).
    environment.systemPackages = with pkgs; [ bash curl iputils iproute2 ipvsadm netcat-openbsd procps gawk ];
  };

  director = name: { ... }: {
    imports = [ keeperModule ];
    services.keeper = {
      enable = true;
      package = keeperPackage;
      openFirewall = true;
      settings = settingsOf name;
      environmentFile = envFile;
    };
    # Written once at boot, outside the store, like a deployed secret (the reload scenario then edits it).
    systemd.services.keeper-lab-env = {
      description = "Write the lab's keeper environment file";
      wantedBy = [ "keeper.service" ];
      before = [ "keeper.service" ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
      };
      script = ''
        mkdir -p -m 0700 ${dirOf envFile}
        if [ ! -e ${envFile} ]; then
          install -m 0600 /dev/null ${envFile}
          ${lib.concatMapStrings (line: "echo ${lib.escapeShellArg line} >> ${envFile}\n") (envOf name)}
        fi
      '';
    };
    # A member of the socket group may use keeperctl; nobody else may (hardening scenario).
    users.users.operator = {
      isNormalUser = true;
      extraGroups = [ "keeper" ];
    };
    # The reload scenario switches to this and back: one real server's weight changes, applied by SIGHUP. (Not a
    # new service: its firewall rule would reload the firewall, whose iptables reload drops all input meanwhile.)
    specialisation.reload-probe.configuration = {
      services.keeper.settings.virtual_server.${probe.service}.real_server.${probe.realServer}.weight =
        lib.mkForce probe.weight;
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
    # Every line comes back prefixed with this node's name (vm-tests/guest/tcp-echo).
    systemd.services.tcp-echo = {
      wantedBy = [ "multi-user.target" ];
      serviceConfig.ExecStart = "${pkgs.socat}/bin/socat TCP-LISTEN:${toString echoPort},reuseaddr,fork EXEC:${
        pkgs.writeShellScript "tcp-echo-connection" ''
          while IFS= read -r line; do echo "${name} $line"; done
        ''}";
    };
    networking.firewall.allowedTCPPorts = [ 80 echoPort ];
  };

  nodes = lib.mapAttrs (name: role: { imports = [ (base name) (role name) ]; }) {
    director = director;
    backup = director;
    rs1 = realServer;
    rs2 = realServer;
    client = _: { ... }: { };
  };

  mkTest = name: scenario: pkgs.testers.runNixOSTest {
    name = "keeper-${name}";
    inherit nodes;
    # The scripts are three files run as one (preamble, _common.py, scenario), shared with the portable driver:
    # not written against the driver's type stubs, and an import repeated across them is not an error.
    # scripts/layers/nix.sh runs pyflakes on each script and fails on everything else it reports.
    skipTypeCheck = true;
    skipLint = true;
    testScript = preamble + builtins.readFile scenario;
  };

  isScenario = f: builtins.match "[0-9][0-9]-.*\\.py" f != null;
  shared = lib.optionals (builtins.pathExists sharedDir)
    (lib.filter isScenario (lib.attrNames (builtins.readDir sharedDir)));
in
lib.listToAttrs
  (map
    (f: lib.nameValuePair (lib.removeSuffix ".py" f) (mkTest (lib.removeSuffix ".py" f) (sharedDir + "/${f}")))
    shared)
  // {
  reload-no-flap = mkTest "reload-no-flap" ../nix/vm-scenarios/reload-no-flap.py;
  hardening = mkTest "hardening" ../nix/vm-scenarios/hardening.py;
}
