//! `keeperd --check` on notify keys, as an operator runs it: a line that does not split is an
//! error at its file position; a missing program is a warning; keys keeperd acts on are not
//! reported as "accepted, not implemented".

use std::process::Command;

#[test]
fn check_reports_notify_lines_with_their_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("keeper.toml");
    let text = r#"[global]
notification_email = ["ops@example.com"]
notification_email_from = "keeper@example.com"
smtp_server = "192.0.2.25:2525"
smtp_alert = true
notify_script_timeout = "5s"

[vrrp_instance.VI_1]
interface = "eth0"
virtual_router_id = 51
virtual_ipaddress = ["10.0.0.100/24"]
notify_master = "/bin/true 'unterminated"
notify_backup = "/nonexistent/notify-backup.sh"
notify = "/bin/true"
"#;
    let check = |text: &str| {
        std::fs::write(&path, text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_keeperd"))
            .arg("--check")
            .arg("--config")
            .arg(&path)
            .output()
            .expect("keeperd runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, err) = check(text);
    assert!(!ok, "{err}");
    let place = format!("{}:12:", path.display());
    assert!(
        err.lines().any(|l| l.starts_with(&place)
            && l.contains("error")
            && l.contains("notify_master")
            && l.contains("missing terminating ' quote")),
        "{err}"
    );
    // Fixed: valid, with a warning for the program that is not there (yet).
    let (ok, err) = check(&text.replace("'unterminated", "'terminated'"));
    assert!(ok, "{err}");
    assert!(
        err.lines().any(|l| l.contains("warning")
            && l.contains("notify_backup")
            && l.contains("not an executable file")),
        "{err}"
    );
    for key in [
        "smtp_alert",
        "notify_script_timeout",
        "notification_email",
        "smtp_server",
        "notify_master",
        "vrrp_instance.VI_1.notify:",
    ] {
        assert!(
            !err.lines()
                .any(|l| l.contains(key) && l.contains("not implemented")),
            "{key} reported as not implemented:\n{err}"
        );
    }
}
