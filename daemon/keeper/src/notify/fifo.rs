//! `notify_fifo`: one line per state change, keepalived's format
//! (`INSTANCE "VI_1" MASTER 100`, `GROUP "G1" BACKUP 0`), written by a task of its own.
//!
//! Like keepalived, keeperd creates the FIFO if it is missing (mode 0644; removed again at stop
//! if keeperd created it) and opens it read-write and non-blocking: opening never waits for a
//! reader, and nothing ever blocks. When no reader drains it, the pipe buffer (64 KiB, some
//! 2,000 lines) fills up; further lines are dropped and counted (`FifoWriter::dropped`, logged),
//! never queued without bound. A reader that starts late first reads the lines that were
//! buffered. Lines are shorter than `PIPE_BUF`, so each is written whole or not at all.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

/// Lines waiting for the writer task; more are dropped and counted.
const QUEUE: usize = 1024;
/// Longest line written (names are cut so that a line stays one atomic pipe write).
const MAX_LINE: usize = 512;

/// The FIFO's counters, shared with the writer task.
#[derive(Debug, Default)]
pub struct FifoStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
}

/// Sends lines to the writer task. Dropping it (and every clone) ends the task, which removes
/// the FIFO if it created it.
#[derive(Clone, Debug)]
pub struct FifoWriter {
    path: PathBuf,
    lines: mpsc::Sender<String>,
    stats: Arc<FifoStats>,
}

/// keepalived's line: `TYPE "NAME" STATE PRIORITY\n`.
pub fn line(kind: &str, name: &str, state: &str, priority: u8) -> String {
    let mut name = name.to_string();
    if name.len() > MAX_LINE - 40 {
        let mut cut = MAX_LINE - 40;
        while !name.is_char_boundary(cut) {
            cut -= 1;
        }
        name.truncate(cut);
    }
    format!("{kind} \"{name}\" {state} {priority}\n")
}

impl FifoWriter {
    /// Creates (if missing) and opens the FIFO, and starts the writer task. Needs a tokio
    /// runtime. Refuses a path that is not a FIFO, or a FIFO owned by another user (it could be
    /// a file someone planted), as keepalived does.
    pub fn open(path: &Path) -> io::Result<(FifoWriter, tokio::task::JoinHandle<()>)> {
        let created =
            match nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)) {
                Ok(()) => true,
                Err(nix::errno::Errno::EEXIST) => false,
                Err(e) => return Err(io::Error::from(e)),
            };
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .and_then(|f| {
                let meta = f.metadata()?;
                if !meta.file_type().is_fifo() {
                    return Err(io::Error::other("it exists and is not a FIFO"));
                }
                if meta.uid() != nix::unistd::geteuid().as_raw() {
                    return Err(io::Error::other(format!(
                        "the FIFO belongs to uid {}, not to keeperd",
                        meta.uid()
                    )));
                }
                Ok(f)
            });
        let file = match opened {
            Ok(f) => f,
            Err(e) => {
                if created {
                    let _ = std::fs::remove_file(path);
                }
                return Err(e);
            }
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        let stats = Arc::new(FifoStats::default());
        let task = tokio::spawn(write_lines(
            file,
            rx,
            stats.clone(),
            path.to_path_buf(),
            created,
        ));
        Ok((
            FifoWriter {
                path: path.to_path_buf(),
                lines: tx,
                stats,
            },
            task,
        ))
    }

    /// Queues `line` without waiting; a full queue drops it (counted).
    pub fn send(&self, line: String) {
        if self.lines.try_send(line).is_err() {
            self.count_drop();
        }
    }

    fn count_drop(&self) {
        count_drop(&self.stats, &self.path);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The counters, shared with the writer task (they keep counting after the writer is
    /// dropped, until the task has written what was queued).
    pub fn stats(&self) -> Arc<FifoStats> {
        self.stats.clone()
    }

    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }
}

