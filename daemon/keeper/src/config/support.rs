//! Which configuration keys keeperd acts on. A key that is accepted by the schema but matched by
//! no pattern here is reported by `keeperd --check` and logged at start as "accepted, not
//! implemented": never silently ignored. Each feature adds its keys here when it lands.

use super::node::Node;
use super::{Diagnostic, Severity};

/// Dotted key patterns; `*` matches any one segment (a name).
pub const IMPLEMENTED: &[&str] = &[
    "global.log_level",
    "global.router_id",
    "global.vrrp_version",
    "global.vrrp_skip_check_adv_addr",
    "global.vrrp_strict",
    "global.vrrp_garp_interval",
    "global.vrrp_gna_interval",
    "global.vrrp_garp_master_delay",
    "global.vrrp_garp_master_repeat",
    "global.vrrp_garp_master_refresh",
    "global.vrrp_garp_master_refresh_repeat",
    "global.vrrp_higher_prio_send_advert",
    "global.vrrp_startup_delay",
    "global.dynamic_interfaces",
    // Hardened runtime (privilege.rs, launcher.rs, control.rs, metrics.rs).
    "global.user",
    "global.script_user",
    "global.control_socket",
    "global.control_socket_group",
    "global.metrics_listen",
    "global.vrrp_rt_priority",
    "global.vrrp_no_swap",
    "vrrp_instance.*.state",
    "vrrp_instance.*.interface",
    "vrrp_instance.*.version",
    "vrrp_instance.*.virtual_router_id",
    "vrrp_instance.*.priority",
    "vrrp_instance.*.advert_int",
    "vrrp_instance.*.authentication.auth_type",
    "vrrp_instance.*.authentication.auth_pass",
    "vrrp_instance.*.virtual_ipaddress",
    "vrrp_instance.*.virtual_ipaddress_excluded",
    "vrrp_instance.*.virtual_routes",
    "vrrp_instance.*.use_vmac",
    "vrrp_instance.*.track_interface",
    "vrrp_sync_group.*.group",
    "vrrp_sync_group.*.sync_group_tracking_weight",
    "vrrp_sync_group.*.notify_master",
    "vrrp_sync_group.*.notify_backup",
    "vrrp_sync_group.*.notify_fault",
    "vrrp_sync_group.*.notify_stop",
    "vrrp_sync_group.*.notify",
    "vrrp_sync_group.*.smtp_alert",
    "vrrp_instance.*.vmac_xmit_base",
    "vrrp_instance.*.virtual_rules",
    "vrrp_instance.*.nopreempt",
    "vrrp_instance.*.preempt_delay",
    "vrrp_instance.*.accept",
    "vrrp_instance.*.mcast_src_ip",
    "vrrp_instance.*.unicast_src_ip",
    "vrrp_instance.*.unicast_peer",
    "vrrp_instance.*.garp_master_delay",
    "vrrp_instance.*.garp_master_repeat",
    "vrrp_instance.*.garp_master_refresh",
    "vrrp_instance.*.garp_master_refresh_repeat",
    "vrrp_instance.*.higher_prio_send_advert",
    // IPVS (src/lvs)
    "global.lvs_flush",
    "global.lvs_flush_on_stop",
    "global.lvs_timeouts.tcp",
    "global.lvs_timeouts.tcpfin",
    "global.lvs_timeouts.udp",
    "global.lvs_sync_daemon.interface",
    "global.lvs_sync_daemon.inst",
    "global.lvs_sync_daemon.id",
    "global.lvs_sync_daemon.maxlen",
    "global.lvs_sync_daemon.port",
    "global.lvs_sync_daemon.ttl",
    "global.lvs_sync_daemon.group",
    "global.expire_quiescent_template",
    "vrrp_instance.*.lvs_sync_daemon_interface",
    "virtual_server_group.*",
    "virtual_server.*.ip",
    "virtual_server.*.port",
    "virtual_server.*.fwmark",
    "virtual_server.*.group",
    "virtual_server.*.protocol",
    "virtual_server.*.lb_algo",
    "virtual_server.*.lb_kind",
    "virtual_server.*.sh-port",
    "virtual_server.*.sh-fallback",
    "virtual_server.*.mh-port",
    "virtual_server.*.mh-fallback",
    "virtual_server.*.ops",
    "virtual_server.*.ip_family",
    "virtual_server.*.persistence_engine",
    "virtual_server.*.persistence_timeout",
    "virtual_server.*.persistence_granularity",
    "virtual_server.*.sorry_server",
    "virtual_server.*.sorry_server_inhibit",
    "virtual_server.*.sorry_server_lvs_method",
    "virtual_server.*.inhibit_on_failure",
    "virtual_server.*.quorum",
    "virtual_server.*.hysteresis",
    "virtual_server.*.real_server.*.ip",
    "virtual_server.*.real_server.*.port",
    "virtual_server.*.real_server.*.weight",
    "virtual_server.*.real_server.*.lb_kind",
    "virtual_server.*.real_server.*.inhibit_on_failure",
    "virtual_server.*.real_server.*.uthreshold",
    "virtual_server.*.real_server.*.lthreshold",
    // --- notify scripts, notify_fifo, SMTP alerts (notify/) ---
    "global.notification_email",
    "global.notification_email_from",
    "global.smtp_server",
    "global.smtp_helo_name",
    "global.smtp_connect_timeout",
    "global.smtp_alert",
    "global.smtp_alert_vrrp",
    "global.notify_fifo",
    "global.notify_script_timeout",
    "global.script_user",
    "vrrp_instance.*.notify_master",
    "vrrp_instance.*.notify_backup",
    "vrrp_instance.*.notify_fault",
    "vrrp_instance.*.notify_stop",
    "vrrp_instance.*.notify",
    "vrrp_instance.*.smtp_alert",
    // vrrp_sync_group.*.{notify_master,notify_backup,notify_fault,notify_stop,notify,smtp_alert}
    // are acted on once the sync-group coordinator calls `Notifier::group`.
    // --- end of notify keys
    // --- health checks (check/)
    "virtual_server.*.delay_loop",
    "virtual_server.*.alpha",
    "virtual_server.*.omega",
    "virtual_server.*.virtualhost",
    "virtual_server.*.connect_timeout",
    "virtual_server.*.retry",
    "virtual_server.*.delay_before_retry",
    "virtual_server.*.warmup",
    "virtual_server.*.real_server.*.ip",
    "virtual_server.*.real_server.*.port",
    "virtual_server.*.real_server.*.notify_up",
    "virtual_server.*.real_server.*.notify_down",
    "virtual_server.*.real_server.*.alpha",
    "virtual_server.*.real_server.*.delay_loop",
    "virtual_server.*.real_server.*.connect_timeout",
    "virtual_server.*.real_server.*.retry",
    "virtual_server.*.real_server.*.delay_before_retry",
    "virtual_server.*.real_server.*.warmup",
    "virtual_server.*.real_server.*.virtualhost",
    "virtual_server.*.real_server.*.tcp_check.connect_timeout",
    "virtual_server.*.real_server.*.tcp_check.retry",
    "virtual_server.*.real_server.*.tcp_check.nb_get_retry",
    "virtual_server.*.real_server.*.tcp_check.delay_before_retry",
    "virtual_server.*.real_server.*.tcp_check.warmup",
    "virtual_server.*.real_server.*.tcp_check.connect_ip",
    "virtual_server.*.real_server.*.tcp_check.connect_port",
    "virtual_server.*.real_server.*.tcp_check.bindto",
    "virtual_server.*.real_server.*.tcp_check.delay_loop",
    "virtual_server.*.real_server.*.tcp_check.alpha",
    "virtual_server.*.real_server.*.http_get.connect_timeout",
    "virtual_server.*.real_server.*.http_get.retry",
    "virtual_server.*.real_server.*.http_get.nb_get_retry",
    "virtual_server.*.real_server.*.http_get.delay_before_retry",
    "virtual_server.*.real_server.*.http_get.warmup",
    "virtual_server.*.real_server.*.http_get.connect_ip",
    "virtual_server.*.real_server.*.http_get.connect_port",
    "virtual_server.*.real_server.*.http_get.bindto",
    "virtual_server.*.real_server.*.http_get.delay_loop",
    "virtual_server.*.real_server.*.http_get.alpha",
    "virtual_server.*.real_server.*.http_get.virtualhost",
    "virtual_server.*.real_server.*.http_get.sni",
    "virtual_server.*.real_server.*.http_get.verify_cert",
    "virtual_server.*.real_server.*.http_get.ca_file",
    "virtual_server.*.real_server.*.http_get.url.*.path",
    "virtual_server.*.real_server.*.http_get.url.*.status_code",
    "virtual_server.*.real_server.*.http_get.url.*.digest",
    "virtual_server.*.real_server.*.http_get.url.*.regex",
    "virtual_server.*.real_server.*.http_get.url.*.virtualhost",
    "virtual_server.*.real_server.*.ssl_get.connect_timeout",
    "virtual_server.*.real_server.*.ssl_get.retry",
    "virtual_server.*.real_server.*.ssl_get.nb_get_retry",
    "virtual_server.*.real_server.*.ssl_get.delay_before_retry",
    "virtual_server.*.real_server.*.ssl_get.warmup",
    "virtual_server.*.real_server.*.ssl_get.connect_ip",
    "virtual_server.*.real_server.*.ssl_get.connect_port",
    "virtual_server.*.real_server.*.ssl_get.bindto",
    "virtual_server.*.real_server.*.ssl_get.delay_loop",
    "virtual_server.*.real_server.*.ssl_get.alpha",
    "virtual_server.*.real_server.*.ssl_get.virtualhost",
    "virtual_server.*.real_server.*.ssl_get.sni",
    "virtual_server.*.real_server.*.ssl_get.verify_cert",
    "virtual_server.*.real_server.*.ssl_get.ca_file",
    "virtual_server.*.real_server.*.ssl_get.url.*.path",
    "virtual_server.*.real_server.*.ssl_get.url.*.status_code",
    "virtual_server.*.real_server.*.ssl_get.url.*.digest",
    "virtual_server.*.real_server.*.ssl_get.url.*.regex",
    "virtual_server.*.real_server.*.ssl_get.url.*.virtualhost",
    "virtual_server.*.real_server.*.misc_check.misc_path",
    "virtual_server.*.real_server.*.misc_check.misc_timeout",
    "virtual_server.*.real_server.*.misc_check.misc_dynamic",
    "virtual_server.*.real_server.*.misc_check.user",
    "virtual_server.*.real_server.*.misc_check.warmup",
    "virtual_server.*.real_server.*.misc_check.retry",
    "virtual_server.*.real_server.*.misc_check.delay_before_retry",
    "virtual_server.*.real_server.*.misc_check.delay_loop",
    "virtual_server.*.real_server.*.misc_check.alpha",
    // --- health checks II: UDP, DNS, ICMP, SMTP, file, quorum (check/); every key of these
    // checker tables is acted on.
    "virtual_server.*.quorum",
    "virtual_server.*.hysteresis",
    "virtual_server.*.quorum_up",
    "virtual_server.*.quorum_down",
    "virtual_server.*.real_server.*.weight",
    "virtual_server.*.real_server.*.udp_check.*",
    "virtual_server.*.real_server.*.dns_check.*",
    "virtual_server.*.real_server.*.ping_check.*",
    "virtual_server.*.real_server.*.smtp_check.*",
    "virtual_server.*.real_server.*.file_check.track_file",
    "virtual_server.*.real_server.*.file_check.weight",
    "virtual_server.*.real_server.*.file_check.reverse",
    // --- end of health checks
];

