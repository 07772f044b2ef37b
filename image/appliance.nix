# The keeper director appliance: a minimal, hardened NixOS whose site configuration is read at boot from a small
# disk labelled KEEPER-SITE, so one image serves the master, the backup and any other site (docs/nix.md).
#
# The site disk (vfat, read-only, mounted at /etc/keeper/site; every file optional except keeper.toml):
#   keeper.toml        keeperd configuration (instances, virtual servers); merged after the image's base settings
#   keeper.env         KEEPER_* variables for secrets (auth_pass); read at start
#   firewall.nft       nftables rules added to the firewall's input-allow chain (virtual services, unicast peers)
#   network/*.network  systemd-networkd files (static addresses); without them every NIC uses DHCP
#   hostname           the host name
#   authorized_keys    SSH keys for root (there is no password login)
{ config, lib, pkgs, modulesPath, ... }:

let
  siteDir = "/etc/keeper/site";
  siteMount = "etc-keeper-site.mount";
  serial = if pkgs.stdenv.hostPlatform.isx86 then "ttyS0" else "ttyAMA0";
  # The site's schedulers are not known when the image is built: load every IPVS scheduler a stable kernel has.
  schedulers = [ "rr" "wrr" "lc" "wlc" "lblc" "lblcr" "dh" "sh" "sed" "nq" "fo" "ovf" "mh" ];
in
{
  imports = [
    "${modulesPath}/profiles/minimal.nix"
    "${modulesPath}/profiles/qemu-guest.nix"
  ];

  system.stateVersion = "26.05";
  networking.hostName = lib.mkDefault "keeper";

  # --- the site disk ----------------------------------------------------------------------------------------------
  fileSystems.${siteDir} = {
    device = "/dev/disk/by-label/KEEPER-SITE";
    fsType = "vfat";
    noCheck = true;
    # root:keeper 0640 / 0750: keeperd (group keeper) reads keeper.toml at start and on reload, root the rest.
    options = [
      "ro"
      "nofail"
      "x-systemd.device-timeout=10s"
      "nosuid"
      "nodev"
      "noexec"
      "uid=0"
      "gid=${toString config.users.groups.keeper.gid}"
      "fmask=0137"
      "dmask=0027"
    ];
  };
  # vfat needs numeric ids: pin them.
  users.users.keeper.uid = 780;
  users.groups.keeper.gid = 780;

  systemd.services.keeper-site = {
    description = "Apply the site disk's host name and network files";
    wantedBy = [ "multi-user.target" ];
    after = [ siteMount ];
    before = [ "systemd-networkd.service" "network-pre.target" ];
    wants = [ "network-pre.target" ];
    unitConfig.DefaultDependencies = false;
    serviceConfig = {
      Type = "oneshot";
      RemainAfterExit = true;
    };
    script = ''
      if [ -s ${siteDir}/hostname ]; then
        head -n 1 ${siteDir}/hostname | tr -d '\r\n' > /proc/sys/kernel/hostname
      fi
      if [ -d ${siteDir}/network ]; then
        mkdir -p /run/systemd/network
        for f in ${siteDir}/network/*.network ${siteDir}/network/*.netdev ${siteDir}/network/*.link; do
          if [ -f "$f" ]; then install -m 0644 "$f" /run/systemd/network/; fi
        done
      fi
    '';
  };

  # --- keeperd ----------------------------------------------------------------------------------------------------
  services.keeper = {
    enable = true;
    openFirewall = true;
    configFiles = [ "${siteDir}/keeper.toml" ];
    environmentFile = "-${siteDir}/keeper.env";
    extraKernelModules = map (s: "ip_vs_${s}") schedulers;
  };
  systemd.services.keeper = {
    after = [ siteMount "keeper-site.service" ];
    # No site configuration yet: keeperd is skipped, not failed (the console says why).
    unitConfig.ConditionPathExists = "${siteDir}/keeper.toml";
  };

  # --- network and firewall ---------------------------------------------------------------------------------------
  # eth0, eth1, … in bus order: the names a site's keeper.toml and network files use, the same on any machine.
  networking.usePredictableInterfaceNames = false;
  networking.useNetworkd = true;
  networking.useDHCP = false;
  systemd.network.networks."99-dhcp-fallback" = {
    matchConfig.Name = "en* eth*";
    networkConfig.DHCP = "yes";
  };
  networking.nftables.enable = true;
  networking.firewall = {
    enable = true;
    # The site's rules; a glob that matches nothing is not an error, so a site without firewall.nft still boots.
    extraInputRules = ''
      include "${siteDir}/*.nft"
    '';
  };
  systemd.services.nftables = {
    after = [ siteMount ];
    wants = [ siteMount ];
  };

  # --- access -----------------------------------------------------------------------------------------------------
  services.openssh = {
    enable = true;
    authorizedKeysFiles = [ "${siteDir}/authorized_keys" ];
    settings = {
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      PermitRootLogin = "prohibit-password";
    };
  };
  users.mutableUsers = false;
  users.users.root.hashedPassword = "!";
  # Root's keys come from the site disk, which Nix cannot see.
  users.allowNoPasswordLogin = true;
  security.sudo.enable = false;
  nix.enable = false;

  # --- console ----------------------------------------------------------------------------------------------------
  boot.kernelParams = [ "console=tty0" "console=${serial},115200n8" ];
  boot.loader.timeout = 1;
  boot.loader.grub.extraConfig = ''
    serial --unit=0 --speed=115200
    terminal_input serial console
    terminal_output serial console
  '';
  services.getty.helpLine = ''

    keeper director appliance. Site configuration: the disk labelled KEEPER-SITE, mounted at ${siteDir}
    (keeper.toml, keeper.env, firewall.nft, network/*.network, hostname, authorized_keys).
    keeperctl status | systemctl status keeper | journalctl -u keeper
  '';

  # --- hardening --------------------------------------------------------------------------------------------------
  boot.kernel.sysctl = {
    "kernel.kptr_restrict" = 2;
    "kernel.dmesg_restrict" = 1;
    "kernel.unprivileged_bpf_disabled" = 1;
    "net.core.bpf_jit_harden" = 2;
    "kernel.yama.ptrace_scope" = 2;
    "kernel.sysrq" = 0;
    "net.ipv4.conf.all.accept_redirects" = 0;
    "net.ipv4.conf.default.accept_redirects" = 0;
    "net.ipv6.conf.all.accept_redirects" = 0;
    "net.ipv6.conf.default.accept_redirects" = 0;
    "net.ipv4.conf.all.send_redirects" = 0;
    "net.ipv4.conf.all.accept_source_route" = 0;
    "net.ipv6.conf.all.accept_source_route" = 0;
  };
  environment.systemPackages = [ pkgs.ipvsadm pkgs.tcpdump ];

  # --- disk layout outside the image builders (`nixos-rebuild` targets); nixpkgs' image modules override these ----
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
    autoResize = true;
  };
  boot.growPartition = true;
  # Lower than mkDefault, so the image module's own `devices` replaces it instead of adding a second /dev/vda.
  boot.loader.grub.devices = lib.mkIf pkgs.stdenv.hostPlatform.isx86 (lib.mkOverride 1500 [ "/dev/vda" ]);
  boot.loader.systemd-boot.enable = lib.mkIf (!pkgs.stdenv.hostPlatform.isx86) (lib.mkDefault true);
  fileSystems."/boot" = lib.mkIf (!pkgs.stdenv.hostPlatform.isx86) {
    device = "/dev/disk/by-label/ESP";
    fsType = "vfat";
  };
}
