{
  description = "keeper: a hardened VRRP + Linux IPVS director (keepalived replacement), its NixOS module and appliance";

  # A stable release branch (docs/nix.md says why this one). No flake.lock is committed: Nix writes it on first use.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      # x86_64 boots the image with BIOS (a plain `qemu-system-x86_64 disk.qcow2`), aarch64 needs UEFI.
      imageVariant = system: if system == "x86_64-linux" then "qemu" else "qemu-efi";
      applianceName = system: if system == "x86_64-linux" then "appliance" else "appliance-aarch64";
      mkAppliance = system: lib.nixosSystem {
        modules = [
          self.nixosModules.default
          ./image/appliance.nix
          {
            nixpkgs.hostPlatform = system;
            services.keeper.package = self.packages.${system}.default;
          }
        ];
      };

      vmTests = system: pkgs: import ./vm-tests/nixos.nix {
        inherit pkgs;
        keeperModule = self.nixosModules.default;
        keeperPackage = self.packages.${system}.default;
      };
    in
    {
      overlays.default = final: _prev: {
        keeper = final.callPackage ./nix/package.nix { };
      };

      packages = forAllSystems (system: pkgs: rec {
        keeper = pkgs.callPackage ./nix/package.nix { };
        default = keeper;
        image = self.nixosConfigurations.${applianceName system}.config.system.build.images.${imageVariant system};
      });

      # An attribute set (not the bare path) so that Nix 2.8's `flake check` accepts it; errors still name the file.
      nixosModules.default = { imports = [ ./nix/module.nix ]; };

      nixosConfigurations = {
        appliance = mkAppliance "x86_64-linux";
        appliance-aarch64 = mkAppliance "aarch64-linux";
      };

      # `nix flake check`: the package (its checkPhase runs the tests that need no root) and every VM test.
      checks = forAllSystems (system: pkgs:
        { package = self.packages.${system}.default; }
        // lib.mapAttrs' (name: test: lib.nameValuePair "vm-${name}" test) (vmTests system pkgs));

      devShells = forAllSystems (system: pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${system}.default ];
          packages = with pkgs; [ clippy rustfmt rust-analyzer nixpkgs-fmt deadnix ipvsadm keepalived qemu_kvm ];
        };
      });

      formatter = forAllSystems (_system: pkgs: pkgs.nixpkgs-fmt);
    };
}
