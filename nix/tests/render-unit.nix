# Renders nix/lib/unit.nix to a systemd unit file the way NixOS does (a list becomes one line per element), so
# scripts/layers/nix.sh can run `systemd-analyze verify` and `systemd-analyze security --offline` on it.
# Arguments come from --arg/--argstr; the defaults are the module's for a plain director.
{ keeperd ? "/usr/bin/keeperd"
, kill ? "/bin/kill"
, scriptLauncher ? false
, rtPriority ? null
}:

let
  inherit (builtins) attrNames concatStringsSep isBool isList toString;
  service = import ../lib/unit.nix {
    inherit keeperd kill scriptLauncher rtPriority;
    configPath = "/etc/keeper/keeper.toml";
    user = "keeper";
    group = "keeper";
    environmentFile = "-/etc/keeper/keeper.env";
    recordEnvironment = "/bin/true";
  };
  value = v: if isBool v then (if v then "true" else "false") else toString v;
  lines = name:
    let v = service.${name}; in
    if isList v then map (x: "${name}=${value x}") v else [ "${name}=${value v}" ];
in
''
  [Unit]
  Description=keeper VRRP and IPVS director

  [Service]
  ${concatStringsSep "\n" (builtins.concatLists (map lines (attrNames service)))}

  [Install]
  WantedBy=multi-user.target
''
