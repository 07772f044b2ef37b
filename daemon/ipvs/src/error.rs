//! Error types: encoding (a value the kernel cannot take), decoding (a kernel answer this crate
//! cannot read, naming the attribute), and the client's errors.

use std::fmt;
use std::time::Duration;

use crate::codec::Request;

/// A value that cannot be put in a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A name longer than the kernel's buffer for it.
    #[error("{attr}: {value:?} is longer than {max} bytes")]
    TooLong {
        /// Attribute, e.g. `IPVS_SVC_ATTR_SCHED_NAME`.
        attr: &'static str,
        /// The offending value.
        value: String,
        /// Longest accepted length, without the NUL.
        max: usize,
    },
    /// A name with a NUL byte inside.
    #[error("{attr}: {value:?} contains a NUL byte")]
    Nul {
        /// Attribute.
        attr: &'static str,
        /// The offending value.
        value: String,
    },
    /// An IPv4 multicast group that is not multicast, or similar inconsistency.
    #[error("{attr}: {detail}")]
    Invalid {
        /// Attribute.
        attr: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// neli refused to serialise (should not happen for valid values).
    #[error("netlink serialisation: {0}")]
    Netlink(String),
}

/// A kernel answer that cannot be read. Never a panic: every malformed input ends here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its headers say.
    #[error("netlink message truncated at byte {offset}: {what}")]
    Truncated {
        /// Byte offset in the datagram.
        offset: usize,
        /// Which header or field.
        what: &'static str,
    },
    /// An attribute whose payload has the wrong size.
    #[error("{attr}: payload is {got} bytes, expected {expected}")]
    Length {
        /// Attribute name.
        attr: &'static str,
        /// Accepted size(s).
        expected: &'static str,
        /// Actual size.
        got: usize,
    },
    /// A required attribute is absent.
    #[error("{attr}: missing")]
    Missing {
        /// Attribute name.
        attr: &'static str,
    },
    /// An attribute with a value outside its domain.
    #[error("{attr}: invalid value {value}")]
    Invalid {
        /// Attribute name.
        attr: &'static str,
        /// The value, printed.
        value: String,
    },
    /// Attributes that do not parse as a TLV list.
    #[error("{context}: malformed attributes ({detail})")]
    Malformed {
        /// Where.
        context: &'static str,
        /// Parser's complaint.
        detail: String,
    },
    /// A message that does not fit the exchange (wrong command, family, ...).
    #[error("unexpected message: {0}")]
    Unexpected(String),
}

/// One operation of a batch the kernel refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Position of the request in the batch given to [`crate::IpvsClient::apply`].
    pub index: usize,
    /// The request.
    pub request: Request,
    /// Positive errno.
    pub errno: i32,
    /// Extended-ACK text, when the kernel gave one.
    pub message: Option<String>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}",
            self.request,
            explain_errno(&self.request, self.errno)
        )?;
        if let Some(m) = &self.message {
            write!(f, " (kernel: {m})")?;
        }
        Ok(())
    }
}

/// Errors of [`crate::IpvsClient`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The generic-netlink family `IPVS` does not exist: no IPVS in this kernel.
    #[error(
        "IPVS not available: the kernel has no generic netlink family \"IPVS\"; load the module \
         with `modprobe ip_vs` (or use a kernel built with CONFIG_IP_VS)"
    )]
    Unavailable,
    /// EPERM / EACCES from the kernel.
    #[error("permission denied while trying to {during}: IPVS needs CAP_NET_ADMIN (run as root)")]
    PermissionDenied {
        /// What was being done.
        during: String,
    },
    /// A single request the kernel refused.
    #[error("{during}: {}{}", strerror(*.errno), .message.as_deref().map(|m| format!(" (kernel: {m})")).unwrap_or_default())]
    Kernel {
        /// What was being done.
        during: String,
        /// Positive errno.
        errno: i32,
        /// Extended-ACK text.
        message: Option<String>,
    },
    /// Some operations of a batch were refused; the others were applied.
    #[error("{} of {total} IPVS operations rejected; first: {}", .rejections.len(), .rejections.first().map(|r| r.to_string()).unwrap_or_default())]
    Rejected {
        /// Number of operations sent.
        total: usize,
        /// Every refused operation, in order.
        rejections: Vec<Rejection>,
    },
    /// Socket error.
    #[error("netlink socket: {0}")]
    Io(#[from] std::io::Error),
    /// A request could not be built.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The kernel's answer could not be read.
    #[error("unreadable answer from the kernel: {0}")]
    Decode(#[from] DecodeError),
    /// No answer in time.
    #[error("no answer from the kernel within {timeout:?} while trying to {during}")]
    Timeout {
        /// What was being done.
        during: String,
        /// The deadline.
        timeout: Duration,
    },
    /// The receive queue overflowed and answers were dropped (ENOBUFS).
    #[error(
        "kernel answers lost (ENOBUFS: socket receive buffer overflowed) while trying to {during}; \
         the table state is unknown: dump it and reconcile again"
    )]
    AnswersLost {
        /// What was being done.
        during: String,
    },
    /// A dump kept being interrupted by concurrent changes.
    #[error("dump of {what} interrupted by concurrent changes {attempts} times in a row")]
    DumpInconsistent {
        /// What was dumped.
        what: String,
        /// Attempts made.
        attempts: u32,
    },
}

/// `strerror` plus the errno name.
pub fn strerror(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"; keep the text only.
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// What an errno means for an IPVS request, in the terms of the request (as ipvsadm explains).
pub fn explain_errno(request: &Request, errno: i32) -> String {
    use crate::consts::IpvsCmd as C;
    let cmd = request.cmd();
    let hint = match (errno, cmd) {
        (libc_errno::ESRCH, C::DelDaemon) => Some("no such sync daemon"),
        (libc_errno::ESRCH, _) => Some("service does not exist"),
        (libc_errno::EEXIST, C::NewService) => Some("service already exists"),
        (libc_errno::EEXIST, C::NewDest) => Some("destination already exists"),
        (libc_errno::ENOENT, C::NewService | C::SetService) => {
            Some("scheduler or persistence engine not found (is its ip_vs_* module loaded?)")
        }
        (libc_errno::ENOENT, C::SetDest | C::DelDest) => Some("no such destination"),
        (libc_errno::EBUSY, C::NewDaemon) => Some("sync daemon already running"),
        (libc_errno::ENOENT, C::DelDaemon) => Some("no such sync daemon"),
        (libc_errno::ENODEV, C::NewDaemon) => Some("no such interface"),
        (libc_errno::EPERM | libc_errno::EACCES, _) => Some("needs CAP_NET_ADMIN"),
        _ => None,
    };
    match hint {
        Some(h) => format!("{h} ({})", strerror(errno)),
        None => strerror(errno),
    }
}

/// The errno values this crate interprets (Linux numbering; this crate is Linux-only).
pub mod libc_errno {
    /// Operation not permitted.
    pub const EPERM: i32 = 1;
    /// No such file or directory.
    pub const ENOENT: i32 = 2;
    /// No such process (IPVS: no such service).
    pub const ESRCH: i32 = 3;
    /// Device or resource busy.
    pub const EBUSY: i32 = 16;
    /// File exists.
    pub const EEXIST: i32 = 17;
    /// No such device.
    pub const ENODEV: i32 = 19;
    /// Invalid argument.
    pub const EINVAL: i32 = 22;
    /// Permission denied.
    pub const EACCES: i32 = 13;
    /// No buffer space available.
    pub const ENOBUFS: i32 = 105;
}
