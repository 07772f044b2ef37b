//! Least privilege: who keeperd runs as, which capabilities it keeps, and the steps that need
//! privilege before it lets go (real-time scheduling, locked memory).
//!
//! The daemon keeps exactly CAP_NET_ADMIN (VIPs over rtnetlink, IPVS over generic netlink) and
//! CAP_NET_RAW (VRRP raw sockets, GARP/NA packet socket) in its effective and permitted sets,
//! nothing inheritable or ambient, trims the bounding set to those two when it can (CAP_SETPCAP),
//! and sets no_new_privs. Started as root it switches to `global.user` (default `keeper`) keeping
//! those two across the switch (PR_SET_KEEPCAPS). Started unprivileged with ambient capabilities
//! (systemd `User=` + `AmbientCapabilities=`) it only sheds what it does not need.
//!
//! Scripts run as the script user with no capability at all. When a script user differs from the
//! daemon's, a launcher process (see [`crate::launcher`]) keeps CAP_SETUID, CAP_SETGID and
//! CAP_KILL so that the daemon itself never holds them after start.
//!
//! Capability and uid changes apply to the calling thread only at the syscall level, so
//! [`drop_privileges`] refuses to run in a process with more than one thread.

use std::collections::BTreeMap;
use std::fmt;

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{Gid, Group, Uid, User};

use crate::config::{Config, KeyPath, display_path};

/// What the daemon keeps after start.
pub const DAEMON_CAPS: &[Capability] = &[Capability::CAP_NET_ADMIN, Capability::CAP_NET_RAW];
/// What the script launcher keeps: become the script user, and kill a script that overran.
pub const LAUNCHER_CAPS: &[Capability] = &[
    Capability::CAP_SETUID,
    Capability::CAP_SETGID,
    Capability::CAP_KILL,
];
/// The daemon user when started as root and `global.user` is unset.
pub const DEFAULT_USER: &str = "keeper";

#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("{0}")]
    Account(String),
    #[error("capabilities: {0}")]
    Caps(String),
    #[error("{what}: {source}")]
    Sys {
        what: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error(
        "cannot drop privileges with {0} threads running (capabilities and uids are per thread); this is a bug"
    )]
    Threads(usize),
    #[error("missing {}: keeperd needs it (run as root, or grant it with AmbientCapabilities=)", names(.0))]
    Missing(Vec<Capability>),
    #[error("after dropping privileges: {0}")]
    Verify(String),
}

impl From<caps::errors::CapsError> for PrivilegeError {
    fn from(e: caps::errors::CapsError) -> Self {
        PrivilegeError::Caps(e.to_string())
    }
}

fn sys(what: &'static str) -> impl FnOnce(nix::Error) -> PrivilegeError {
    move |source| PrivilegeError::Sys { what, source }
}

fn names(caps: &[Capability]) -> String {
    let mut v: Vec<String> = caps.iter().map(|c| c.to_string()).collect();
    v.sort();
    v.join(", ")
}

/// A user to run as, resolved to numbers once.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (including `gid`).
    pub groups: Vec<u32>,
}

impl Account {
    /// The same identity: uid, primary group and supplementary groups.
    pub fn same_identity(&self, other: &Account) -> bool {
        self.uid == other.uid && self.gid == other.gid && {
            let mut a = self.groups.clone();
            let mut b = other.groups.clone();
            a.sort_unstable();
            b.sort_unstable();
            a.dedup();
            b.dedup();
            a == b
        }
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (uid {}, gid {})", self.name, self.uid, self.gid)
    }
}

/// `user`, `user:group` or keepalived's `user group`.
pub fn parse_user_spec(spec: &str) -> Result<(&str, Option<&str>), String> {
    let spec = spec.trim();
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u.trim(), Some(g.trim())),
        None => match spec.split_once(char::is_whitespace) {
            Some((u, g)) => (u.trim(), Some(g.trim())),
            None => (spec, None),
        },
    };
    if user.is_empty() || group.is_some_and(|g| g.is_empty() || g.contains(char::is_whitespace)) {
        return Err(format!(
            "{spec:?} is not `user`, `user:group` or `user group`"
        ));
    }
    Ok((user, group))
}

