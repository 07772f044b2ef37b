//! `vrrp_track_file`: the integer in a file, reported when it changes.
//!
//! Semantics are keepalived's (`trackers/track_file.c`):
//! - the value is C's `strtol(text, NULL, 0)` over the first 127 bytes: leading white space, a
//!   sign, `0x` for hexadecimal, a leading `0` for octal, digits up to the first non-digit.
//!   Text that is not a number, and an empty file, read as 0. A number outside
//!   `-2147483648..=2147483648` is ignored: the previous value stays (and the status says why);
//! - a file that does not exist, or cannot be opened or read, reads as 0;
//! - the file is read when a writer closes it (`IN_CLOSE_WRITE`) or it is moved in
//!   (`IN_MOVED_TO`), and reads as 0 when it is deleted or moved away. The watch is on the
//!   file's directory, so a file created later is seen; nothing polls. Writes that do not close
//!   the file (a process keeping it open) are seen at the close, as in keepalived;
//! - `init_file` writes `VALUE\n` at start (not at reloads) when the file does not exist, or
//!   always with `overwrite` (a regular file only);
//! - a path is resolved once (symbolic links followed, as keepalived's `realpath`). A file on
//!   a file system inotify cannot watch (proc, sysfs, cgroup, NFS, FUSE, …) is read once and
//!   the status says it is not watched (keepalived refuses the configuration). When the
//!   directory does not exist yet, or disappears, the file reads as missing and the watch is
//!   retried every [`RETRY`].

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::StreamExt;
use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Observation, lock, unix_secs};
use crate::config::InitFile;

/// How often a directory that could not be watched is tried again.
pub const RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// What a file watcher needs to know; equal specs keep their state across a reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSpec {
    pub name: String,
    pub path: PathBuf,
    pub init: Option<InitFile>,
}

/// How the reported value was obtained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileReading {
    /// Read from the file.
    Read,
    /// No such file: 0.
    Missing,
    /// The file could not be opened or read: 0.
    Unreadable(String),
}

/// A tracked file's status for `keeperctl status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileStatus {
    pub name: String,
    pub path: PathBuf,
    /// The value last reported (`None` before the first read).
    pub value: Option<i64>,
    pub reading: Option<FileReading>,
    /// When the value was last reported, seconds since the Unix epoch.
    pub changed_unix: Option<f64>,
    /// Changes are seen (the directory is watched).
    pub watched: bool,
    /// Why the file is not watched, or why the last read was ignored.
    pub problem: Option<String>,
}

/// keepalived's reading of a track file's text (`strtol(…, 0)` over the first 127 bytes);
/// `None` for a number out of range (ignored).
pub use keeper_vrrp::tracking::parse_track_file as parse_value;

/// One read: the value (`None`: out of range, ignored) and how it was obtained.
fn read_value(path: &Path) -> (Option<i64>, FileReading) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let mut file = match file {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (Some(0), FileReading::Missing),
        Err(e) => return (Some(0), FileReading::Unreadable(e.to_string())),
    };
    let mut buf = [0u8; 127];
    // One read(2), as keepalived: a writer's close has made the whole value visible.
    match file.read(&mut buf) {
        Ok(len) => (parse_value(&buf[..len]), FileReading::Read),
        Err(e) => (Some(0), FileReading::Unreadable(e.to_string())),
    }
}

/// Writes `init_file`'s value when the file does not exist, or always with `overwrite`.
fn init_file(path: &Path, init: InitFile) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(_) if !init.overwrite => return Ok(()),
        Ok(m) if !m.file_type().is_file() => {
            return Err("init_file overwrite: not a regular file".into());
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("init_file: {e}")),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("init_file: {e}"))?;
    writeln!(f, "{}", init.value).map_err(|e| format!("init_file: {e}"))
}

/// File systems whose changes inotify does not see (keepalived's list, `linux/magic.h`).
const UNWATCHABLE: &[(u32, &str)] = &[
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0xcafe_4a11, "bpf"),
    (0x1cd1, "devpts"),
    (0xde5e_81e4, "efivarfs"),
    (0x6573_5546, "fuse"),
    (0x6969, "nfs"),
    (0x517b, "smb"),
    (0xfe53_4d42, "smb2"),
    (0xff53_4d42, "cifs"),
    (0x1980_0202, "mqueue"),
    (0x5049_5045, "pipefs"),
    (0x534f_434b, "sockfs"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x7275, "romfs"),
];

