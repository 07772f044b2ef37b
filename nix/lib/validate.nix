# The part of `keeperd --check` that Nix can see: rules over the `settings` tree alone (not files from `configFiles`,
# not KEEPER_* variables from the environment file, not the host's interfaces).
# Written with builtins only, so scripts/layers/nix.sh can test it with a bare `nix-instantiate` (no nixpkgs here).
# Returns a list of NixOS-style assertions: { assertion = bool; message = string; }.
settings:

let
  inherit (builtins)
    all attrNames concatLists concatStringsSep elem filter floor foldl' head isAttrs isFloat isInt isList isString
    length match split toString
    ;

  attrsOr = v: if isAttrs v then v else { };
  listOr = v: if isList v then v else [ ];
  get = name: set: default: if isAttrs set && set ? ${name} && set.${name} != null then set.${name} else default;
  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  concatMapAttrs = f: set: concatLists (mapAttrsToList f set);
  isNumber = v: isInt v || isFloat v;
  inRange = lo: hi: v: isInt v && v >= lo && v <= hi;
  # "10.77.0.100/24 dev eth0 label eth0:vip" -> "10.77.0.100": keepalived's address lines carry options after it.
  firstWord = s: head (filter (w: isString w && w != "") (split "[ \t]+" s));
  addressOf = s: head (split "/" (firstWord s));
  family = s: if match ".*:.*" (addressOf s) != null then "inet6" else "inet";
  check = assertion: message: { inherit assertion; message = "services.keeper.settings: ${message}"; };

  global = attrsOr (get "global" settings { });
  instances = attrsOr (get "vrrp_instance" settings { });
  syncGroups = attrsOr (get "vrrp_sync_group" settings { });
  scripts = attrsOr (get "vrrp_script" settings { });
  virtualServers = attrsOr (get "virtual_server" settings { });

  globalVersion = get "vrrp_version" global 2;
  versionOf = inst: get "version" inst globalVersion;

  schedulers = [ "rr" "wrr" "lc" "wlc" "lblc" "lblcr" "dh" "sh" "sed" "nq" "fo" "ovf" "mh" "twos" ];

  instanceChecks = name: inst:
    let
      where = "vrrp_instance.${name}";
      vrid = get "virtual_router_id" inst null;
      priority = get "priority" inst 100;
      version = versionOf inst;
      auth = get "authentication" inst null;
      advert = get "advert_int" inst 1;
      vips = listOr (get "virtual_ipaddress" inst [ ]);
      vipFamilies = map family vips;
      peers = listOr (get "unicast_peer" inst [ ]);
      tracked = get "track_script" inst [ ];
      trackedNames = if isAttrs tracked then attrNames tracked else listOr tracked;
      authType = get "auth_type" (attrsOr auth) null;
    in
    [
      (check (get "interface" inst null != null) "${where}: `interface` is required")
      (check (vrid != null) "${where}: `virtual_router_id` is required")
      (check (vrid == null || inRange 1 255 vrid)
        "${where}: virtual_router_id must be an integer from 1 to 255, got ${toString vrid}")
      (check (inRange 1 255 priority) "${where}: priority must be an integer from 1 to 255, got ${toString priority}")
      (check (elem version [ 2 3 ]) "${where}: VRRP version must be 2 or 3, got ${toString version}")
      (check (auth == null || version == 2)
        "${where}: `authentication` needs VRRP version 2 (RFC 5798 removed it from version 3)")
      (check (authType == null || elem authType [ "PASS" "AH" ])
        "${where}: authentication.auth_type must be PASS or AH, got ${toString authType}")
      (check (!(isAttrs auth && auth ? auth_pass))
        ("${where}: authentication.auth_pass would be world-readable in the Nix store; set it in "
          + "services.keeper.environmentFile as KEEPER_VRRP_INSTANCE__${name}__AUTHENTICATION__AUTH_PASS"))
      (check (!isNumber advert || version != 2 || (floor advert == advert && advert >= 1 && advert <= 255))
        "${where}: VRRPv2 advert_int must be whole seconds from 1 to 255, got ${toString advert}")
      (check (!isNumber advert || version != 3 || (advert >= 0.01 && advert <= 40.95))
        "${where}: VRRPv3 advert_int must be from 0.01 to 40.95 seconds, got ${toString advert}")
      (check (all (f: f == head vipFamilies) vipFamilies)
        "${where}: virtual_ipaddress mixes IPv4 and IPv6; use one instance per address family")
      (check (!(elem "inet6" vipFamilies) || version == 3) "${where}: IPv6 virtual addresses need VRRP version 3")
      (check (vips == [ ] || all (p: family p == head vipFamilies) peers)
        "${where}: unicast_peer addresses must be of the same family as virtual_ipaddress")
      (check (all (s: scripts ? ${s}) trackedNames)
        "${where}: track_script names a vrrp_script that does not exist (${
          concatStringsSep ", " (filter (s: !(scripts ? ${s})) trackedNames)})")
    ];

  # Two instances may share a VRID only on different interfaces or address families (RFC 5798 5.2.3).
  instanceKeys = mapAttrsToList
    (name: inst: {
      inherit name;
      key = "${toString (get "interface" inst "")}/${toString (get "virtual_router_id" inst "")}/${
        family (head (listOr (get "virtual_ipaddress" inst [ ]) ++ [ "0.0.0.0" ]))}";
    })
    instances;
  duplicateVrids = filter
    (a: length (filter (b: b.key == a.key) instanceKeys) > 1)
    instanceKeys;

  groupMembers = name: listOr (get "group" (attrsOr syncGroups.${name}) [ ]);
  allMembers = concatLists (map groupMembers (attrNames syncGroups));
  count = x: xs: length (filter (y: y == x) xs);

  syncGroupChecks = name: _:
    let members = groupMembers name; in
    [
      (check (members != [ ]) "vrrp_sync_group.${name}: `group` must list at least one vrrp_instance")
      (check (all (m: instances ? ${m}) members)
        "vrrp_sync_group.${name}: group names instances that do not exist (${
          concatStringsSep ", " (filter (m: !(instances ? ${m})) members)})")
    ];

  virtualServerChecks = name: vs:
    let
      where = "virtual_server.${name}";
      kind = get "lb_kind" vs "NAT";
      algo = get "lb_algo" vs "wlc";
      proto = get "protocol" vs "TCP";
      port = get "port" vs null;
      realServers = attrsOr (get "real_server" vs { });
      rsPort = rs: get "port" rs port;
      mismatched = filter (n: port != null && rsPort realServers.${n} != port) (attrNames realServers);
    in
    [
      (check (get "ip" vs null != null || get "fwmark" vs null != null) "${where}: set `ip` (or `fwmark`)")
      (check (get "ip" vs null == null || inRange 0 65535 port)
        "${where}: `port` must be an integer from 0 to 65535 when `ip` is set")
      (check (elem proto [ "TCP" "UDP" "SCTP" ]) "${where}: protocol must be TCP, UDP or SCTP, got ${toString proto}")
      (check (elem kind [ "NAT" "DR" "TUN" ]) "${where}: lb_kind must be NAT, DR or TUN, got ${toString kind}")
      (check (elem algo schedulers)
        "${where}: lb_algo must be one of ${concatStringsSep " " schedulers}, got ${toString algo}")
      (check (kind == "NAT" || mismatched == [ ])
        "${where}: lb_kind ${toString kind} cannot translate ports; real_server ${
          concatStringsSep ", " mismatched} must use port ${toString port}")
    ]
    ++ concatMapAttrs
      (rsName: rs: [
        (check (get "ip" (attrsOr rs) null != null) "${where}.real_server.${rsName}: `ip` is required")
        (check (inRange 0 65535 (get "weight" (attrsOr rs) 1))
          "${where}.real_server.${rsName}: weight must be an integer from 0 to 65535")
      ])
      realServers;
in
concatMapAttrs instanceChecks instances
++ [
  (check (duplicateVrids == [ ])
    "instances ${concatStringsSep ", " (map (d: d.name) duplicateVrids)} share interface, address family and virtual_router_id")
  (check (all (m: count m allMembers == 1) allMembers)
    "an instance may belong to one vrrp_sync_group only (${
      concatStringsSep ", " (foldl' (acc: m: if count m allMembers > 1 && !(elem m acc) then acc ++ [ m ] else acc) [ ] allMembers)})")
]
++ concatMapAttrs syncGroupChecks syncGroups
++ concatMapAttrs virtualServerChecks virtualServers