/// Resolves a user spec through NSS (passwd, group).
pub fn resolve(spec: &str) -> Result<Account, String> {
    let (user, group) = parse_user_spec(spec)?;
    let pw = User::from_name(user)
        .map_err(|e| format!("looking up user `{user}`: {e}"))?
        .ok_or_else(|| format!("user `{user}` does not exist"))?;
    let gid = match group {
        None => pw.gid,
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| format!("looking up group `{g}`: {e}"))?
                .ok_or_else(|| format!("group `{g}` does not exist"))?
                .gid
        }
    };
    let cname = std::ffi::CString::new(user).map_err(|_| format!("bad user name {user:?}"))?;
    let mut groups: Vec<u32> = nix::unistd::getgrouplist(&cname, gid)
        .map_err(|e| format!("groups of `{user}`: {e}"))?
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    if !groups.contains(&gid.as_raw()) {
        groups.push(gid.as_raw());
    }
    Ok(Account {
        name: user.to_string(),
        uid: pw.uid.as_raw(),
        gid: gid.as_raw(),
        groups,
    })
}

/// The account this process runs as now.
pub fn current_account() -> Account {
    let uid = Uid::current();
    let gid = Gid::current();
    let name = User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {uid}"));
    let mut groups: Vec<u32> = nix::unistd::getgroups()
        .unwrap_or_default()
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    if !groups.contains(&gid.as_raw()) {
        groups.push(gid.as_raw());
    }
    Account {
        name,
        uid: uid.as_raw(),
        gid: gid.as_raw(),
        groups,
    }
}

/// Resolves a group name to its gid.
pub fn resolve_group(name: &str) -> Result<u32, String> {
    Group::from_name(name)
        .map_err(|e| format!("looking up group `{name}`: {e}"))?
        .map(|g| g.gid.as_raw())
        .ok_or_else(|| format!("group `{name}` does not exist"))
}

/// Who runs what, decided from the configuration and the starting credentials.
#[derive(Clone, Debug)]
pub struct Plan {
    pub started_as_root: bool,
    /// The daemon's account after start.
    pub daemon: Account,
    /// Every configured script user spec (`""` = the default) and its account.
    pub script_users: BTreeMap<String, Account>,
    /// The spec scripts use when they name none.
    pub default_script_user: String,
    /// Whether a launcher is needed: some script user is not the daemon's identity.
    pub launcher: bool,
}

impl Plan {
    /// The account for a script's `user` (None = the default script user), if it was planned.
    pub fn script_account(&self, user: Option<&str>) -> Option<&Account> {
        self.script_users
            .get(user.unwrap_or(&self.default_script_user))
    }
}

/// Every user spec scripts may run as, with its key: `global.script_user` and the per-script
/// `user` keys.
pub fn configured_script_users(cfg: &Config) -> Vec<(KeyPath, String)> {
    let path = |parts: &[&str]| -> KeyPath { parts.iter().map(|s| s.to_string()).collect() };
    let mut out = Vec::new();
    if let Some(u) = &cfg.global.script_user {
        out.push((path(&["global", "script_user"]), u.clone()));
    }
    for (name, s) in &cfg.vrrp_script {
        if let Some(u) = &s.user {
            out.push((path(&["vrrp_script", name, "user"]), u.clone()));
        }
    }
    for (vs, v) in &cfg.virtual_server {
        for (rs, r) in &v.real_server {
            if let Some(u) = r.misc_check.as_ref().and_then(|m| m.user.as_ref()) {
                out.push((
                    path(&[
                        "virtual_server",
                        vs,
                        "real_server",
                        rs,
                        "misc_check",
                        "user",
                    ]),
                    u.clone(),
                ));
            }
        }
    }
    out
}