fn unwatchable_fs(dir: &Path) -> Option<&'static str> {
    let fs = nix::sys::statfs::statfs(dir).ok()?;
    // Magic numbers are 32 bits; the field is wider on 64-bit machines.
    let magic = fs.filesystem_type().0 as u32;
    UNWATCHABLE
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

/// Where to watch a file: its resolved directory and its name there.
fn resolve(path: &Path) -> Result<(PathBuf, OsString), String> {
    // An existing file is resolved whole (a symbolic link to its target), as keepalived.
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = path
        .file_name()
        .ok_or_else(|| format!("{} names no file", path.display()))?
        .to_os_string();
    let dir = path.parent().unwrap_or(Path::new("/"));
    let dir =
        std::fs::canonicalize(dir).map_err(|e| format!("directory {}: {e}", dir.display()))?;
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    Ok((dir, name))
}

const MASK: WatchMask = WatchMask::CLOSE_WRITE
    .union(WatchMask::DELETE)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::MOVE_SELF)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::ONLYDIR);

struct Tracked {
    spec: FileSpec,
    /// Resolved directory and file name, once resolved.
    place: Option<(PathBuf, OsString)>,
    wd: Option<WatchDescriptor>,
    /// Read once, never watched (unwatchable file system).
    read_only_once: bool,
    reported: Option<i64>,
}

/// The file watcher: one task for every tracked file.
pub(super) struct FileWatcher {
    out: mpsc::Sender<Observation>,
    status: Arc<Mutex<BTreeMap<String, FileStatus>>>,
    watches: Option<Watches>,
    files: Vec<Tracked>,
}

impl FileWatcher {
    fn set_status(&self, name: &str, f: impl FnOnce(&mut FileStatus)) {
        if let Some(st) = lock(&self.status).get_mut(name) {
            f(st);
        }
    }

    /// Resolves and watches file `i` if it is not yet; returns whether it is watched now.
    fn watch(&mut self, i: usize) -> bool {
        let file = &mut self.files[i];
        if file.wd.is_some() || file.read_only_once {
            return file.wd.is_some();
        }
        let problem = match resolve(&file.spec.path) {
            Err(e) => Some(format!("not watched ({e}); retried every {RETRY:?}")),
            Ok((dir, name)) => {
                if let Some(fs) = unwatchable_fs(&dir) {
                    file.read_only_once = true;
                    Some(format!(
                        "{} is on {fs}, which inotify cannot watch: read once, changes are not seen",
                        dir.display()
                    ))
                } else {
                    match self.watches.as_mut().map(|w| w.add(&dir, MASK)) {
                        Some(Ok(wd)) => {
                            file.wd = Some(wd);
                            file.place = Some((dir, name));
                            None
                        }
                        Some(Err(e)) => Some(format!(
                            "cannot watch {}: {e}; retried every {RETRY:?}",
                            dir.display()
                        )),
                        None => Some("inotify is not available: read once".to_string()),
                    }
                }
            }
        };
        let watched = self.files[i].wd.is_some();
        if let Some(p) = &problem {
            tracing::warn!("vrrp_track_file {}: {p}", self.files[i].spec.name);
        }
        let name = self.files[i].spec.name.clone();
        self.set_status(&name, |st| {
            st.watched = watched;
            st.problem = problem;
        });
        watched
    }

    /// Reads file `i` and reports its value when it changed.
    async fn read_and_report(&mut self, i: usize) -> bool {
        let path = self.files[i].spec.path.clone();
        let (value, reading) = match tokio::task::spawn_blocking(move || read_value(&path)).await {
            Ok(r) => r,
            Err(e) => (Some(0), FileReading::Unreadable(e.to_string())),
        };
        self.report(i, value, reading).await
    }