// --- tracked objects (`track`) -----------------------------------------------------------------
/// Keys `track::Tracker` acts on (running scripts, reading files, counting processes). Not in
/// [`IMPLEMENTED`] yet: they become "implemented" when the runtime starts the Tracker and feeds
/// its observations to the tracking arithmetic (which acts on the weights, `rise`, `fall`,
/// `init_fail`, `quorum`, `quorum_max` and `reverse`, and on the instances' `track_*` lists).
pub const TRACKER_KEYS: &[&str] = &[
    "vrrp_script.*.script",
    "vrrp_script.*.weight",
    "vrrp_script.*.rise",
    "vrrp_script.*.fall",
    "vrrp_script.*.init_fail",
    "vrrp_track_file.*.weight",
    "vrrp_track_file.*.reverse",
    "vrrp_track_process.*.weight",
    "vrrp_track_process.*.reverse",
    "vrrp_track_process.*.quorum",
    "vrrp_track_process.*.quorum_max",
    "vrrp_instance.*.track_script",
    "vrrp_instance.*.track_file",
    "vrrp_instance.*.track_process",
    "vrrp_script.*.interval",
    "vrrp_script.*.timeout",
    "vrrp_script.*.user",
    "vrrp_track_file.*.file",
    "vrrp_track_file.*.init_file",
    "vrrp_track_process.*.process",
    "vrrp_track_process.*.param_match",
    "vrrp_track_process.*.full_command",
    "vrrp_track_process.*.delay",
    "vrrp_track_process.*.fork_delay",
    "vrrp_track_process.*.terminate_delay",
];
// --- end of tracked objects ---------------------------------------------------------------------

