# The [Service] section of keeper.service as an attribute set (builtins only, so scripts/layers/nix.sh can render it
# and run `systemd-analyze security --offline` and `systemd-analyze verify` on it without nixpkgs).
# nix/module.nix passes it to systemd.services.keeper.serviceConfig.
{ keeperd # path of the keeperd binary
, kill # path of a kill(1)
, configPath
, user
, group
, environmentFile ? null
  # Run with full privileges before the check: records what the environment file held (see nix/module.nix).
, recordEnvironment ? null
  # A script user other than the daemon's: keeperd forks a launcher that needs these before dropping them.
, scriptLauncher ? false
  # keepalived's vrrp_rt_priority: SCHED_RR priority set by systemd, since the unprivileged daemon cannot.
, rtPriority ? null
  # keepalived's vrrp_no_swap: mlockall needs an unlimited RLIMIT_MEMLOCK.
, noSwap ? false
, watchdogSec ? "10s"
, extraArgs ? [ ]
}:

let
  inherit (builtins) concatStringsSep;
  capabilities = [ "CAP_NET_ADMIN" "CAP_NET_RAW" ]
    ++ (if scriptLauncher then [ "CAP_SETUID" "CAP_SETGID" "CAP_KILL" ] else [ ]);
  args = concatStringsSep " " ([ "--config" configPath ] ++ extraArgs);
in
{
  Type = "notify";
  NotifyAccess = "main";
  # The same check an operator runs by hand, with the unit's environment (KEEPER_* secrets) and capabilities:
  # a bad configuration fails here with keeperd's message instead of half-starting.
  ExecStartPre = (if recordEnvironment == null then [ ] else [ "+${recordEnvironment}" ])
  ++ [ "${keeperd} --check ${args}" ];
  ExecStart = "${keeperd} ${args}";
  # keeperd re-reads its files on SIGHUP and keeps the running configuration if the new one is invalid.
  ExecReload = "${kill} -HUP $MAINPID";
  Restart = "on-failure";
  RestartSec = "1s";
  # SIGTERM makes keeperd send priority 0 and release its VIPs; it bounds that itself, systemd bounds it again.
  TimeoutStopSec = "15s";

  # Static user (not DynamicUser): the control socket's group and the scripts' user need a stable identity.
  User = user;
  Group = group;
  RuntimeDirectory = "keeper";
  RuntimeDirectoryMode = "0750";
  UMask = "0027";

  AmbientCapabilities = capabilities;
  CapabilityBoundingSet = capabilities;
  NoNewPrivileges = true;
  ProtectSystem = "strict";
  ProtectHome = true;
  PrivateTmp = true;
  RestrictAddressFamilies = [ "AF_UNIX" "AF_INET" "AF_INET6" "AF_NETLINK" "AF_PACKET" ];
  SystemCallFilter = [ "@system-service" ];
  SystemCallErrorNumber = "EPERM";
  SystemCallArchitectures = "native";
  MemoryDenyWriteExecute = true;
  LockPersonality = true;

  # Beyond issue 11's list; none of these takes anything keeperd uses (no devices, no module loading: the module
  # loads ip_vs at boot; no clock, hostname, kernel log, cgroup or namespace changes; no setuid files).
  # Not set, on purpose: ProtectKernelTunables (keeperd may set per-interface sysctls), ProcSubset=pid (it reads
  # /proc/net), ProtectProc=invisible (track_process watches other users' processes), PrivateNetwork/IPAddressDeny
  # (it is a network daemon), PrivateUsers (capabilities held in a user namespace do not count in the host's
  # network namespace).
  PrivateDevices = true;
  PrivateMounts = true;
  ProtectClock = true;
  ProtectControlGroups = true;
  ProtectHostname = true;
  ProtectKernelLogs = true;
  ProtectKernelModules = true;
  RestrictNamespaces = true;
  RestrictRealtime = rtPriority == null;
  RestrictSUIDSGID = true;
  RemoveIPC = true;
}
// (if watchdogSec == null then { } else { WatchdogSec = watchdogSec; })
// (if environmentFile == null then { } else { EnvironmentFile = environmentFile; })
// (if rtPriority == null then { } else { CPUSchedulingPolicy = "rr"; CPUSchedulingPriority = rtPriority; })
  // (if noSwap then { LimitMEMLOCK = "infinity"; } else { })