    /// Reports `value` for file `i` when it differs from the last one. Returns false when
    /// nobody listens any more.
    async fn report(&mut self, i: usize, value: Option<i64>, reading: FileReading) -> bool {
        let name = self.files[i].spec.name.clone();
        let Some(value) = value else {
            tracing::warn!(
                "vrrp_track_file {name}: the number in {} is out of range; keeping the previous value",
                self.files[i].spec.path.display()
            );
            self.set_status(&name, |st| {
                st.problem = Some("last read: number out of range, ignored".into())
            });
            return true;
        };
        if self.files[i].reported == Some(value) {
            self.set_status(&name, |st| st.reading = Some(reading));
            return true;
        }
        self.files[i].reported = Some(value);
        let now = SystemTime::now();
        self.set_status(&name, |st| {
            st.value = Some(value);
            st.reading = Some(reading.clone());
            st.changed_unix = Some(unix_secs(now));
        });
        self.out
            .send(Observation::File {
                name,
                value,
                reading,
            })
            .await
            .is_ok()
    }

    /// Replaces the tracked files. Files whose spec did not change keep their watch and
    /// value; new or changed ones are watched, read and reported.
    async fn configure(&mut self, specs: Vec<FileSpec>, first: bool) -> bool {
        let mut old: HashMap<String, Tracked> = self
            .files
            .drain(..)
            .map(|f| (f.spec.name.clone(), f))
            .collect();
        let mut fresh = Vec::new();
        for spec in specs {
            match old.remove(&spec.name) {
                Some(t) if t.spec == spec => self.files.push(t),
                _ => {
                    if first && let Some(init) = spec.init {
                        let path = spec.path.clone();
                        let r = tokio::task::spawn_blocking(move || init_file(&path, init)).await;
                        if let Ok(Err(e)) | Err(e) = r.map_err(|e| e.to_string()) {
                            tracing::error!("vrrp_track_file {}: {e}", spec.name);
                        }
                    }
                    fresh.push(self.files.len());
                    self.files.push(Tracked {
                        spec,
                        place: None,
                        wd: None,
                        read_only_once: false,
                        reported: None,
                    });
                }
            }
        }
        // Watches nobody uses any more (several files may share a directory's watch).
        if let Some(w) = self.watches.as_mut() {
            for gone in old.into_values().filter_map(|t| t.wd) {
                if !self.files.iter().any(|f| f.wd.as_ref() == Some(&gone)) {
                    let _ = w.remove(gone);
                }
            }
        }
        {
            let mut st = lock(&self.status);
            st.retain(|name, _| self.files.iter().any(|f| &f.spec.name == name));
            for &i in &fresh {
                let spec = &self.files[i].spec;
                st.insert(
                    spec.name.clone(),
                    FileStatus {
                        name: spec.name.clone(),
                        path: spec.path.clone(),
                        value: None,
                        reading: None,
                        changed_unix: None,
                        watched: false,
                        problem: None,
                    },
                );
            }
        }
        for i in fresh {
            // Watch first, then read: a write between the two is seen by one or the other.
            self.watch(i);
            if !self.read_and_report(i).await {
                return false;
            }
        }
        true
    }

