//! `file_check`, with keepalived's semantics (`check_file.c`, `track_file.c`): the integer in a
//! tracked file (a `vrrp_track_file` table) decides, at once, whenever the file changes:
//! - weight 0: a value of 0 is UP, anything else DOWN (`reverse`: the other way round);
//! - otherwise value x weight (negated with `reverse`), bounded to a 32-bit integer, is added
//!   to the real server's weight; the bound's bottom (-2^31) is DOWN (keepalived's
//!   `IPVS_WEIGHT_FAULT`); a real server whose sum is 0 or less stays UP with weight 0.
//!
//! The file is read, and watched, exactly as for VRRP tracking (`track::file`): the same
//! reading of the number, the same inotify watch on its directory, a missing file reads 0.
//! The state is known at start (the file is read before the first verdict), so a file check
//! never starts DOWN by `alpha` and never waits for a first attempt.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The checker's state and weight for the file's `value`: `(up, added weight)`.
pub fn state(value: i64, weight: i64, reverse: bool) -> (bool, i64) {
    if weight == 0 {
        return ((value == 0) != reverse, 0);
    }
    let product = i128::from(value) * i128::from(weight) * if reverse { -1 } else { 1 };
    let bounded = product.clamp(i128::from(i32::MIN), i128::from(i32::MAX)) as i64;
    if bounded == i64::from(i32::MIN) {
        (false, 0)
    } else {
        (true, bounded)
    }
}

/// Reads the file's value as `track::file` does: missing or unreadable is 0; `None` for a
/// number out of range (the previous value stays).
pub fn read_value(path: &Path) -> Option<i64> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path);
    let Ok(mut file) = file else { return Some(0) };
    let mut buf = [0u8; 127];
    match file.read(&mut buf) {
        Ok(len) => crate::track::file::parse_value(&buf[..len]),
        Err(_) => Some(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_zero_is_up_down() {
        assert_eq!(state(0, 0, false), (true, 0));
        assert_eq!(state(1, 0, false), (false, 0));
        assert_eq!(state(-3, 0, false), (false, 0));
        assert_eq!(state(0, 0, true), (false, 0));
        assert_eq!(state(7, 0, true), (true, 0));
    }

    #[test]
    fn weights_add_and_the_bottom_is_down() {
        assert_eq!(state(3, 2, false), (true, 6));
        assert_eq!(state(3, 2, true), (true, -6));
        assert_eq!(state(-5, 10, false), (true, -50));
        assert_eq!(
            state(i64::from(i32::MAX), 2, false),
            (true, i64::from(i32::MAX))
        );
        assert_eq!(state(i64::from(i32::MIN), 1, false), (false, 0));
        assert_eq!(state(-2_000_000_000, 2, false), (false, 0));
        assert_eq!(state(2_000_000_000, 2, true), (false, 0));
    }

    #[test]
    fn reads_as_track_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("w");
        assert_eq!(read_value(&f), Some(0), "missing");
        std::fs::write(&f, "0x10\n").expect("write");
        assert_eq!(read_value(&f), Some(16));
        std::fs::write(&f, "99999999999").expect("write");
        assert_eq!(read_value(&f), None, "out of range");
    }
}
