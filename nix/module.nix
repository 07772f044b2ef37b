# NixOS module: services.keeper (the director: keeperd) and services.keeper.realServer (the LVS-DR real-server role).
{ config, lib, pkgs, ... }:

let
  inherit (lib) mkEnableOption mkIf mkMerge mkOption types literalExpression;

  cfg = config.services.keeper;
  settingsFormat = pkgs.formats.toml { };

  configDir = "/etc/keeper";
  configPath = "${configDir}/keeper.toml";
  socketDir = "/run/keeper";

  # Typed options default to null ("not set"): drop them so keeperd applies its own defaults.
  effectiveSettings = lib.filterAttrsRecursive (_: v: v != null) cfg.settings;
  configFile = settingsFormat.generate "keeper.toml" effectiveSettings;

  # configFiles land in conf.d beside keeper.toml, in list order (keeperd reads conf.d/*.toml sorted by name).
  confDName = i: file:
    let base = baseNameOf (toString file); in
    "${lib.fixedWidthNumber 2 i}-${lib.removeSuffix ".toml" base}.toml";
  confDEntries = lib.imap1
    (i: file: {
      name = "keeper/conf.d/${confDName i file}";
      value.source = file;
    })
    cfg.configFiles;
  storeConfigFiles = lib.filter (f: lib.isPath f || lib.isStorePath (toString f)) cfg.configFiles;

  global = effectiveSettings.global or { };
  scriptUser =
    let v = global.script_user or null; in
    if v == null then null else lib.head (lib.splitString ":" v);
  scriptLauncher = scriptUser != null && scriptUser != cfg.user;
  schedulers = lib.unique (lib.mapAttrsToList (_: vs: vs.lb_algo or "wlc") (effectiveSettings.virtual_server or { }));
  hasNat = lib.any (vs: (vs.lb_kind or "NAT") == "NAT") (lib.attrValues (effectiveSettings.virtual_server or { }));

  firewall = import ./lib/firewall.nix { settings = effectiveSettings; };
  useNftables =
    (config.networking.firewall.backend or (if config.networking.nftables.enable then "nftables" else "iptables"))
    == "nftables";

  envFilePath = lib.removePrefix "-" cfg.environmentFile;
  # keeperd reads the environment at start only, so a changed environment file restarts it. "Changed" is by content:
  # secret managers rewrite their files on every activation, and an unchanged secret must not cause a failover.
  envHashFile = "${socketDir}/environment.sha256";
  envDigest = pkgs.writeShellScript "keeper-environment-digest" ''
    if [ -e ${lib.escapeShellArg envFilePath} ]; then
      ${pkgs.coreutils}/bin/sha256sum < ${lib.escapeShellArg envFilePath}
    else
      echo absent
    fi
  '';
  recordEnvironment = pkgs.writeShellScript "keeper-record-environment" ''
    ${envDigest} > ${envHashFile}
  '';

  # Option types for the common keys. Everything else keeperd understands can still be set (freeform).
  unset = t: mkOption { type = types.nullOr t; default = null; };
  unsetWith = t: description: mkOption { type = types.nullOr t; default = null; inherit description; };
  duration = types.either types.number types.str;
  freeform = types.submodule { freeformType = settingsFormat.type; };

  instanceOptions = {
    freeformType = settingsFormat.type;
    options = {
      interface = mkOption { type = types.str; description = "Interface VRRP runs on."; };
      virtual_router_id = mkOption { type = types.int; description = "VRID, 1 to 255, unique per interface and address family."; };
      priority = unsetWith types.int "1 to 255 (keeperd's default: 100).";
      state = unsetWith (types.enum [ "MASTER" "BACKUP" ]) "Initial state.";
      version = unsetWith (types.enum [ 2 3 ]) "VRRP version for this instance (default: global.vrrp_version, else 2).";
      advert_int = unsetWith duration "Advertisement interval: seconds, or a duration string such as \"100ms\" (v3).";
      virtual_ipaddress = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "10.77.0.100/24" ];
        description = "Virtual addresses this instance owns as MASTER.";
      };
      unicast_peer = unsetWith (types.listOf types.str) "Peers to advertise to by unicast instead of multicast.";
      nopreempt = unset types.bool;
      preempt_delay = unset duration;
      authentication = unsetWith
        (types.submodule {
          freeformType = settingsFormat.type;
          options.auth_type = mkOption { type = types.enum [ "PASS" "AH" ]; description = "VRRPv2 authentication type."; };
        })
        "VRRPv2 authentication. Put auth_pass in `environmentFile`, never here (the Nix store is world-readable).";
    };
  };

  realServerOptions = {
    freeformType = settingsFormat.type;
    options = {
      ip = mkOption { type = types.str; description = "Real server address."; };
      port = unsetWith types.port "Real server port (default: the virtual server's; must equal it for DR and TUN).";
      weight = unset types.int;
    };
  };

  virtualServerOptions = {
    freeformType = settingsFormat.type;
    options = {
      ip = unsetWith types.str "Virtual address (or set `fwmark`).";
      port = unset types.port;
      protocol = unset (types.enum [ "TCP" "UDP" "SCTP" ]);
      lb_algo = unsetWith
        (types.enum [ "rr" "wrr" "lc" "wlc" "lblc" "lblcr" "dh" "sh" "sed" "nq" "mh" "fo" "ovf" ])
        "IPVS scheduler; its kernel module is loaded at boot.";
      lb_kind = unset (types.enum [ "NAT" "DR" "TUN" ]);
      delay_loop = unset duration;
      persistence_timeout = unset duration;
      real_server = mkOption {
        type = types.attrsOf (types.submodule realServerOptions);
        default = { };
        description = "Real servers by name.";
      };
    };
  };

  settingsOptions = {
    freeformType = settingsFormat.type;
    options = {
      global = mkOption {
        default = { };
        description = "The `[global]` table (keepalived's global_defs).";
        type = types.submodule {
          freeformType = settingsFormat.type;
          options = {
            control_socket = mkOption {
              type = types.str;
              default = "${socketDir}/keeper.sock";
              description = "Control socket for keeperctl; must be under ${socketDir} (the unit's only writable place).";
            };
            router_id = unset types.str;
            vrrp_version = unsetWith (types.enum [ 2 3 ]) "Default VRRP version of every instance.";
            script_user = unsetWith types.str
              "User (optionally \"USER:GROUP\") that runs scripts. Another user than `services.keeper.user` gives the unit CAP_SETUID, CAP_SETGID and CAP_KILL for keeperd's script launcher.";
            vrrp_rt_priority = unsetWith (types.ints.between 1 99) "SCHED_RR priority; the unit sets CPUSchedulingPolicy=rr.";
            vrrp_no_swap = unsetWith types.bool "Lock keeperd in memory; the unit sets LimitMEMLOCK=infinity.";
          };
        };
      };
      vrrp_instance = mkOption {
        type = types.attrsOf (types.submodule instanceOptions);
        default = { };
        description = "VRRP instances by name.";
      };
      vrrp_sync_group = mkOption {
        type = types.attrsOf (types.submodule {
          freeformType = settingsFormat.type;
          options.group = mkOption { type = types.listOf types.str; description = "Member instances."; };
        });
        default = { };
        description = "Instances that change state together.";
      };
      vrrp_script = mkOption {
        type = types.attrsOf freeform;
        default = { };
        description = "Tracking scripts by name.";
      };
      virtual_server = mkOption {
        type = types.attrsOf (types.submodule virtualServerOptions);
        default = { };
        description = "IPVS virtual servers by name.";
      };
    };
  };