/// Decides the plan; every problem is reported (for `--check` and at start).
pub fn plan(cfg: &Config) -> Result<Plan, Vec<String>> {
    let mut errors = Vec::new();
    let started_as_root = Uid::effective().is_root();
    let daemon = if started_as_root {
        let spec = cfg.global.user.as_deref().unwrap_or(DEFAULT_USER);
        match resolve(spec) {
            Ok(a) => Some(a),
            Err(e) => {
                let hint = if cfg.global.user.is_none() {
                    format!(
                        "create it (useradd --system --no-create-home --shell /usr/sbin/nologin {DEFAULT_USER}) or set global.user"
                    )
                } else {
                    "create it or name an existing user".to_string()
                };
                errors.push(format!(
                    "global.user: started as root, keeperd switches to an unprivileged user, but {e}: {hint}"
                ));
                None
            }
        }
    } else {
        Some(current_account())
    };
    let Some(daemon) = daemon else {
        return Err(errors);
    };
    let default_script_user = cfg.global.script_user.clone().unwrap_or_default();
    let mut script_users = BTreeMap::new();
    script_users.insert(String::new(), daemon.clone());
    for (key, spec) in configured_script_users(cfg) {
        if script_users.contains_key(&spec) {
            continue;
        }
        match resolve(&spec) {
            Ok(a) => {
                script_users.insert(spec, a);
            }
            Err(e) => errors.push(format!("{}: {e}", display_path(&key))),
        }
    }
    if let Some(g) = &cfg.global.control_socket_group
        && let Err(e) = resolve_group(g)
    {
        errors.push(format!("global.control_socket_group: {e}"));
    }
    let launcher = script_users.values().any(|a| !a.same_identity(&daemon));
    if launcher {
        let permitted = caps::read(None, CapSet::Permitted).unwrap_or_default();
        let missing: Vec<Capability> = LAUNCHER_CAPS
            .iter()
            .copied()
            .filter(|c| !permitted.contains(c))
            .collect();
        if !missing.is_empty() {
            let others: Vec<String> = script_users
                .iter()
                .filter(|(_, a)| !a.same_identity(&daemon))
                .map(|(s, a)| {
                    if s.is_empty() {
                        a.name.clone()
                    } else {
                        s.clone()
                    }
                })
                .collect();
            errors.push(format!(
                "global.script_user: scripts run as {} but keeperd runs as {} without {}: the script launcher cannot switch users (grant {} or use keeperd's own user for scripts)",
                others.join(", "),
                daemon.name,
                names(&missing),
                names(LAUNCHER_CAPS),
            ));
        }
    }
    if !started_as_root && let Some(u) = &cfg.global.user {
        match resolve(u) {
            Ok(a) if a.uid == daemon.uid => {}
            Ok(a) => tracing::warn!(
                "global.user is {a} but keeperd was started as {daemon}: it only switches users when started as root"
            ),
            Err(_) => {}
        }
    }
    if errors.is_empty() {
        Ok(Plan {
            started_as_root,
            daemon,
            script_users,
            default_script_user,
            launcher,
        })
    } else {
        Err(errors)
    }
}

/// What a privilege drop left.
#[derive(Clone, Debug)]
pub struct Dropped {
    pub account: Account,
    /// Capabilities left in the bounding set beyond the kept ones (no CAP_SETPCAP to drop them;
    /// no_new_privs keeps them from ever being gained).
    pub bounding_extra: Vec<Capability>,
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(1)
}

