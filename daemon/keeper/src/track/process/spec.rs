//! Which processes a `vrrp_track_process` counts, with keepalived's rules
//! (`core/track_process.c`, `vrrp/vrrp_parser.c`):
//! - `process NAME` compares NAME with the process name (`comm`, what `ps -o comm` shows, at
//!   most 15 bytes), exactly: `ssh` does not match `sshd` (as `pgrep '^ssh$'`);
//! - with `full_command`, NAME is compared with the first word of the command line
//!   (`/proc/PID/cmdline`, as the program was started: usually a path);
//! - `process NAME PARAM…` implies `full_command` and compares the parameters too, by
//!   `param_match`: `exact` (the default: the same parameters, no more), `partial` (the first
//!   ones are the configured ones), `initial` (as `partial`, and the last configured one need
//!   only begin the process's one). `param_match` without parameters requires a process without
//!   parameters (`exact`) or matches any (`partial`, `initial`);
//! - zombies do not count; threads are not processes.

use std::time::Duration;

use keeper_vrrp::tracking::ProcessQuorum;

use crate::config::{ParamMatch, VrrpTrackProcess};
use crate::track::command;

/// The kernel's limit on a process name (`TASK_COMM_LEN` - 1).
pub const COMM_MAX: usize = 15;
/// keepalived's limit on `delay`, `fork_delay` and `terminate_delay`.
pub const DELAY_MAX: Duration = Duration::from_secs(3600);

/// A tracked process's matching rule, quorum and delays, from the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSpec {
    /// The tracked object's name (`vrrp_track_process.NAME`).
    pub name: String,
    /// The program name or first command-line word to match.
    pub process: String,
    /// The configured parameters.
    param_words: Vec<String>,
    /// The same, each followed by a 0 byte, as `/proc/PID/cmdline` has them.
    params: Vec<u8>,
    /// `None`: parameters are not compared.
    pub param_match: Option<ParamMatch>,
    pub full_command: bool,
    /// Up when `quorum <= count <= quorum_max`.
    pub quorum: u32,
    pub quorum_max: u32,
    pub fork_delay: Duration,
    pub terminate_delay: Duration,
}