    /// Handles one inotify event; returns false when nobody listens any more.
    async fn event(
        &mut self,
        wd: WatchDescriptor,
        mask: EventMask,
        name: Option<OsString>,
    ) -> bool {
        if mask.contains(EventMask::Q_OVERFLOW) {
            tracing::warn!("vrrp_track_file: inotify queue overflow; reading every file again");
            for i in 0..self.files.len() {
                if !self.read_and_report(i).await {
                    return false;
                }
            }
            return true;
        }
        let hit: Vec<usize> = (0..self.files.len())
            .filter(|&i| self.files[i].wd.as_ref() == Some(&wd))
            .collect();
        if mask.intersects(EventMask::IGNORED | EventMask::DELETE_SELF | EventMask::MOVE_SELF) {
            // The directory is gone or elsewhere: its files read as missing until it is back.
            if mask.contains(EventMask::MOVE_SELF)
                && let Some(w) = self.watches.as_mut()
            {
                let _ = w.remove(wd.clone());
            }
            for i in hit {
                self.files[i].wd = None;
                self.files[i].place = None;
                let name = self.files[i].spec.name.clone();
                self.set_status(&name, |st| {
                    st.watched = false;
                    st.problem = Some(format!(
                        "its directory disappeared; retried every {RETRY:?}"
                    ));
                });
                if !self.report(i, Some(0), FileReading::Missing).await {
                    return false;
                }
            }
            return true;
        }
        let Some(name) = name else { return true };
        if mask.contains(EventMask::ISDIR) {
            return true;
        }
        for i in hit {
            let ours = self.files[i]
                .place
                .as_ref()
                .is_some_and(|(_, n)| *n == name);
            if !ours {
                continue;
            }
            let ok = if mask.intersects(EventMask::DELETE | EventMask::MOVED_FROM) {
                self.report(i, Some(0), FileReading::Missing).await
            } else {
                self.read_and_report(i).await
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// Watches the files whose directory could not be watched yet; reads those that now are.
    async fn retry(&mut self) -> bool {
        for i in 0..self.files.len() {
            let f = &self.files[i];
            if f.wd.is_none() && !f.read_only_once && self.watch(i) {
                if !self.read_and_report(i).await {
                    return false;
                }
                let name = self.files[i].spec.name.clone();
                tracing::info!("vrrp_track_file {name}: watched now");
            }
        }
        true
    }

    fn waiting(&self) -> bool {
        self.watches.is_some()
            && self
                .files
                .iter()
                .any(|f| f.wd.is_none() && !f.read_only_once)
    }
}

/// Watches `specs` until `commands` closes; each command replaces the tracked files.
pub(crate) async fn file_task(
    specs: Vec<FileSpec>,
    write_init: bool,
    mut commands: mpsc::Receiver<Vec<FileSpec>>,
    out: mpsc::Sender<Observation>,
    status: Arc<Mutex<BTreeMap<String, FileStatus>>>,
) {
    let mut stream = match Inotify::init().and_then(|i| i.into_event_stream([0u8; 4096])) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(
                "vrrp_track_file: cannot use inotify ({e}): files are read once, changes are not seen"
            );
            None
        }
    };
    let mut w = FileWatcher {
        out,
        status,
        watches: stream.as_ref().map(|s| s.watches()),
        files: Vec::new(),
    };
    if !w.configure(specs, write_init).await {
        return;
    }
    loop {
        let retry = w.waiting();
        tokio::select! {
            cmd = commands.recv() => match cmd {
                Some(specs) => if !w.configure(specs, false).await { return },
                None => return,
            },
            ev = next_event(&mut stream) => match ev {
                Some(Ok(ev)) => if !w.event(ev.wd, ev.mask, ev.name).await { return },
                Some(Err(e)) => {
                    tracing::error!("vrrp_track_file: reading inotify events: {e}; files are no longer watched");
                    stream = None;
                    w.watches = None;
                }
                None => {
                    stream = None;
                    w.watches = None;
                }
            },
            _ = tokio::time::sleep(RETRY), if retry => if !w.retry().await { return },
        }
    }
}

async fn next_event(
    stream: &mut Option<inotify::EventStream<[u8; 4096]>>,
) -> Option<io::Result<inotify::EventOwned>> {
    match stream {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_as_keepalived() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("v");
        for (text, want) in [
            ("0x1F\n", Some(31)),
            ("  -17 apples", Some(-17)),
            ("abc", Some(0)),
        ] {
            std::fs::write(&f, text).expect("write");
            assert_eq!(read_value(&f), (want, FileReading::Read), "{text:?}");
        }
        std::fs::write(&f, "2147483649").expect("write");
        assert_eq!(read_value(&f), (None, FileReading::Read), "out of range");
    }

    #[test]
    fn missing_unreadable_and_init() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("v");
        assert_eq!(read_value(&f), (Some(0), FileReading::Missing));
        init_file(
            &f,
            InitFile {
                value: -7,
                overwrite: false,
            },
        )
        .expect("created");
        assert_eq!(read_value(&f), (Some(-7), FileReading::Read));
        init_file(
            &f,
            InitFile {
                value: 3,
                overwrite: false,
            },
        )
        .expect("left alone");
        assert_eq!(read_value(&f), (Some(-7), FileReading::Read));
        init_file(
            &f,
            InitFile {
                value: 3,
                overwrite: true,
            },
        )
        .expect("overwritten");
        assert_eq!(std::fs::read_to_string(&f).ok().as_deref(), Some("3\n"));
        assert!(
            init_file(
                dir.path(),
                InitFile {
                    value: 1,
                    overwrite: true
                }
            )
            .is_err(),
            "a directory is not overwritten"
        );
        let (v, r) = read_value(dir.path());
        assert_eq!(v, Some(0));
        assert!(matches!(r, FileReading::Unreadable(_)), "{r:?}");
    }
}
