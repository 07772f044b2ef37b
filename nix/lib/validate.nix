# The part of `keeperd --check` (daemon/keeper/src/config/validate.rs) that Nix can see: rules over the `settings`
# tree alone, not over files from `configFiles`, KEEPER_* variables from the environment file or the host.
# One rule is Nix's own: no auth_pass in `settings`, since the Nix store is world-readable.
# Written with builtins only, so scripts/layers/nix.sh can test it with a bare `nix-instantiate`, and compare its
# verdicts with keeperd's on the same cases. Returns NixOS assertions: [ { assertion = bool; message = string; } ].
settings:

let
  inherit (builtins)
    all attrNames concatLists concatStringsSep elem filter floor foldl' head isAttrs isFloat isInt isList isString
    length match split toString
    ;

  attrsOr = v: if isAttrs v then v else { };
  listOr = v: if isList v then v else [ ];
  get = name: set: default: if isAttrs set && set ? ${name} && set.${name} != null then set.${name} else default;
  has = name: set: get name set null != null;
  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  concatMapAttrs = f: set: concatLists (mapAttrsToList f set);
  isNumber = v: isInt v || isFloat v;
  inRange = lo: hi: v: isInt v && v >= lo && v <= hi;
  # keepalived's address lines carry options after the address: "10.77.0.100/24 dev eth0 label eth0:vip".
  firstWord = s: head (filter (w: isString w && w != "") (split "[ \t]+" s) ++ [ "" ]);
  addressOf = s: head (split "/" (firstWord s));
  isV6 = s: match ".*:.*" (addressOf s) != null;
  family = s: if isV6 s then "IPv6" else "IPv4";
  check = assertion: message: { inherit assertion; message = "services.keeper.settings: ${message}"; };
  range = where: lo: hi: v:
    check (inRange lo hi v) "${where} must be between ${toString lo} and ${toString hi}, got ${toString v}";
  dups = xs: foldl' (acc: x: if length (filter (y: y == x) xs) > 1 && !(elem x acc) then acc ++ [ x ] else acc) [ ] xs;

  global = attrsOr (get "global" settings { });
  instances = attrsOr (get "vrrp_instance" settings { });
  syncGroups = attrsOr (get "vrrp_sync_group" settings { });
  scripts = attrsOr (get "vrrp_script" settings { });
  virtualServers = attrsOr (get "virtual_server" settings { });

  # A VRRPv3 interval in whole centiseconds 1..4095, or null (seconds as floats: 0.1 * 100 is not exactly 10).
  centiseconds = secs:
    let cs = floor (secs * 100 + 0.5); d = secs * 100 - cs; in
    if d < 0.000001 && d > -0.000001 && cs >= 1 && cs <= 4095 then cs else null;
  versionOf = inst: get "version" inst (get "vrrp_version" global 2);
  schedulers = [ "rr" "wrr" "lc" "wlc" "lblc" "lblcr" "dh" "sh" "sed" "nq" "mh" "fo" "ovf" ];

  instanceChecks = name: inst:
    let
      where = "vrrp_instance.${name}";
      version = versionOf inst;
      auth = get "authentication" inst null;
      authType = get "auth_type" (attrsOr auth) null;
      advert = get "advert_int" inst null;
      vips = listOr (get "virtual_ipaddress" inst [ ]);
      peers = get "unicast_peer" inst null;
      trackNames = map firstWord (listOr (get "track_script" inst [ ]));
    in
    [
      (check (isString (get "interface" inst null) && match "[ \t]*" (get "interface" inst "") == null)
        "${where}: missing key `interface` (or it is empty)")
      (check (has "virtual_router_id" inst) "${where}: missing key `virtual_router_id`")
    ]
    ++ (if has "virtual_router_id" inst then [ (range "${where}.virtual_router_id" 1 255 inst.virtual_router_id) ] else [ ])
    ++ (if has "priority" inst then [ (range "${where}.priority" 1 255 inst.priority) ] else [ ])
    ++ (if has "version" inst then [ (range "${where}.version" 2 3 inst.version) ] else [ ])
    ++ [
      (check (auth == null || version == 2)
        "${where}.authentication: authentication exists only in VRRPv2 (RFC 5798 removed it); remove it or use version 2")
      (check (auth == null || authType == "PASS")
        "${where}.authentication.auth_type: only PASS is supported (AH is deprecated by RFC 3768)")
      (check (!(isAttrs auth && auth ? auth_pass))
        ("${where}.authentication.auth_pass would be world-readable in the Nix store: put it in "
        + "services.keeper.environmentFile as KEEPER_VRRP_INSTANCE__${name}__AUTHENTICATION__AUTH_PASS=…"))
      # Durations written as strings ("100ms") are left to keeperd.
      (check (!isNumber advert || version != 2 || (floor advert == advert && advert >= 1 && advert <= 255))
        "${where}.advert_int: VRRPv2 adverts are whole seconds 1-255, got ${toString advert} (sub-second adverts need version 3)")
      (check (!isNumber advert || version == 2 || centiseconds advert != null)
        "${where}.advert_int: VRRPv3 adverts are 10 ms steps from 10 ms to 40.95 s, got ${toString advert}")
      (check (all (v: family v == family (head vips)) vips)
        "${where}.virtual_ipaddress: one instance serves one address family (use a second instance)")
      (check (peers == null || listOr peers != [ ])
        "${where}.unicast_peer: is empty: list the peers, or remove the key for multicast")
      (check (vips == [ ] || all (p: family p == family (head vips)) (listOr peers))
        "${where}.unicast_peer: every peer must be of the instance's address family (${family (head (vips ++ [ "" ]))})")
      (check (all (s: scripts ? ${s}) trackNames)
        "${where}.track_script: no vrrp_script named ${concatStringsSep ", " (filter (s: !(scripts ? ${s})) trackNames)}")
    ];

  # One VRID per interface and address family (an instance without addresses has no family yet).
  vridKeys = filter (k: k != null) (mapAttrsToList
    (name: inst:
      let vips = listOr (get "virtual_ipaddress" inst [ ]); in
      if vips == [ ] || !(has "virtual_router_id" inst) then null
      else { inherit name; key = "${toString (get "interface" inst "")} ${toString inst.virtual_router_id} ${family (head vips)}"; })
    instances);
  sharedVrid = dups (map (k: k.key) vridKeys);

  groupMembers = name: listOr (get "group" (attrsOr syncGroups.${name}) [ ]);
  allMembers = concatLists (map groupMembers (attrNames syncGroups));

  syncGroupChecks = name: _:
    let members = groupMembers name; in
    [
      (check (members != [ ]) "vrrp_sync_group.${name}.group: a sync group needs at least one member")
      (check (all (m: instances ? ${m}) members)
        "vrrp_sync_group.${name}.group: no vrrp_instance named ${concatStringsSep ", " (filter (m: !(instances ? ${m})) members)}")
    ];

  scriptChecks = name: s: [
    (check (isString (get "script" s null) && match "[ \t]*" (get "script" s "") == null)
      "vrrp_script.${name}: missing key `script`")
  ]
  ++ (if has "weight" s then [ (range "vrrp_script.${name}.weight" (-253) 253 s.weight) ] else [ ])
  ++ (if has "rise" s then [ (range "vrrp_script.${name}.rise" 1 1000000 s.rise) ] else [ ])
  ++ (if has "fall" s then [ (range "vrrp_script.${name}.fall" 1 1000000 s.fall) ] else [ ]);

  serviceKey = vs:
    if has "ip" vs && has "port" vs then "${get "protocol" vs "TCP"} ${addressOf vs.ip} ${toString vs.port}"
    else if has "fwmark" vs then "fwmark ${toString vs.fwmark}" else null;
  sharedServices = dups (filter (k: k != null) (map serviceKey (builtins.attrValues virtualServers)));

  virtualServerChecks = name: vs:
    let
      where = "virtual_server.${name}";
      kind = get "lb_kind" vs "NAT";
      realServers = attrsOr (get "real_server" vs { });
      rsKeys = mapAttrsToList (_: rs: "${addressOf (get "ip" rs "")} ${toString (get "port" rs (get "port" vs 0))}")
        (attrsOr realServers);
    in
    [
      (check (length (filter (k: has k vs) [ "ip" "fwmark" "group" ]) == 1)
        "${where}: set exactly one of `ip` (with `port`), `fwmark`, or `group`")
      (check (!(has "ip" vs) || has "port" vs) "${where}: missing key `port` (with `ip`)")
      (check (has "ip" vs || has "group" vs || !(has "port" vs)) "${where}.port: `port` goes with `ip`")
      (check (!(has "group" vs)) "${where}.group: virtual_server_group: groups are not supported yet")
      (check (elem (get "protocol" vs "TCP") [ "TCP" "UDP" "SCTP" ]) "${where}.protocol: must be TCP, UDP or SCTP")
      (check (elem kind [ "NAT" "DR" "TUN" ]) "${where}.lb_kind: must be NAT, DR or TUN")
      (check (elem (get "lb_algo" vs "wlc") schedulers)
        "${where}.lb_algo: must be one of ${concatStringsSep " " schedulers}")
      (check (!(elem (get "delay_loop" vs 60) [ 0 0.0 ])) "${where}.delay_loop: must be above 0")
      (check (dups rsKeys == [ ]) "${where}: two real servers have the same address and port (${concatStringsSep ", " (dups rsKeys)})")
    ]
    ++ (if has "port" vs then [ (range "${where}.port" 0 65535 vs.port) ] else [ ])
    ++ (if has "fwmark" vs then [ (range "${where}.fwmark" 1 4294967295 vs.fwmark) ] else [ ])
    ++ concatMapAttrs
      (rsName: rs:
        let rw = "${where}.real_server.${rsName}"; in
        [ (check (has "ip" rs) "${rw}: missing key `ip`") ]
        ++ (if has "port" rs then [ (range "${rw}.port" 0 65535 rs.port) ] else [ ])
        ++ (if has "weight" rs then [ (range "${rw}.weight" 0 65535 rs.weight) ] else [ ])
        ++ (if has "ip" rs && has "ip" vs && get "lb_kind" rs kind != "TUN" then [
          (check (isV6 rs.ip == isV6 vs.ip)
            "${rw}.ip: ${rs.ip} is not of the virtual server's family (${vs.ip}); only TUN forwards across families")
        ] else [ ]))
      realServers;
in
concatMapAttrs instanceChecks instances
++ [
  (check (sharedVrid == [ ])
    "vrrp_instance: ${concatStringsSep ", " (map (k: k.name) (filter (k: elem k.key sharedVrid) vridKeys))} use the same VRID on one interface and address family")
  (check (dups allMembers == [ ])
    "vrrp_sync_group: ${concatStringsSep ", " (dups allMembers)} is a member of more than one sync group")
  (check (sharedServices == [ ])
    "virtual_server: two virtual servers serve ${concatStringsSep ", " sharedServices}")
]
++ concatMapAttrs syncGroupChecks syncGroups
++ concatMapAttrs scriptChecks scripts
++ concatMapAttrs virtualServerChecks virtualServers