/// A configuration problem: the key (under `vrrp_track_process.NAME`) and what is wrong.
pub type SpecError = (&'static str, String);

impl ProcessSpec {
    /// Builds the rule; every problem is returned, each with its key.
    pub fn from_config(name: &str, cfg: &VrrpTrackProcess) -> Result<ProcessSpec, Vec<SpecError>> {
        let mut errors: Vec<SpecError> = Vec::new();
        let words = match cfg.process.as_deref().map(command::split) {
            None => {
                errors.push(("", "missing key `process`".into()));
                Vec::new()
            }
            Some(Err(e)) => {
                errors.push(("process", e.to_string()));
                Vec::new()
            }
            Some(Ok(c)) => c.words,
        };
        let process = words.first().cloned().unwrap_or_default();
        let has_params = words.len() > 1;
        let param_match = cfg.param_match.or(has_params.then_some(ParamMatch::Exact));
        let full_command = cfg.full_command || param_match.is_some();
        if !full_command && process.len() > COMM_MAX {
            errors.push((
                "process",
                format!(
                    "{process:?} is longer than {COMM_MAX} bytes, the kernel's limit for a process name: it would never match; set full_command = true to match the command line"
                ),
            ));
        }
        let mut count = |key: &'static str, v: Option<i64>, lo: i64| -> Option<u32> {
            let v = v?;
            if (lo..=65535).contains(&v) {
                u32::try_from(v).ok()
            } else {
                errors.push((key, format!("must be between {lo} and 65535, got {v}")));
                None
            }
        };
        let quorum_set = count("quorum", cfg.quorum, 1);
        let quorum_max_set = count("quorum_max", cfg.quorum_max, 0);
        let quorum_max = quorum_max_set.unwrap_or(u32::MAX);
        // keepalived: `quorum_max 0` alone means "no such process may run".
        let quorum = match (quorum_set, quorum_max_set) {
            (Some(q), _) => q,
            (None, Some(0)) => 0,
            (None, _) => 1,
        };
        if quorum > quorum_max {
            errors.push((
                "quorum_max",
                format!("quorum_max {quorum_max} is below quorum {quorum}"),
            ));
        }
        for (key, d) in [
            ("delay", cfg.delay),
            ("fork_delay", cfg.fork_delay),
            ("terminate_delay", cfg.terminate_delay),
        ] {
            if let Some(d) = d.map(|d| d.get())
                && d > DELAY_MAX
            {
                errors.push((key, format!("must be at most {DELAY_MAX:?}, got {d:?}")));
            }
        }
        let delay = |own: Option<crate::config::Secs>| {
            own.or(cfg.delay).map(|d| d.get()).unwrap_or_default()
        };
        let fork_delay = delay(cfg.fork_delay);
        let terminate_delay = delay(cfg.terminate_delay);
        if !errors.is_empty() {
            return Err(errors);
        }
        let param_words: Vec<String> = words.iter().skip(1).cloned().collect();
        let mut params = Vec::new();
        for w in &param_words {
            params.extend_from_slice(w.as_bytes());
            params.push(0);
        }
        Ok(ProcessSpec {
            name: name.to_string(),
            process,
            param_words,
            params,
            param_match,
            full_command,
            quorum,
            quorum_max,
            fork_delay,
            terminate_delay,
        })
    }

    /// `quorum..=quorum_max`, for the tracking arithmetic.
    pub fn quorum(&self) -> ProcessQuorum {
        ProcessQuorum {
            min: self.quorum,
            max: self.quorum_max,
        }
    }

    /// Whether `count` matching processes make the quorum.
    pub fn quorum_met(&self, count: u32) -> bool {
        self.quorum().is_met(count)
    }

    /// How many bytes of a command line decide a match (keepalived reads no more).
    pub fn cmdline_needed(&self) -> usize {
        if self.full_command {
            self.process.len() + 1 + self.params.len() + 1
        } else {
            0
        }
    }

    /// Whether a process with name `comm` and command line `cmdline` (`None`: not read)
    /// matches.
    pub fn matches(&self, comm: &[u8], cmdline: Option<&[u8]>) -> bool {
        if !self.full_command {
            return comm == self.process.as_bytes();
        }
        let Some(cmdline) = cmdline else {
            return false;
        };
        let (argv0, rest) = match cmdline.iter().position(|&b| b == 0) {
            Some(end) => (&cmdline[..end], &cmdline[end + 1..]),
            None => (cmdline, &[][..]),
        };
        if argv0 != self.process.as_bytes() {
            return false;
        }
        match self.param_match {
            None => true,
            Some(m) => params_match(m, &self.params, rest),
        }
    }

    /// The rule in keepalived's words, for status and logs.
    pub fn describe(&self) -> String {
        let mut words = vec![self.process.clone()];
        words.extend(self.param_words.iter().cloned());
        let mut s = command::Command { words }.to_string();
        if let Some(m) = self.param_match {
            s.push_str(&format!(" (param_match {m:?})").to_lowercase());
        } else if self.full_command {
            s.push_str(" (full_command)");
        }
        s
    }
}

