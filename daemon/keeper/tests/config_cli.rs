//! `keeperd --check` and `--dump-config` as an operator runs them: real files, real process.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn keeperd(config: &Path, env: &[(&str, &str)], flag: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_keeperd"));
    cmd.arg(flag).arg("--config").arg(config);
    // Only the variables a test sets: the developer's own KEEPER_* must not leak in.
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("KEEPER_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("keeperd runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const BASE: &str = r#"
[global]
router_id = "t"

[vrrp_instance.VI_1]
interface = "eth0"
virtual_router_id = 51
priority = 100
advert_int = 1
authentication = { auth_type = "PASS", auth_pass = "1111" }
virtual_ipaddress = ["10.0.0.100/24 dev eth0 label eth0:1"]

[vrrp_sync_group.G]
group = ["VI_1"]
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&p, text).expect("write");
    p
}

/// The line (1-based) of the first occurrence of `needle` in `text`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle present")
        + 1
}

#[test]
fn every_example_passes_check() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("docs/examples exists") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = keeperd(&path, &[], "--check");
            assert!(out.status.success(), "{}: {}", path.display(), stderr(&out));
            n += 1;
        }
    }
    assert!(n >= 8, "expected the seed examples, found {n}");
}

#[test]
fn unknown_key_vrid_zero_and_dangling_member_all_reported_with_places() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = BASE
        .replace("virtual_router_id = 51", "virtual_router_id = 0")
        .replace("priority = 100", "priority = 100\nprioritty = 5")
        .replace("group = [\"VI_1\"]", "group = [\"VI_1\", \"VI_9\"]");
    let f = write(tmp.path(), "keeper.toml", &text);
    let out = keeperd(&f, &[], "--check");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let file = f.display().to_string();
    let vrid = format!(
        "{file}:{}:1: error: vrrp_instance.VI_1.virtual_router_id: must be between 1 and 255, got 0",
        line_of(&text, "virtual_router_id")
    );
    let unknown = format!(
        "{file}:{}:1: error: vrrp_instance.VI_1.prioritty: unknown key",
        line_of(&text, "prioritty")
    );
    let member = format!("{file}:{}:", line_of(&text, "VI_9"));
    assert!(err.contains(&vrid), "missing {vrid:?} in:\n{err}");
    assert!(err.contains(&unknown), "missing {unknown:?} in:\n{err}");
    assert!(
        err.lines().any(|l| l.starts_with(&member)
            && l.contains("vrrp_sync_group.G.group[1]: no vrrp_instance named \"VI_9\"")),
        "dangling member not placed in:\n{err}"
    );
    assert!(err.contains("3 error(s)"), "{err}");
}

#[test]
fn type_errors_are_all_collected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = BASE
        .replace("priority = 100", "priority = \"high\"")
        .replace("advert_int = 1", "advert_int = \"soon\"");
    let f = write(tmp.path(), "keeper.toml", &text);
    let err = stderr(&keeperd(&f, &[], "--check"));
    assert!(
        err.contains("vrrp_instance.VI_1.priority: expected an integer"),
        "{err}"
    );
    assert!(
        err.contains("vrrp_instance.VI_1.advert_int: invalid duration"),
        "{err}"
    );
}

#[test]
fn syntax_error_names_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = write(
        tmp.path(),
        "keeper.toml",
        "[global]\nrouter_id = \"x\"\nbroken = \n",
    );
    let err = stderr(&keeperd(&f, &[], "--check"));
    assert!(err.contains(&format!("{}:3:", f.display())), "{err}");
    assert!(err.contains("TOML syntax error"), "{err}");
}

