# keeperd and keeperctl, built from this repository with nixpkgs' Rust tooling.
# Cargo.lock is the only dependency pin: importCargoLock reads it, so there is no vendor hash to keep in sync.
{ lib
, rustPlatform
}:

let
  workspace = lib.importTOML ../Cargo.toml;
  root = ../.;
  # Only what the build reads: a change to flake.nix, the docs' wording or the VM scenarios does not rebuild keeper.
  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../daemon
      (lib.fileset.maybeMissing ../README.md)
      (lib.fileset.maybeMissing ../docs)
      (lib.fileset.maybeMissing ../vm-tests/configs)
    ];
  };
in
rustPlatform.buildRustPackage {
  pname = "keeper";
  inherit (workspace.workspace.package) version;
  inherit src;

  cargoLock.lockFile = ../Cargo.lock;

  # `cargo build` at a virtual workspace root builds every member; both binaries come from the `keeper` crate.
  cargoBuildFlags = [ "--workspace" ];
  # The tests that need no root: the `netns-tests` feature (namespaces, raw sockets) stays off in the sandbox.
  cargoTestFlags = [ "--workspace" ];
  doCheck = true;

  postInstall = ''
    docdir=$out/share/doc/keeper
    mkdir -p "$docdir"
    for f in README.md docs/*.md; do
      if [ -f "$f" ]; then install -m 0644 "$f" "$docdir/"; fi
    done
    if [ -d vm-tests/configs ]; then
      mkdir -p "$docdir/examples"
      for f in vm-tests/configs/*; do
        if [ -f "$f" ]; then install -m 0644 "$f" "$docdir/examples/"; fi
      done
    fi
  '';

  meta = {
    description = "Hardened VRRP (v2/v3) and Linux IPVS director daemon, a keepalived replacement";
    license = with lib.licenses; [ mit asl20 ];
    mainProgram = "keeperd";
    platforms = lib.platforms.linux;
  };
}