#[cfg(test)]
fn matches<S: AsRef<str>>(pattern: &str, path: &[S]) -> bool {
    let mut segs = pattern.split('.');
    path.iter()
        .all(|s| segs.next().is_some_and(|p| p == "*" || p == s.as_ref()))
        && segs.next().is_none()
}

/// The patterns as a tree of segments: a key is matched in one walk down its path, however many
/// patterns there are (a large configuration has tens of thousands of keys, each checked here).
#[derive(Default)]
struct Patterns {
    /// A pattern ends here.
    end: bool,
    /// Named segments, sorted by name (binary search).
    named: Vec<(&'static str, Patterns)>,
    /// `*`: any one segment.
    any: Option<Box<Patterns>>,
}

impl Patterns {
    fn insert(&mut self, pattern: &'static str) {
        let mut at = self;
        for seg in pattern.split('.') {
            at = if seg == "*" {
                at.any.get_or_insert_with(Default::default)
            } else {
                let i = match at.named.binary_search_by(|(n, _)| n.cmp(&seg)) {
                    Ok(i) => i,
                    Err(i) => {
                        at.named.insert(i, (seg, Patterns::default()));
                        i
                    }
                };
                &mut at.named[i].1
            };
        }
        at.end = true;
    }

    fn matches<S: AsRef<str>>(&self, path: &[S]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return self.end;
        };
        let first = first.as_ref();
        self.named
            .binary_search_by(|(n, _)| (*n).cmp(first))
            .is_ok_and(|i| self.named[i].1.matches(rest))
            || self.any.as_ref().is_some_and(|a| a.matches(rest))
    }
}

