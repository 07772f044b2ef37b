# Firewall rules for a keeper director, from the `settings` tree (builtins only; tested by scripts/layers/nix.sh):
# - VRRP (IP protocol 112) to its multicast groups 224.0.0.18 and ff02::12, and from every `unicast_peer`;
# - the IPVS connection-sync daemon: UDP to its multicast group (224.0.0.81:8848 unless `global.lvs_sync_daemon`
#   says otherwise);
# - every `virtual_server` with an address and port: its protocol and port to that address only.
# Returns { nftables = lines for the NixOS firewall's input-allow chain; iptables = commands for its nixos-fw chain }.
{ settings }:

let
  inherit (builtins) attrNames concatLists concatStringsSep filter head isAttrs isList match split toString;

  attrsOr = v: if isAttrs v then v else { };
  listOr = v: if isList v then v else [ ];
  get = name: set: default: if isAttrs set && set ? ${name} && set.${name} != null then set.${name} else default;
  mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
  firstWord = s: head (filter (w: builtins.isString w && w != "") (split "[ \t]+" s));
  addressOf = s: head (split "/" (firstWord s));
  isV6 = a: match ".*:.*" a != null;
  unique = foldl (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
  foldl = builtins.foldl';

  global = attrsOr (get "global" settings { });
  instances = attrsOr (get "vrrp_instance" settings { });
  virtualServers = attrsOr (get "virtual_server" settings { });
  syncDaemon = attrsOr (get "lvs_sync_daemon" global { });
  syncPort = toString (get "port" syncDaemon 8848);
  syncGroup = get "group" syncDaemon "224.0.0.81";

  peers = unique (map addressOf (concatLists (mapAttrsToList (_: i: listOr (get "unicast_peer" i [ ])) instances)));
  peers4 = filter (a: !isV6 a) peers;
  peers6 = filter isV6 peers;

  services = filter (s: s != null) (mapAttrsToList
    (_: vs:
      let ip = get "ip" vs null; port = get "port" vs null; in
      if ip == null || port == null || port == 0 then null else {
        ip = addressOf ip;
        port = toString port;
        proto = builtins.replaceStrings [ "TCP" "UDP" "SCTP" ] [ "tcp" "udp" "sctp" ] (get "protocol" vs "TCP");
      })
    virtualServers);
  nftSet = xs: "{ ${concatStringsSep ", " xs} }";
  ipt = a: if isV6 a then "ip6tables" else "iptables";
in
{
  nftables = concatStringsSep "\n"
    ([
      "ip daddr 224.0.0.18 meta l4proto 112 accept comment \"VRRP\""
      "ip6 daddr ff02::12 meta l4proto 112 accept comment \"VRRP\""
      "ip daddr ${syncGroup} udp dport ${syncPort} accept comment \"IPVS connection sync\""
    ]
    ++ (if peers4 == [ ] then [ ] else [ "ip saddr ${nftSet peers4} meta l4proto 112 accept comment \"VRRP unicast peers\"" ])
    ++ (if peers6 == [ ] then [ ] else [ "ip6 saddr ${nftSet peers6} meta l4proto 112 accept comment \"VRRP unicast peers\"" ])
    ++ map
      (s: "${if isV6 s.ip then "ip6" else "ip"} daddr ${s.ip} ${s.proto} dport ${s.port} accept comment \"keeper virtual server\"")
      (unique services)) + "\n";

  iptables = concatStringsSep "\n"
    ([
      "iptables -A nixos-fw -d 224.0.0.18 -p 112 -j nixos-fw-accept"
      "ip6tables -A nixos-fw -d ff02::12 -p 112 -j nixos-fw-accept"
      "iptables -A nixos-fw -d ${syncGroup} -p udp --dport ${syncPort} -j nixos-fw-accept"
    ]
    ++ map (p: "${ipt p} -A nixos-fw -s ${p} -p 112 -j nixos-fw-accept") peers
    ++ map (s: "${ipt s.ip} -A nixos-fw -d ${s.ip} -p ${s.proto} --dport ${s.port} -j nixos-fw-accept") (unique services)) + "\n";
}