/// Keeps only `keep` (effective, permitted; bounding when CAP_SETPCAP allows), clears inheritable
/// and ambient, switches to `to` if this process is not that identity yet (possible as root),
/// and sets no_new_privs. Must run while the process has one thread.
pub fn drop_privileges(to: &Account, keep: &[Capability]) -> Result<Dropped, PrivilegeError> {
    let threads = thread_count();
    if threads != 1 {
        return Err(PrivilegeError::Threads(threads));
    }
    let keep_set: CapsHashSet = keep.iter().copied().collect();
    let permitted = caps::read(None, CapSet::Permitted)?;
    let missing: Vec<Capability> = keep
        .iter()
        .copied()
        .filter(|c| !permitted.contains(c))
        .collect();
    if !missing.is_empty() {
        return Err(PrivilegeError::Missing(missing));
    }
    // The bounding set first: trimming it needs CAP_SETPCAP in the effective set, which the
    // switch below takes away.
    if permitted.contains(&Capability::CAP_SETPCAP) {
        caps::raise(None, CapSet::Effective, Capability::CAP_SETPCAP)?;
        for c in caps::read(None, CapSet::Bounding)? {
            if !keep_set.contains(&c) {
                caps::drop(None, CapSet::Bounding, c)?;
            }
        }
    }
    caps::clear(None, CapSet::Ambient)?;
    caps::clear(None, CapSet::Inheritable)?;
    let (ruid, euid, suid) = getresuid();
    let (rgid, egid, sgid) = getresgid();
    let mut current_groups: Vec<u32> = nix::unistd::getgroups()
        .unwrap_or_default()
        .into_iter()
        .map(Gid::as_raw)
        .collect();
    // As in `current_account`: the primary group counts as a member group, so that a process
    // started with no supplementary groups is not "switched" (setgroups needs CAP_SETGID).
    if !current_groups.contains(&egid) {
        current_groups.push(egid);
    }
    let switch_needed = [ruid, euid, suid].iter().any(|u| *u != to.uid)
        || [rgid, egid, sgid].iter().any(|g| *g != to.gid)
        || {
            let mut a = current_groups.clone();
            let mut b = to.groups.clone();
            a.sort_unstable();
            b.sort_unstable();
            a.dedup();
            b.dedup();
            a != b
        };
    if switch_needed {
        // Without KEEPCAPS, leaving uid 0 empties the permitted set.
        caps::securebits::set_keepcaps(true)?;
        let groups: Vec<Gid> = to.groups.iter().map(|g| Gid::from_raw(*g)).collect();
        nix::unistd::setgroups(&groups).map_err(sys("setgroups"))?;
        let gid = Gid::from_raw(to.gid);
        nix::unistd::setresgid(gid, gid, gid).map_err(sys("setresgid"))?;
        let uid = Uid::from_raw(to.uid);
        nix::unistd::setresuid(uid, uid, uid).map_err(sys("setresuid"))?;
        caps::securebits::set_keepcaps(false)?;
    }
    // Effective first: it must stay a subset of permitted at every step.
    caps::set(None, CapSet::Effective, &keep_set)?;
    caps::set(None, CapSet::Permitted, &keep_set)?;
    nix::sys::prctl::set_no_new_privs().map_err(sys("PR_SET_NO_NEW_PRIVS"))?;
    verify(to, &keep_set)
}

fn getresuid() -> (u32, u32, u32) {
    match nix::unistd::getresuid() {
        Ok(r) => (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()),
        Err(_) => {
            let u = Uid::current().as_raw();
            (u, Uid::effective().as_raw(), u32::MAX)
        }
    }
}

fn getresgid() -> (u32, u32, u32) {
    match nix::unistd::getresgid() {
        Ok(r) => (r.real.as_raw(), r.effective.as_raw(), r.saved.as_raw()),
        Err(_) => {
            let g = Gid::current().as_raw();
            (g, Gid::effective().as_raw(), u32::MAX)
        }
    }
}

/// Reads everything back: trust, but verify (a silently failed step must not go unnoticed).
fn verify(to: &Account, keep: &CapsHashSet) -> Result<Dropped, PrivilegeError> {
    let bad = |m: String| Err(PrivilegeError::Verify(m));
    let (r, e, s) = getresuid();
    if (r, e, s) != (to.uid, to.uid, to.uid) {
        return bad(format!("uids are {r}/{e}/{s}, expected {}", to.uid));
    }
    let (r, e, s) = getresgid();
    if (r, e, s) != (to.gid, to.gid, to.gid) {
        return bad(format!("gids are {r}/{e}/{s}, expected {}", to.gid));
    }
    for (set, name) in [
        (CapSet::Effective, "effective"),
        (CapSet::Permitted, "permitted"),
    ] {
        let have = caps::read(None, set)?;
        if &have != keep {
            return bad(format!(
                "{name} set is {}",
                names(&have.into_iter().collect::<Vec<_>>())
            ));
        }
    }
    for (set, name) in [
        (CapSet::Inheritable, "inheritable"),
        (CapSet::Ambient, "ambient"),
    ] {
        let have = caps::read(None, set)?;
        if !have.is_empty() {
            return bad(format!(
                "{name} set is {}",
                names(&have.into_iter().collect::<Vec<_>>())
            ));
        }
    }
    if !nix::sys::prctl::get_no_new_privs().map_err(sys("PR_GET_NO_NEW_PRIVS"))? {
        return bad("no_new_privs is not set".into());
    }
    let bounding_extra: Vec<Capability> = caps::read(None, CapSet::Bounding)?
        .into_iter()
        .filter(|c| !keep.contains(c))
        .collect();
    Ok(Dropped {
        account: to.clone(),
        bounding_extra,
    })
}

