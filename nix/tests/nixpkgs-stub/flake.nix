# A stand-in for nixpkgs with only the attributes keeper's flake.nix reaches at evaluation time, for
# `nix flake check --no-build --override-input nixpkgs path:…` where no nixpkgs can be fetched (scripts/layers/nix.sh).
# It checks the flake's STRUCTURE: every output exists with the right shape, every file it imports parses and takes
# the arguments it is given, every scenario file a VM test reads exists. It evaluates no NixOS module (there is no
# module system here), builds nothing, and says nothing about whether the real nixpkgs accepts the options used.
{
  outputs = _:
    let
      inherit (builtins) all attrNames functionArgs intersectAttrs isAttrs isFunction isList isPath isString
        pathExists;

      stub = system: name: derivation {
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" "echo stub > $out" ];
      };
      need = cond: msg: if cond then true else throw "nixpkgs-stub: ${msg}";

      lib = rec {
        inherit (builtins) attrNames filter head length listToAttrs mapAttrs;
        optionals = cond: xs: if cond then xs else [ ];
        optionalAttrs = cond: set: if cond then set else { };
        optionalString = cond: s: if cond then s else "";
        filterAttrs = pred: set: listToAttrs (map (n: { name = n; value = set.${n}; })
          (builtins.filter (n: pred n set.${n}) (attrNames set)));
        mapAttrsToList = f: set: map (n: f n set.${n}) (attrNames set);
        concatMapStrings = f: xs: builtins.concatStringsSep "" (map f xs);
        escapeShellArg = s: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] (toString s)}'";
        removeSuffix = suffix: s:
          let n = builtins.stringLength s; k = builtins.stringLength suffix; in
          if k <= n && builtins.substring (n - k) k s == suffix then builtins.substring 0 (n - k) s else s;
        genAttrs = names: f: listToAttrs (map (n: { name = n; value = f n; }) names);
        nameValuePair = name: value: { inherit name value; };
        mapAttrs' = f: set: listToAttrs (map (n: f n set.${n}) (attrNames set));
        importTOML = p: builtins.fromTOML (builtins.readFile p);
        fileset = {
          unions = xs: assert need (isList xs) "fileset.unions takes a list"; xs;
          maybeMissing = p: assert need (isPath p) "fileset.maybeMissing takes a path"; p;
          toSource = { root, fileset }:
            assert need (isPath root && pathExists root) "fileset.toSource: root must be an existing path";
            assert need (all (p: isPath p) fileset) "fileset.toSource: the fileset must be made of paths";
            root;
        };
        licenses = { mit = "MIT"; asl20 = "Apache-2.0"; };
        platforms.linux = [ "x86_64-linux" "aarch64-linux" ];

        # A NixOS configuration: each module (and each module it imports, as far as the files exist here) must be
        # a function or an attribute set whose top-level names are NixOS option roots (catches misspelt roots).
        nixosSystem = { modules, ... }:
          let
            system = builtins.head (map (m: m.nixpkgs.hostPlatform or null)
              (builtins.filter (m: isAttrs m && m ? nixpkgs) modules) ++ [ "x86_64-linux" ]);
          in
          assert need (all (checkModule system) modules) "nixosSystem: bad module";
          {
            config.system.build = {
              toplevel = stub system "nixos-system-keeper";
              images = genAttrs [ "qemu" "qemu-efi" "raw" "raw-efi" ] (v: stub system "keeper-image-${v}");
            };
          };

        optionRoots = [
          "assertions"
          "boot"
          "config"
          "console"
          "documentation"
          "environment"
          "fileSystems"
          "hardware"
          "i18n"
          "image"
          "imports"
          "meta"
          "networking"
          "nix"
          "nixpkgs"
          "options"
          "programs"
          "security"
          "services"
          "specialisation"
          "swapDevices"
          "system"
          "systemd"
          "time"
          "users"
          "virtualisation"
          "warnings"
          "zramSwap"
        ];
        checkModule = system: m:
          let
            v = if isPath m || isString m then import m else m;
            args = {
              config = { };
              inherit lib;
              pkgs = pkgsFor system;
              modulesPath = "/nixpkgs-stub/nixos/modules";
              name = "node";
              nodes = { };
            };
            r = if isFunction v then v args else v;
            unknown = builtins.filter (n: !(builtins.elem n optionRoots)) (attrNames r);
            present = i: !(isPath i || isString i) || pathExists i;
          in
          assert need (isFunction v || isAttrs v) "a module is neither a function nor an attribute set";
          assert need (isAttrs r) "a module function returned no attribute set";
          assert need (unknown == [ ]) "a module sets unknown top-level names: ${toString unknown}";
          all (checkModule system) (builtins.filter present (r.imports or [ ]));
      };

      pkgsFor = system:
        let
          drv = stub system;
          pkgs = {
            inherit lib system;
            callPackage = fn: args:
              let f = if isFunction fn then fn else import fn; in
              f (intersectAttrs (functionArgs f) pkgs // args);
            rustPlatform.buildRustPackage = a:
              assert need (a ? pname && a ? version && a ? src) "buildRustPackage: pname, version and src are required";
              assert need (pathExists a.cargoLock.lockFile) "buildRustPackage: cargoLock.lockFile does not exist";
              drv "${a.pname}-${a.version}";
            testers.runNixOSTest = t:
              assert need (isString t.testScript) "runNixOSTest: testScript must be a string";
              assert need (all (n: lib.checkModule system t.nodes.${n}) (attrNames t.nodes)) "runNixOSTest: bad node";
              assert need (attrNames t.nodes == [ "backup" "client" "director" "rs1" "rs2" ])
                "runNixOSTest: the lab's nodes are director, backup, rs1, rs2 and client";
              # Forces the script: every scenario file it reads must exist.
              drv "vm-test-${t.name}-${builtins.hashString "sha256" t.testScript}";
            mkShell = a: assert need (isAttrs a) "mkShell takes an attribute set"; drv "keeper-shell";
            writeTextDir = path: _: drv "text-${baseNameOf path}";
            formats.toml = _: { type = null; generate = name: _: drv name; };
          } // lib.genAttrs [
            "clippy"
            "rustfmt"
            "rust-analyzer"
            "nixpkgs-fmt"
            "deadnix"
            "ipvsadm"
            "keepalived"
            "qemu_kvm"
            "curl"
            "iputils"
            "tcpdump"
            "iproute2"
            "procps"
            "coreutils"
          ]
            drv;
        in
        pkgs;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] pkgsFor;
    };
}