#[test]
fn environment_overrides_show_in_dump_and_secrets_are_redacted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = write(tmp.path(), "keeper.toml", BASE);
    let out = keeperd(
        &f,
        &[
            ("KEEPER_VRRP_INSTANCE__VI_1__PRIORITY", "50"),
            (
                "KEEPER_VRRP_INSTANCE__VI_1__AUTHENTICATION__AUTH_PASS",
                "0111",
            ),
            ("KEEPER_GLOBAL__ROUTER_ID", "from-env"),
        ],
        "--dump-config",
    );
    let dump = stdout(&out);
    assert!(out.status.success(), "{}", stderr(&out));
    let parsed: toml::Table = toml::from_str(&dump).expect("the dump is TOML");
    let vi = &parsed["vrrp_instance"]["VI_1"];
    assert_eq!(vi["priority"].as_integer(), Some(50), "{dump}");
    assert_eq!(parsed["global"]["router_id"].as_str(), Some("from-env"));
    assert_eq!(
        vi["authentication"]["auth_pass"].as_str(),
        Some("<redacted>")
    );
    assert!(
        !dump.contains("0111") && !dump.contains("1111"),
        "secret leaked:\n{dump}"
    );
    assert!(
        parsed["vrrp_instance"].get("vi_1").is_none(),
        "env created a second instance:\n{dump}"
    );
}

#[test]
fn environment_errors_name_the_variable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = write(tmp.path(), "keeper.toml", BASE);
    let out = keeperd(
        &f,
        &[("KEEPER_VRRP_INSTANCE__VI_1__PRIORITY", "300")],
        "--check",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("environment variable KEEPER_VRRP_INSTANCE__VI_1__PRIORITY: error: vrrp_instance.VI_1.priority: must be between 1 and 255, got 300"),
        "{err}"
    );
}

#[test]
fn conf_d_layers_apply_in_lexical_order_after_the_main_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = write(tmp.path(), "keeper.toml", BASE);
    write(
        tmp.path(),
        "conf.d/10-prio.toml",
        "[vrrp_instance.VI_1]\npriority = 20\n",
    );
    write(
        tmp.path(),
        "conf.d/20-prio.toml",
        "[vrrp_instance.VI_1]\npriority = 30\n",
    );
    write(tmp.path(), "conf.d/ignored.conf", "this is not read");
    let out = keeperd(&f, &[], "--dump-config");
    let parsed: toml::Table = toml::from_str(&stdout(&out)).expect("TOML");
    assert_eq!(
        parsed["vrrp_instance"]["VI_1"]["priority"].as_integer(),
        Some(30)
    );
    // An error in a conf.d file is placed in that file.
    let bad = write(
        tmp.path(),
        "conf.d/30-bad.toml",
        "[vrrp_instance.VI_1]\nvirtual_router_id = 256\n",
    );
    let err = stderr(&keeperd(&f, &[], "--check"));
    assert!(
        err.contains(&format!(
            "{}:2:1: error: vrrp_instance.VI_1.virtual_router_id",
            bad.display()
        )),
        "{err}"
    );
}

#[test]
fn accepted_but_not_implemented_keys_are_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = write(
        tmp.path(),
        "keeper.toml",
        &format!(
            "{BASE}\n[global.lvs_timeouts]\ntcp = 900\n[virtual_server.v]\nip = \"10.0.0.1\"\nport = 80\nha_suspend = true\n"
        ),
    );
    let out = keeperd(&f, &[], "--check");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("virtual_server.v.ha_suspend: accepted, not implemented")
            && !stderr(&out).contains("global.lvs_timeouts.tcp: accepted")
            && !stderr(&out).contains("virtual_server.v.ip: accepted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let out = keeperd(Path::new("/nonexistent/keeper.toml"), &[], "--check");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("/nonexistent/keeper.toml"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_table_made_only_from_the_environment_is_placed_at_its_variable() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let f = write(
        tmp.path(),
        "keeper.toml",
        &BASE.replace(
            "authentication = { auth_type = \"PASS\", auth_pass = \"1111\" }\n",
            "",
        ),
    );
    // auth_type is missing: the error is about the table, which only the environment wrote.
    let out = keeperd(
        &f,
        &[(
            "KEEPER_VRRP_INSTANCE__VI_1__AUTHENTICATION__AUTH_PASS",
            "1111",
        )],
        "--check",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("environment variable KEEPER_VRRP_INSTANCE__VI_1__AUTHENTICATION__AUTH_PASS"),
        "{err}"
    );
    assert!(!err.contains("KEEPER_?"), "{err}");
}