in
{
  options.services.keeper = {
    enable = mkEnableOption "keeperd, the hardened VRRP and IPVS director daemon";

    package = mkOption {
      type = types.package;
      default = pkgs.callPackage ./package.nix { };
      defaultText = literalExpression "pkgs.callPackage ./package.nix { } # from the keeper repository";
      description = "The keeper package (keeperd and keeperctl).";
    };

    user = mkOption {
      type = types.str;
      default = "keeper";
      description = "Static user keeperd runs as (created when left at the default).";
    };

    group = mkOption {
      type = types.str;
      default = "keeper";
      description = "Group of keeperd and of its control socket: members may use keeperctl.";
    };

    settings = mkOption {
      type = types.submodule settingsOptions;
      default = { };
      description = ''
        keeperd configuration, written to ${configPath}. Keys are keepalived's keywords in lower case; named
        things are tables. Checked at evaluation time as far as Nix can see (see docs/nix.md).
      '';
      example = literalExpression ''
        {
          vrrp_instance.VI_1 = {
            interface = "eth1";
            virtual_router_id = 51;
            priority = 150;
            advert_int = 1;
            virtual_ipaddress = [ "10.77.0.100/24" ];
            authentication.auth_type = "PASS";
          };
        }
      '';
    };

    configFiles = mkOption {
      type = types.listOf (types.either types.path types.str);
      default = [ ];
      example = literalExpression ''[ ./virtual-servers.toml "/etc/keeper/site/keeper.toml" ]'';
      description = ''
        Further TOML files, linked into ${configDir}/conf.d/ in list order and merged by keeperd after
        `settings`. Absolute paths outside the store are linked as they are (read at start and reload).
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/keeper.env";
      description = ''
        File of KEEPER_… variables (`__` nests: KEEPER_VRRP_INSTANCE__VI_1__AUTHENTICATION__AUTH_PASS=…) for
        secrets. It stays outside the Nix store; a change to it restarts keeper (keeperd reads the environment at
        start only). A leading `-` makes it optional, as in systemd.
      '';
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Accept VRRP (protocol 112) to 224.0.0.18 and ff02::12 and from every `unicast_peer`, IPVS connection sync
        (UDP 8848 to 224.0.0.81), and each `virtual_server`'s protocol and port to its address. Files from
        `configFiles` are not visible to Nix: open their services yourself.
      '';
    };

    watchdogSec = mkOption {
      type = types.nullOr types.str;
      default = "10s";
      description = "systemd WatchdogSec: keeperd pings from its event loop; a stalled loop is restarted. null disables.";
    };

    extraKernelModules = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "ip_vs_sh" "ip_vs_ftp" ];
      description = ''
        Kernel modules to load at boot besides ip_vs and the schedulers named in `settings` (for services in
        `configFiles`). The unit cannot load modules itself.
      '';
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Extra command-line arguments for keeperd.";
    };

    realServer = {
      vips = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "10.77.0.100" "fd77::100" ];
        description = ''
          LVS-DR real-server role: these VIPs go on `lo` as /32 (/128) and ARP is restricted (arp_ignore=1,
          arp_announce=2) so that only the director answers for them. Does not run keeperd.
        '';
      };
      interfaces = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "eth1" ];
        description = "NICs to set arp_ignore/arp_announce on as well as `all` (the kernel uses the larger value).";
      };
    };
  };

  config = mkMerge [
    (mkIf cfg.enable {
      assertions = import ./lib/validate.nix effectiveSettings ++ [
        {
          assertion = lib.hasPrefix "${socketDir}/" global.control_socket;
          message = "services.keeper.settings.global.control_socket must be under ${socketDir}/ (ProtectSystem=strict).";
        }
        {
          assertion = cfg.environmentFile == null
            || (lib.hasPrefix "/" envFilePath && !lib.hasPrefix builtins.storeDir envFilePath);
          message = "services.keeper.environmentFile must be an absolute path outside the Nix store (it holds secrets).";
        }
        {
          assertion = scriptUser != "root";
          message = "services.keeper.settings.global.script_user cannot be root: the unit's capability bounding set keeps scripts unprivileged.";
        }
        {
          assertion = scriptUser == null || scriptUser == cfg.user || config.users.users ? ${scriptUser};
          message = "services.keeper.settings.global.script_user names user `${toString scriptUser}`, which this system does not define.";
        }
      ];

      users.users = mkIf (cfg.user == "keeper") {
        keeper = {
          isSystemUser = true;
          inherit (cfg) group;
          description = "keeperd VRRP/IPVS director";
        };
      };
      users.groups = mkIf (cfg.group == "keeper") { keeper = { }; };

      environment.systemPackages = [ cfg.package ];
      environment.etc = {
        "keeper/keeper.toml".source = configFile;
      } // lib.listToAttrs confDEntries;

      # The unit has no CAP_SYS_MODULE: what IPVS needs is loaded at boot.
      boot.kernelModules = [ "ip_vs" ] ++ map (s: "ip_vs_${s}") schedulers ++ cfg.extraKernelModules;
      boot.kernel.sysctl = mkIf hasNat { "net.ipv4.ip_forward" = lib.mkDefault 1; };

      systemd.services.keeper = {
        description = "keeper VRRP and IPVS director";
        documentation = [ "file://${cfg.package}/share/doc/keeper/" ];
        wantedBy = [ "multi-user.target" ];
        wants = [ "network-online.target" ];
        after = [ "network-online.target" "systemd-modules-load.service" ];
        # A changed configuration reloads (SIGHUP; keeperd keeps the old one if the new one is invalid); any other
        # change to the unit (package, environment file path, hardening) restarts it.
        reloadTriggers = [ configFile ] ++ storeConfigFiles;
        serviceConfig = import ./lib/unit.nix {
          keeperd = lib.getExe' cfg.package "keeperd";
          kill = "${pkgs.coreutils}/bin/kill";
          inherit configPath scriptLauncher;
          recordEnvironment = if cfg.environmentFile == null then null else recordEnvironment;
          inherit (cfg) user group environmentFile watchdogSec extraArgs;
          rtPriority = global.vrrp_rt_priority or null;
          noSwap = global.vrrp_no_swap or false;
        };
      };

      # keeperd reads KEEPER_* variables at start only: a changed environment file restarts the service.
      systemd.paths.keeper-environment = mkIf (cfg.environmentFile != null) {
        description = "Watch keeper's environment file";
        wantedBy = [ "multi-user.target" ];
        pathConfig.PathChanged = envFilePath;
      };
      systemd.services.keeper-environment = mkIf (cfg.environmentFile != null) {
        description = "Restart keeper if its environment file changed";
        serviceConfig.Type = "oneshot";
        script = ''
          if [ "$(${envDigest})" != "$(cat ${envHashFile} 2>/dev/null)" ]; then
            ${config.systemd.package}/bin/systemctl try-restart keeper.service
          fi
        '';
      };

      # Both attributes are always defined (under conditions), so that reading the firewall's backend cannot
      # recurse into this definition.
      networking.firewall.extraInputRules = mkIf (cfg.openFirewall && useNftables) firewall.nftables;
      networking.firewall.extraCommands = mkIf (cfg.openFirewall && !useNftables) firewall.iptables;
    })

    (mkIf (cfg.realServer.vips != [ ]) {
      warnings = lib.optional cfg.enable
        "services.keeper: this host is both a director and a real server; its VIPs on lo conflict with VRRP's.";
      networking.interfaces.lo = {
        ipv4.addresses = map (a: { address = a; prefixLength = 32; })
          (lib.filter (a: !lib.hasInfix ":" a) cfg.realServer.vips);
        ipv6.addresses = map (a: { address = a; prefixLength = 128; })
          (lib.filter (lib.hasInfix ":") cfg.realServer.vips);
      };
      # Answer ARP only for addresses on the receiving NIC, and never source ARP from the VIP (seeds 002, 003).
      boot.kernel.sysctl = lib.listToAttrs (lib.concatMap
        (iface:
          let key = lib.replaceStrings [ "." ] [ "/" ] iface; in
          [
            (lib.nameValuePair "net.ipv4.conf.${key}.arp_ignore" 1)
            (lib.nameValuePair "net.ipv4.conf.${key}.arp_announce" 2)
          ])
        ([ "all" "default" ] ++ cfg.realServer.interfaces));
    })
  ];
}
