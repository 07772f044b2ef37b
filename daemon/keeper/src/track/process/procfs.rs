//! Reading processes from `/proc`: the name, state and parent from `/proc/PID/stat`, and the
//! command line only when a rule needs it (reading it touches the process's memory, which may
//! be swapped out, so keepalived avoids it too). Blocking: call from a blocking thread.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// What the rules need to know about one process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// The process name (`comm`), at most 15 bytes.
    pub comm: Vec<u8>,
    /// The start of the command line (0-separated words), when asked for.
    pub cmdline: Option<Vec<u8>>,
}

/// Parses `/proc/PID/stat`: `PID (COMM) STATE PPID …`. `None` for zombies and dead
/// processes, which keepalived does not count, or text it cannot read.
pub fn parse_stat(pid: u32, text: &[u8]) -> Option<ProcInfo> {
    let open = text.iter().position(|&b| b == b'(')?;
    // The name may hold ')' itself: the last one ends it.
    let close = text.iter().rposition(|&b| b == b')')?;
    let comm = text.get(open + 1..close)?.to_vec();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" || state == "x" {
        return None;
    }
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcInfo {
        pid,
        ppid,
        comm,
        cmdline: None,
    })
}

fn read_prefix(path: &Path, buf: &mut [u8]) -> Option<usize> {
    let mut f = File::open(path).ok()?;
    let mut len = 0;
    while len < buf.len() {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    Some(len)
}

/// Reads one process under `proc_root` (normally `/proc`). `cmdline_bytes` > 0 reads that
/// many bytes of the command line. `None` when it is gone or a zombie.
pub fn read_process(proc_root: &Path, pid: u32, cmdline_bytes: usize) -> Option<ProcInfo> {
    let dir = proc_root.join(pid.to_string());
    let mut stat = [0u8; 512];
    let n = read_prefix(&dir.join("stat"), &mut stat)?;
    let mut info = parse_stat(pid, &stat[..n])?;
    if cmdline_bytes > 0 {
        let mut buf = vec![0u8; cmdline_bytes];
        let n = read_prefix(&dir.join("cmdline"), &mut buf)?;
        buf.truncate(n);
        info.cmdline = Some(buf);
    }
    Some(info)
}

/// Every live process under `proc_root`.
pub fn scan(proc_root: &Path, cmdline_bytes: usize) -> std::io::Result<Vec<ProcInfo>> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(proc_root)? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(info) = read_process(proc_root, pid, cmdline_bytes) {
            all.push(info);
        }
    }
    Ok(all)
}

/// Whether this process sees the machine's process ids: the proc connector reports ids of
/// the initial PID namespace, which `/proc` here shows only outside a container's namespace.
pub fn in_initial_pid_namespace() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .is_some_and(|ids| ids.split_whitespace().count() == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let p = parse_stat(7, b"7 (sleep) S 1 7 7 0 -1 4194304").expect("parses");
        assert_eq!((p.ppid, p.comm.as_slice()), (1, &b"sleep"[..]));
        let p = parse_stat(8, b"8 (a) b (c)) R 42 8 8").expect("parses");
        assert_eq!((p.ppid, p.comm.as_slice()), (42, &b"a) b (c)"[..]));
        assert_eq!(parse_stat(9, b"9 (defunct) Z 1 9 9"), None);
        assert_eq!(parse_stat(9, b"garbage"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let info = read_process(Path::new("/proc"), me, 4096).expect("this process");
        assert_eq!(info.pid, me);
        assert_eq!(info.ppid, std::os::unix::process::parent_id());
        let exe = std::env::args().next().unwrap_or_default();
        let cmdline = info.cmdline.unwrap_or_default();
        assert!(cmdline.starts_with(exe.as_bytes()), "{cmdline:?}");
        let all = scan(Path::new("/proc"), 0).expect("scan");
        assert!(all.iter().any(|p| p.pid == me));
    }
}
