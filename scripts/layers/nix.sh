# Nix layer, sourced by scripts/test-all (uses its `check`, `pass`, `fail`, `log` and `$top`).
#
# No nixpkgs and no binary cache can be reached here, so nothing is built with Nix and no NixOS module is evaluated.
# What runs, each with its own result:
#   - syntax of every .nix file (nix-instantiate --parse), deadnix --fail, nixpkgs-fmt --check;
#   - `nix flake check --no-build` against nix/tests/nixpkgs-stub: the flake's STRUCTURE only (see the stub);
#   - the module's builtins-only parts on a real Nix evaluator: the settings checks (nix/lib/validate.nix, one
#     result per case, and one per case for agreeing with `keeperd --check` on the same settings), the firewall
#     rules (loaded into real nftables and iptables in a private network namespace), the unit's [Service] section
#     (systemd-analyze verify and security --offline, with the exposure bounded);
#   - every VM test's script exactly as runNixOSTest gets it (preamble + _common.py + scenario): pyflakes with the
#     NixOS test driver's globals, and the preamble's `lab` executed.
# Tools from crates.io and PyPI are installed into a cache directory when missing (pinned versions).

nix_layer() {
  local cache=${KEEPER_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keeper-nix-tools}
  local deadnix_version=1.3.1 nixpkgs_fmt_version=1.3.0
  local work; work=$(mktemp -d -t keeper-nix.XXXXXX)
  local nix_config=$'experimental-features = nix-command flakes\nbuild-users-group =\nsubstituters ='
  local stub="$top/nix/tests/nixpkgs-stub"
  mkdir -p "$cache"

  nixrun() { NIX_CONFIG="$nix_config" "$@"; }

  # --- tools ----------------------------------------------------------------------------------------------------
  nix_tools() {
    local need=()
    [ "$("$cache/cargo/bin/deadnix" --version 2>/dev/null)" = "deadnix $deadnix_version" ] \
      || need+=("deadnix@$deadnix_version")
    # nixpkgs-fmt --version prints its version and exits 1: compare the text only.
    [[ "$("$cache/cargo/bin/nixpkgs-fmt" --version 2>/dev/null)" == *"$nixpkgs_fmt_version"* ]] \
      || need+=("nixpkgs-fmt@$nixpkgs_fmt_version")
    if ((${#need[@]})); then
      local t0=$SECONDS
      echo "installing ${need[*]} into $cache/cargo (cargo install --locked)"
      for crate in "${need[@]}"; do
        cargo install --quiet --locked --root "$cache/cargo" "$crate" || return 1
      done
      echo "cargo install took $((SECONDS - t0)) s"
    fi
    if ! PYTHONPATH="$cache/py" python3 -c 'import pyflakes, tomli_w' 2>/dev/null; then
      python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$cache/py" pyflakes==3.4.0 tomli-w==1.2.0 \
        || return 1
    fi
    command -v nix-instantiate >/dev/null && command -v nix >/dev/null
  }
  check "nix: tools (nix, deadnix $deadnix_version, nixpkgs-fmt $nixpkgs_fmt_version, pyflakes, tomli-w)" nix_tools
  export PATH="$cache/cargo/bin:$PATH"

  local nix_files
  nix_files=$(cd "$top" && { git ls-files -co --exclude-standard '*.nix' 2>/dev/null || find . -name '*.nix' -not -path './target/*'; } | sort -u)

  # --- syntax, dead code, formatting ----------------------------------------------------------------------------
  nix_parse_all() {
    local f bad=0
    for f in $nix_files; do
      nixrun nix-instantiate --parse "$top/$f" >/dev/null || { echo "parse error: $f"; bad=1; }
    done
    [ "$bad" -eq 0 ] && [ -n "$nix_files" ]
  }
  check "nix: nix-instantiate --parse on every .nix file" nix_parse_all
  # deadnix exits 0 on a file it cannot parse: the parse check above covers that.
  check "nix: deadnix --fail" bash -c "cd '$top' && deadnix --fail $(echo $nix_files)"
  check "nix: nixpkgs-fmt --check" bash -c "cd '$top' && nixpkgs-fmt --check $(echo $nix_files)"

  # --- the flake's structure against the stub ---------------------------------------------------------------------
  check "nix: nix flake check --no-build (nixpkgs stub: structure only)" \
    nixrun nix flake check --no-build --no-write-lock-file --override-input nixpkgs "path:$stub" "$top"

  # --- settings checks, and their agreement with keeperd --check ----------------------------------------------
  # Each case's verdict from nix/lib/validate.nix must match the expected messages, and (but for the Nix-only
  # rule) keeperd's verdict on the same settings rendered to TOML as the module does: `global.control_socket` set,
  # JSON to TOML, auth_pass passed as a KEEPER_… variable from the environment file.
  local keeperd="$top/target/debug/keeperd"
  cargo build --quiet -p keeper --bin keeperd || echo "cargo build of keeperd failed"
  if nixrun nix-instantiate --eval --strict --json "$top/nix/tests/validate-cases.nix" >"$work/validate.json"; then
    while IFS=$'\t' read -r kind status name detail; do
      if [ "$status" = ok ]; then pass "nix: $kind: $name"
      else echo "$name: $detail"; fail "nix: $kind: $name"; fi
    done < <(PYTHONPATH="$cache/py" python3 - "$work/validate.json" "$keeperd" "$work" <<'EOF'
import json, os, subprocess, sys
import tomli_w
cases, keeperd, work = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
for c in cases:
    print("settings check", "ok" if c["ok"] else "bad", c["name"], json.dumps(c["detail"]), sep="\t")
    if c["nixOnly"]:
        continue
    settings = c["settings"]
    settings.setdefault("global", {}).setdefault("control_socket", "/run/keeper/keeper.sock")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEPER_")}
    for name, inst in (settings.get("vrrp_instance") or {}).items():
        auth = inst.get("authentication")
        if isinstance(auth, dict) and auth.get("auth_type") == "PASS":
            env[f"KEEPER_VRRP_INSTANCE__{name}__AUTHENTICATION__AUTH_PASS"] = "s3cret"
    path = os.path.join(work, f"case-{c['name']}.toml")
    with open(path, "wb") as f:
        f.write(tomli_w.dumps(settings).encode())
    try:
        r = subprocess.run([keeperd, "--check", "--config", path], env=env, capture_output=True, text=True, timeout=30)
        rejects, out = r.returncode != 0, (r.stdout + r.stderr).strip()
    except OSError as e:
        rejects, out = None, f"keeperd did not run: {e}"
    agree = rejects == c["rejects"]
    detail = {"nix": c["got"], "keeperd": out}
    print("settings check agrees with keeperd --check", "ok" if agree else "bad", c["name"], json.dumps(detail), sep="\t")
EOF
)
  else
    fail "nix: settings checks (nix/tests/validate-cases.nix did not evaluate)"
  fi

  # --- firewall rules in real nftables and iptables ----------------------------------------------------------------
  nixrun nix-instantiate --eval --strict --json "$top/nix/tests/firewall-example.nix" >"$work/firewall.json"
  nix_firewall_nft() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nftables"])' "$work/firewall.json" >"$work/rules.nft" \
      || return 1
    # The NixOS firewall's table, reduced to what the rules need; the site include of the appliance as well.
    cat >"$work/table.nft" <<EOF
table inet nixos-fw {
  chain input { type filter hook input priority filter; policy drop; ct state new jump input-allow; }
  chain input-allow {
    include "$work/rules.nft"
    include "$work/no-such-dir/*.nft"
  }
}
EOF
    unshare -n sh -c "nft -f '$work/table.nft' && nft list chain inet nixos-fw input-allow" >"$work/nft.out" || return 1
    cat "$work/nft.out"
    # Every generated rule is loaded (nft prints protocol 112 as "vrrp").
    [ "$(grep -c 'accept comment' "$work/nft.out")" -eq "$(grep -c 'accept comment' "$work/rules.nft")" ] &&
      grep -q 'ip6 daddr ff02::12 meta l4proto vrrp accept' "$work/nft.out" &&
      grep -q 'ip daddr 10.77.0.100 tcp dport 80 accept' "$work/nft.out"
  }
  check "nix: firewall rules load into nftables (input-allow chain, site include glob)" nix_firewall_nft
  nix_firewall_ipt() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["iptables"])' "$work/firewall.json" >"$work/rules.sh" \
      || return 1
    unshare -n bash -ec "
      for t in iptables ip6tables; do \$t -N nixos-fw-accept; \$t -A nixos-fw-accept -j ACCEPT; \$t -N nixos-fw; done
      . '$work/rules.sh'
      iptables -S nixos-fw; ip6tables -S nixos-fw" >"$work/ipt.out" || return 1
    cat "$work/ipt.out"
    [ "$(grep -c -- '-j nixos-fw-accept' "$work/ipt.out")" -eq "$(grep -c -- '-j nixos-fw-accept' "$work/rules.sh")" ]
  }
  check "nix: firewall rules load into iptables (nixos-fw chain)" nix_firewall_ipt

  # --- the unit ----------------------------------------------------------------------------------------------------
  # systemd-analyze security's scale is 0 (best) to 10; measured 2.4 (plain), 2.5 (real-time), 2.7 (script launcher).
  local exposure_limit=3.0
  nix_unit() {
    local variant=$1 args=$2 dir="$work/unit-$1"
    mkdir -p "$dir"
    nixrun nix eval --impure --raw --expr "import $top/nix/tests/render-unit.nix $args" >"$dir/keeper.service" || return 1
    sed -i 's#^\(Exec[A-Za-z]*=\)/usr/bin/keeperd#\1/bin/true#' "$dir/keeper.service"
    local verify; verify=$(cd "$dir" && systemd-analyze verify ./keeper.service 2>&1)
    [ -z "$verify" ] || { echo "systemd-analyze verify: $verify"; return 1; }
    local score
    score=$(cd "$dir" && systemd-analyze security --offline=true --no-pager ./keeper.service 2>&1 |
      sed -nE 's/.*Overall exposure level for keeper.service: ([0-9.]+).*/\1/p')
    echo "keeper.service ($variant): exposure $score (limit $exposure_limit)"
    [ -n "$score" ] && python3 -c "import sys; sys.exit(0 if float('$score') <= $exposure_limit else 1)"
  }
  check "nix: unit (director) passes systemd-analyze verify, exposure <= $exposure_limit" nix_unit plain '{}'
  check "nix: unit (script launcher) passes systemd-analyze verify, exposure <= $exposure_limit" \
    nix_unit launcher '{ scriptLauncher = true; }'
  check "nix: unit (real-time) passes systemd-analyze verify, exposure <= $exposure_limit" \
    nix_unit realtime '{ rtPriority = 50; }'

  # --- the VM tests' scripts -----------------------------------------------------------------------------------------
  # The scripts exactly as runNixOSTest receives them: the stub's runNixOSTest is replaced by one returning testScript.
  if nixrun nix eval --impure --json --expr "
      let
        stubPkgs = ((import $stub/flake.nix).outputs { }).legacyPackages.x86_64-linux;
        pkgs = stubPkgs // { testers.runNixOSTest = t: t.testScript; };
      in
      import $top/vm-tests/nixos.nix { inherit pkgs; keeperModule = { }; keeperPackage = null; }" >"$work/scripts.json"; then
    local name
    for name in $(python3 -c 'import json,sys; print(" ".join(sorted(json.load(open(sys.argv[1])))))' "$work/scripts.json"); do
      check "nix: VM test script passes pyflakes, its lab preamble runs: $name" \
        env PYTHONPATH="$cache/py" python3 - "$work/scripts.json" "$name" <<'EOF'
import json, os, subprocess, sys
script = json.load(open(sys.argv[1]))[sys.argv[2]]
preamble = script.split("# --- vm-tests/scenarios/_common.py ---", 1)[0]
scope = {}
exec(preamble, scope)
lab = scope["lab"]
for key in ("impl", "unit", "iface", "vip", "vip6", "ip", "ip6"):
    assert key in lab, f"lab has no {key!r}"
path = os.path.join(os.path.dirname(sys.argv[1]), sys.argv[2] + ".py")
open(path, "w").write(script)
# The NixOS test driver's globals (nixos/lib/test-driver) and the lab's node names.
builtins = "start_all,test_script,machines,vlans,driver,log,os,create_machine,subtest,run_tests,join_all,retry," \
    "serial_stdout_off,serial_stdout_on,polling_condition,Machine,t,director,backup,rs1,rs2,client,vlan1"
r = subprocess.run([sys.executable, "-m", "pyflakes", path], env=dict(os.environ, PYFLAKES_BUILTINS=builtins),
                   capture_output=True, text=True)
# The script is three files run as one: an import that one of them repeats or does not use is no error.
benign = ("imported but unused", "redefinition of unused")
problems = [l for l in (r.stdout + r.stderr).splitlines() if l.strip() and not any(b in l for b in benign)]
print("\n".join(problems))
sys.exit(1 if problems else 0)
EOF
    done
  else
    fail "nix: VM test scripts (vm-tests/nixos.nix did not evaluate)"
  fi

  rm -rf "$work"
  unset -f nixrun nix_tools nix_parse_all nix_firewall_nft nix_firewall_ipt nix_unit
}

nix_layer
unset -f nix_layer
