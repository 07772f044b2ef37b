//! VRRP protocol core: codec and state machine, with no sockets and no clock.
//!
//! Everything here is pure: time is an argument, I/O is the caller's job.