/// Logs what a drop left, once.
pub fn log_dropped(what: &str, d: &Dropped, keep: &[Capability]) {
    tracing::info!(
        user = %d.account.name,
        uid = d.account.uid,
        "{what} runs as {} with {} only; no_new_privs set",
        d.account,
        names(keep)
    );
    if !d.bounding_extra.is_empty() {
        tracing::info!(
            "{what}: the capability bounding set still lists {} (trimming it needs CAP_SETPCAP); no_new_privs keeps them from being gained",
            names(&d.bounding_extra)
        );
    }
}

/// Clears every capability set of the calling thread and sets no_new_privs. Only raw syscalls,
/// no allocation: async-signal-safe, so usable between fork and exec (`CommandExt::pre_exec`,
/// see [`crate::launcher`]).
pub fn clear_all_caps_raw() -> std::io::Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const V3: u32 = 0x2008_0522;
    let mut header = Header {
        version: V3,
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset(2) with a valid v3 header and two data words, as the ABI requires.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut Header, data.as_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: prctl(2) with integer arguments only.
    let r = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: as above.
    let r = unsafe {
        libc::prctl(
            libc::PR_SET_NO_NEW_PRIVS,
            1 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Switches the calling thread to `uid`/`gid`/`groups` with raw syscalls (no allocation, no
/// glibc thread broadcast): for the child between fork and exec.
pub fn switch_user_raw(uid: u32, gid: u32, groups: &[u32]) -> std::io::Result<()> {
    let check = |r: libc::c_long| {
        if r != 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    // SAFETY: raw setgroups/setresgid/setresuid on the only thread of a forked child; the
    // groups pointer and length describe a live slice.
    unsafe {
        check(libc::syscall(
            libc::SYS_setgroups,
            groups.len() as libc::size_t,
            groups.as_ptr(),
        ))?;
        check(libc::syscall(libc::SYS_setresgid, gid, gid, gid))?;
        check(libc::syscall(libc::SYS_setresuid, uid, uid, uid))?;
    }
    Ok(())
}

/// keepalived's `vrrp_rt_priority` and `vrrp_no_swap`, applied before dropping privileges.
/// Failures are warnings: the daemon works without them, less robustly under load.
pub fn apply_scheduling(rt_priority: Option<i64>, no_swap: bool) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(prio) = rt_priority {
        if let Err(e) = set_round_robin(prio as libc::c_int) {
            warnings.push(format!(
                "global.vrrp_rt_priority: cannot switch to SCHED_RR {prio}: {e} (needs root or CAP_SYS_NICE; under systemd set CPUSchedulingPolicy=rr)"
            ));
        } else {
            tracing::info!(
                "real-time scheduling: SCHED_RR priority {prio} (children reset to normal scheduling)"
            );
        }
    }
    if no_swap {
        match lock_memory() {
            Ok(()) => tracing::info!("memory locked (mlockall current and future)"),
            Err(e) => warnings.push(format!("global.vrrp_no_swap: {e}")),
        }
    }
    warnings
}

fn set_round_robin(prio: libc::c_int) -> std::io::Result<()> {
    let param = libc::sched_param {
        sched_priority: prio,
    };
    // SCHED_RESET_ON_FORK: scripts and the launcher must not inherit real-time priority.
    // SAFETY: sched_setscheduler(2) on this process with a valid parameter.
    let r =
        unsafe { libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &param) };
    if r == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    // Already real-time (systemd's CPUSchedulingPolicy=rr)? An unprivileged process may keep
    // its priority and add SCHED_RESET_ON_FORK.
    // SAFETY: sched_getscheduler/sched_getparam on this process.
    let policy = unsafe { libc::sched_getscheduler(0) } & !libc::SCHED_RESET_ON_FORK;
    let mut current = libc::sched_param { sched_priority: 0 };
    // SAFETY: as above; `current` is a valid out-parameter.
    let got = unsafe { libc::sched_getparam(0, &mut current) };
    if policy == libc::SCHED_RR && got == 0 && current.sched_priority >= prio {
        let keep = libc::sched_param {
            sched_priority: current.sched_priority,
        };
        // SAFETY: as above.
        let r = unsafe {
            libc::sched_setscheduler(0, libc::SCHED_RR | libc::SCHED_RESET_ON_FORK, &keep)
        };
        if r != 0 {
            tracing::warn!(
                "SCHED_RR set by the service manager kept, but SCHED_RESET_ON_FORK could not be added ({}): scripts inherit real-time priority (set CPUSchedulingResetOnFork=yes)",
                std::io::Error::last_os_error()
            );
        }
        return Ok(());
    }
    Err(err)
}

fn lock_memory() -> Result<(), String> {
    use nix::sys::resource::{RLIM_INFINITY, Resource, getrlimit, setrlimit};
    // With MCL_FUTURE every later allocation counts against RLIMIT_MEMLOCK once CAP_IPC_LOCK is
    // gone: a finite limit would make allocations fail later. Raise it (root can) or skip.
    let (soft, _) = getrlimit(Resource::RLIMIT_MEMLOCK).map_err(|e| format!("getrlimit: {e}"))?;
    if soft != RLIM_INFINITY
        && let Err(e) = setrlimit(Resource::RLIMIT_MEMLOCK, RLIM_INFINITY, RLIM_INFINITY)
    {
        return Err(format!(
            "RLIMIT_MEMLOCK is {soft} bytes and cannot be raised ({e}); memory not locked (under systemd set LimitMEMLOCK=infinity)"
        ));
    }
    nix::sys::mman::mlockall(
        nix::sys::mman::MlockAllFlags::MCL_CURRENT | nix::sys::mman::MlockAllFlags::MCL_FUTURE,
    )
    .map_err(|e| format!("mlockall: {e}"))
}

/// One line for the start log: the capability sets this process holds now.
pub fn describe_current() -> String {
    let set = |s: CapSet| {
        let have = caps::read(None, s).unwrap_or_default();
        if have.is_empty() {
            "none".to_string()
        } else if have.len() > 8 {
            format!("{} capabilities", have.len())
        } else {
            names(&have.into_iter().collect::<Vec<_>>())
        }
    };
    format!(
        "uid {}, effective: {}, ambient: {}",
        Uid::effective(),
        set(CapSet::Effective),
        set(CapSet::Ambient)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_specs() {
        assert_eq!(parse_user_spec("keeper"), Ok(("keeper", None)));
        assert_eq!(
            parse_user_spec("nobody:nogroup"),
            Ok(("nobody", Some("nogroup")))
        );
        assert_eq!(
            parse_user_spec("nobody nogroup"),
            Ok(("nobody", Some("nogroup")))
        );
        assert_eq!(parse_user_spec(" nobody "), Ok(("nobody", None)));
        assert!(parse_user_spec("").is_err());
        assert!(parse_user_spec(":g").is_err());
        assert!(parse_user_spec("u:").is_err());
        assert!(parse_user_spec("u a b").is_err());
    }

    #[test]
    fn unknown_user_is_a_named_error() {
        let e = resolve("no-such-user-keeper-test").expect_err("unknown user");
        assert!(e.contains("no-such-user-keeper-test"), "{e}");
        assert!(e.contains("does not exist"), "{e}");
        let e = resolve("root:no-such-group-keeper-test").expect_err("unknown group");
        assert!(
            e.contains("group `no-such-group-keeper-test` does not exist"),
            "{e}"
        );
    }

    #[test]
    fn root_resolves_with_its_groups() {
        let a = resolve("root").expect("root exists");
        assert_eq!((a.uid, a.gid), (0, 0));
        assert!(a.groups.contains(&0));
    }

    #[test]
    fn drop_refuses_with_several_threads() {
        // A second thread that lives until the call returned: the drop must refuse before
        // touching anything.
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            let _ = wait.recv();
        });
        let me = current_account();
        let result = drop_privileges(&me, DAEMON_CAPS);
        let _ = done.send(());
        let _ = other.join();
        match result {
            Err(PrivilegeError::Threads(n)) => assert!(n > 1),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