fn count_drop(stats: &FifoStats, path: &Path) {
    let n = stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
    // The first drop and then every 100th: a FIFO nobody reads must not flood the log.
    if n == 1 || n.is_multiple_of(100) {
        tracing::warn!(
            fifo = %path.display(),
            dropped = n,
            "notify_fifo is full (nobody reads it?): line dropped"
        );
    }
}

async fn write_lines(
    mut file: File,
    mut rx: mpsc::Receiver<String>,
    stats: Arc<FifoStats>,
    path: PathBuf,
    remove_at_end: bool,
) {
    while let Some(line) = rx.recv().await {
        // Non-blocking: returns at once, written or not.
        match file.write(line.as_bytes()) {
            Ok(n) if n == line.len() => {
                stats.written.fetch_add(1, Ordering::Relaxed);
            }
            Ok(_) => {
                // Not reached for lines under PIPE_BUF; counted as dropped if it ever is.
                count_drop(&stats, &path);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => count_drop(&stats, &path),
            Err(e) => {
                tracing::error!(fifo = %path.display(), "writing to notify_fifo: {e}");
                count_drop(&stats, &path);
            }
        }
    }
    if remove_at_end {
        let _ = std::fs::remove_file(&path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::time::Duration;

    #[test]
    fn keepalived_line_format() {
        assert_eq!(
            line("INSTANCE", "VI_1", "MASTER", 100),
            "INSTANCE \"VI_1\" MASTER 100\n"
        );
        assert_eq!(line("GROUP", "G1", "BACKUP", 0), "GROUP \"G1\" BACKUP 0\n");
        let long = "x".repeat(2000);
        assert!(line("INSTANCE", &long, "STOP", 1).len() <= MAX_LINE);
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn a_reader_gets_every_line_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.fifo");
        let (w, _task) = FifoWriter::open(&path).expect("open");
        // A real reader process-side: a blocking reader on its own thread.
        let p = path.clone();
        let reader = std::thread::spawn(move || {
            let f = File::open(p).expect("open for reading");
            BufReader::new(f)
                .lines()
                .take(50)
                .map(|l| l.expect("line"))
                .collect::<Vec<_>>()
        });
        for i in 0..50u8 {
            w.send(line("INSTANCE", "VI_1", "MASTER", i));
        }
        let got = tokio::task::spawn_blocking(move || reader.join().expect("reader"))
            .await
            .expect("join");
        let want: Vec<String> = (0..50u8)
            .map(|i| format!("INSTANCE \"VI_1\" MASTER {i}"))
            .collect();
        assert_eq!(got, want);
        assert_eq!(w.dropped(), 0);
    }

    /// Nobody reads: opening does not wait, writing never blocks, and once the pipe is full the
    /// lines are dropped and counted.
    #[tokio::test]
    async fn no_reader_never_blocks_and_counts_drops() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.fifo");
        let (w, _task) = FifoWriter::open(&path).expect("open without a reader");
        let total = 5000u64;
        for i in 0..total {
            w.send(line("INSTANCE", "VI_1", "BACKUP", (i % 200) as u8));
            // Let the writer keep up so that drops come from the pipe, not the queue.
            if i % 500 == 0 {
                tokio::task::yield_now().await;
            }
        }
        wait_for("all lines handled", || w.written() + w.dropped() == total).await;
        assert!(w.dropped() > 0, "a 64 KiB pipe cannot hold {total} lines");
        assert!(w.written() > 1000, "written {}", w.written());
    }

    #[tokio::test]
    async fn refuses_a_regular_file_and_keeps_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("not-a-fifo");
        std::fs::write(&path, "data").expect("write");
        assert!(FifoWriter::open(&path).is_err());
        assert_eq!(std::fs::read_to_string(&path).expect("still there"), "data");
    }

    #[tokio::test]
    async fn removes_the_fifo_it_created_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.fifo");
        let (w, _task) = FifoWriter::open(&path).expect("open");
        assert!(path.exists());
        drop(w);
        wait_for("FIFO removed", || !path.exists()).await;
    }
}
