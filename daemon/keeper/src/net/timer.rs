//! A timer with the kernel's precision (timerfd, CLOCK_MONOTONIC, absolute deadlines). tokio's
//! timer wheel rounds up to the next millisecond; a takeover at 10 ms adverts, and the "first
//! GARP within 1 ms of Master_Down" target, need better than that.

use std::io;
use std::time::Instant;

use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::unix::AsyncFd;

pub struct PreciseTimer {
    fd: AsyncFd<Tfd>,
}

/// nix's `TimerFd` offers `AsFd`; tokio's `AsyncFd` wants `AsRawFd`.
struct Tfd(TimerFd);

impl std::os::fd::AsRawFd for Tfd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsFd;
        self.0.as_fd().as_raw_fd()
    }
}

fn nix_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// `deadline` as an absolute CLOCK_MONOTONIC time (std's `Instant` is CLOCK_MONOTONIC on Linux,
/// but opaque; the offset is measured once per call, error well under a microsecond).
fn monotonic(deadline: Instant) -> io::Result<TimeSpec> {
    let now_ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).map_err(nix_err)?;
    let now = Instant::now();
    let ts = if deadline > now {
        now_ts + TimeSpec::from_duration(deadline - now)
    } else {
        now_ts - TimeSpec::from_duration(now - deadline)
    };
    // An absolute time of 0 would disarm the timer; the past fires at once.
    Ok(if ts.tv_sec() <= 0 && ts.tv_nsec() <= 0 {
        TimeSpec::new(0, 1)
    } else {
        ts
    })
}

impl PreciseTimer {
    /// Must run inside a tokio runtime.
    pub fn new() -> io::Result<PreciseTimer> {
        let tfd = TimerFd::new(
            ClockId::CLOCK_MONOTONIC,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )
        .map_err(nix_err)?;
        // SAFETY: `TimerFd` owns its descriptor, which stays open and the same until it drops.
        let fd =
            unsafe { AsyncFd::register_with_interest(Tfd(tfd), tokio::io::Interest::READABLE) }
                .map_err(io::Error::from)?;
        Ok(PreciseTimer { fd })
    }

    /// Fires at `deadline` (replacing any earlier deadline), or disarms with `None`.
    pub fn set(&self, deadline: Option<Instant>) -> io::Result<()> {
        match deadline {
            Some(d) => self
                .fd
                .get_ref()
                .0
                .set(
                    Expiration::OneShot(monotonic(d)?),
                    TimerSetTimeFlags::TFD_TIMER_ABSTIME,
                )
                .map_err(nix_err),
            None => self.fd.get_ref().0.unset().map_err(nix_err),
        }
    }

    /// Waits until the armed deadline passes. Pends forever while disarmed.
    pub async fn wait(&self) -> io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            // Reading the expiration count resets readiness; EAGAIN means a re-arm raced us.
            match nix::unistd::read(&self.fd.get_ref().0, &mut buf) {
                Ok(_) => return Ok(()),
                Err(nix::Error::EAGAIN) => guard.clear_ready(),
                Err(e) => return Err(nix_err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_at_the_deadline_not_before() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let t = PreciseTimer::new().expect("timerfd");
            for ms in [0u64, 1, 3] {
                let deadline = Instant::now() + Duration::from_millis(ms);
                t.set(Some(deadline)).expect("arm");
                tokio::time::timeout(Duration::from_secs(5), t.wait())
                    .await
                    .expect("fires")
                    .expect("read");
                assert!(Instant::now() >= deadline);
            }
            // Disarmed: does not fire.
            t.set(None).expect("disarm");
            assert!(
                tokio::time::timeout(Duration::from_millis(20), t.wait())
                    .await
                    .is_err()
            );
        });
    }
}