/// Whether keeperd acts on `path`.
pub fn is_implemented<S: AsRef<str>>(path: &[S]) -> bool {
    static PATTERNS: std::sync::OnceLock<Patterns> = std::sync::OnceLock::new();
    !path.is_empty()
        && PATTERNS
            .get_or_init(|| {
                let mut p = Patterns::default();
                for pattern in IMPLEMENTED.iter().chain(TRACKER_KEYS) {
                    p.insert(pattern);
                }
                p
            })
            .matches(path)
}

/// A warning for every written key keeperd does not act on yet.
pub fn not_implemented(root: &Node) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    root.for_each_written(&mut |path, node| out.extend(not_implemented_at(path, node)));
    out
}

/// The warning for one written key, if keeperd does not act on it.
pub(crate) fn not_implemented_at(path: &[&str], node: &Node) -> Option<Diagnostic> {
    (!is_implemented(path)).then(|| Diagnostic {
        severity: Severity::Warning,
        origin: node.origin.clone(),
        path: path.iter().map(|s| s.to_string()).collect(),
        message: NOT_IMPLEMENTED.to_string(),
    })
}

/// The message of a key accepted but not acted on.
pub const NOT_IMPLEMENTED: &str = "accepted, not implemented: keeperd does not act on this key yet";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_pattern_starts_with_a_wildcard() {
        // Every pattern is under a named section (`*` stands for a name the operator chose).
        assert!(
            IMPLEMENTED
                .iter()
                .chain(TRACKER_KEYS)
                .all(|p| !p.starts_with('*'))
        );
        let path: Vec<String> = ["virtual_server", "web", "real_server", "a", "weight"]
            .map(String::from)
            .into();
        assert!(is_implemented(&path));
        assert!(!is_implemented(&path[..4]));
        assert!(!is_implemented::<String>(&[]));
    }

    #[test]
    fn the_pattern_tree_agrees_with_each_pattern() {
        // Every pattern, written out with a name for each `*`, with one segment more, one less,
        // and one changed: the tree answers what matching the patterns one by one answers.
        let mut paths: Vec<Vec<String>> = Vec::new();
        for p in IMPLEMENTED.iter().chain(TRACKER_KEYS) {
            let full: Vec<String> = p
                .split('.')
                .map(|s| {
                    if s == "*" {
                        "x_1".to_string()
                    } else {
                        s.to_string()
                    }
                })
                .collect();
            let mut longer = full.clone();
            longer.push("extra".into());
            let mut changed = full.clone();
            if let Some(last) = changed.last_mut() {
                last.push('z');
            }
            paths.extend([
                full.clone(),
                longer,
                changed,
                full[..full.len() - 1].to_vec(),
            ]);
        }
        assert!(paths.len() > 400);
        for path in &paths {
            let one_by_one = IMPLEMENTED
                .iter()
                .chain(TRACKER_KEYS)
                .any(|p| matches(p, path));
            assert_eq!(is_implemented(path), one_by_one, "{path:?}");
        }
    }

    #[test]
    fn wildcard_matches_one_segment() {
        let path: Vec<String> = ["vrrp_instance", "VI_1", "priority"]
            .map(String::from)
            .into();
        assert!(matches("vrrp_instance.*.priority", &path));
        assert!(!matches("vrrp_instance.*", &path));
        assert!(!matches("vrrp_instance.*.state", &path));
    }
}