/// keepalived's `check_params`: `conf` and `actual` are 0-terminated words.
fn params_match(m: ParamMatch, conf: &[u8], actual: &[u8]) -> bool {
    match m {
        ParamMatch::Exact => actual == conf,
        _ if actual.len() < conf.len() => false,
        ParamMatch::Partial => actual.starts_with(conf),
        ParamMatch::Initial => conf.len() <= 1 || actual.starts_with(&conf[..conf.len() - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(toml_text: &str) -> Result<ProcessSpec, Vec<SpecError>> {
        let cfg: VrrpTrackProcess = toml::from_str(toml_text).expect("toml");
        ProcessSpec::from_config("p", &cfg)
    }

    fn ok(toml_text: &str) -> ProcessSpec {
        spec(toml_text).unwrap_or_else(|e| panic!("{toml_text}: {e:?}"))
    }

    #[test]
    fn name_matches_comm_exactly() {
        let s = ok(r#"process = "ssh""#);
        assert!(s.matches(b"ssh", None));
        assert!(!s.matches(b"sshd", None));
        assert!(!s.full_command);
        assert_eq!((s.quorum, s.quorum_max), (1, u32::MAX));
        assert!(s.quorum_met(1) && s.quorum_met(50) && !s.quorum_met(0));
    }

    #[test]
    fn full_command_matches_the_first_word() {
        let s = ok("process = \"/usr/sbin/haproxy\"\nfull_command = true");
        assert!(s.matches(b"haproxy", Some(b"/usr/sbin/haproxy\0-f\0/etc/h.cfg\0")));
        assert!(!s.matches(b"haproxy", Some(b"haproxy\0-f\0")));
        assert!(!s.matches(b"haproxy", None));
        assert!(!s.matches(b"", Some(b"")));
    }

    #[test]
    fn parameters_by_param_match() {
        let line = |s: &str| s.replace(' ', "\0") + "\0";
        let exact = ok(r#"process = "/bin/app -c 'a b'""#);
        assert!(exact.full_command);
        assert_eq!(exact.param_match, Some(ParamMatch::Exact));
        assert!(exact.matches(b"", Some(b"/bin/app\0-c\0a b\0")));
        assert!(!exact.matches(b"", Some(b"/bin/app\0-c\0a b\0-v\0")));
        assert!(!exact.matches(b"", Some(b"/bin/app\0-c\0")));
        let partial = ok("process = \"/bin/app -c x\"\nparam_match = \"partial\"");
        assert!(partial.matches(b"", Some(line("/bin/app -c x -v").as_bytes())));
        assert!(partial.matches(b"", Some(line("/bin/app -c x").as_bytes())));
        assert!(!partial.matches(b"", Some(line("/bin/app -c xy").as_bytes())));
        let initial = ok("process = \"/bin/app -c x\"\nparam_match = \"initial\"");
        assert!(initial.matches(b"", Some(line("/bin/app -c xy -v").as_bytes())));
        assert!(!initial.matches(b"", Some(line("/bin/app -d x").as_bytes())));
        let none = ok("process = \"/bin/app\"\nparam_match = \"exact\"");
        assert!(none.matches(b"", Some(b"/bin/app\0")));
        assert!(!none.matches(b"", Some(b"/bin/app\0-v\0")));
        let any = ok("process = \"/bin/app\"\nparam_match = \"partial\"");
        assert!(any.matches(b"", Some(b"/bin/app\0-v\0")));
    }

    #[test]
    fn quorum_and_delays_as_keepalived() {
        let s = ok("process = \"x\"\nquorum_max = 0");
        assert_eq!((s.quorum, s.quorum_max), (0, 0));
        assert!(s.quorum_met(0) && !s.quorum_met(1));
        let s = ok("process = \"x\"\nquorum = 2\nquorum_max = 3\ndelay = 2\nfork_delay = 0.5");
        assert_eq!(
            (s.fork_delay, s.terminate_delay),
            (Duration::from_millis(500), Duration::from_secs(2))
        );
        assert!(!s.quorum_met(1) && s.quorum_met(2) && s.quorum_met(3) && !s.quorum_met(4));
        let keys = |t: &str| -> Vec<&'static str> {
            spec(t)
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.0)
                .collect()
        };
        assert_eq!(keys("quorum = 1"), [""]);
        assert_eq!(
            keys("process = \"x\"\nquorum = 3\nquorum_max = 2"),
            ["quorum_max"]
        );
        assert_eq!(keys("process = \"x\"\nquorum = 0"), ["quorum"]);
        assert_eq!(keys("process = \"x\"\ndelay = 3601"), ["delay"]);
        assert_eq!(keys("process = \"a-very-long-daemon-name\""), ["process"]);
        assert!(spec("process = \"a-very-long-daemon-name\"\nfull_command = true").is_ok());
        assert_eq!(keys("process = \"x 'y\""), ["process"]);
    }

    #[test]
    fn describe_in_keepalived_words() {
        assert_eq!(ok(r#"process = "ssh""#).describe(), "ssh");
        assert_eq!(
            ok(r#"process = "/bin/app -c 'a b'""#).describe(),
            "/bin/app -c \"a b\" (param_match exact)"
        );
    }
}
