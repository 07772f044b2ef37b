//! Which configuration keys keeperd acts on. A key that is accepted by the schema but matched by
//! no pattern here is reported by `keeperd --check` and logged at start as "accepted, not
//! implemented": never silently ignored. Each feature adds its keys here when it lands.

use super::node::{KeyPath, Node};
use super::{Diagnostic, Severity};

/// Dotted key patterns; `*` matches any one segment (a name).
pub const IMPLEMENTED: &[&str] = &["global.log_level"];

fn matches(pattern: &str, path: &[String]) -> bool {
    let segs: Vec<&str> = pattern.split('.').collect();
    segs.len() == path.len() && segs.iter().zip(path).all(|(p, s)| *p == "*" || p == s)
}

/// Whether keeperd acts on `path`.
pub fn is_implemented(path: &[String]) -> bool {
    IMPLEMENTED.iter().any(|p| matches(p, path))
}

/// A warning for every written key keeperd does not act on yet.
pub fn not_implemented(root: &Node) -> Vec<Diagnostic> {
    root.written_paths()
        .into_iter()
        .filter(|path: &KeyPath| !is_implemented(path))
        .map(|path| Diagnostic {
            severity: Severity::Warning,
            origin: root.origin_of(&path),
            path,
            message: "accepted, not implemented: keeperd does not act on this key yet".to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
