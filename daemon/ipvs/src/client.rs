//! Async (tokio) client of the kernel's `IPVS` generic-netlink family.
//!
//! One non-blocking netlink socket, driven by `tokio::io::unix::AsyncFd`. Operations are
//! pipelined: up to [`ClientConfig::batch_size`] requests go out in one `sendmsg`, each with its
//! own sequence number; the kernel processes them in order (continuing after a refusal) and
//! answers every refusal, so each is tied to its request. Only the last request of a batch asks
//! for an ACK: it arrives after every refusal of the batch, and the kernel neither builds nor
//! queues an answer per accepted entry (in a VM each of those was a `recvmsg`). The kernel
//! handles a generic-netlink `sendmsg` synchronously, so its answers are queued before `sendmsg`
//! returns: the receive buffer is enlarged to hold a full batch of refusals.

use std::io;
use std::time::Duration;

use neli::{consts::socket::NlFamily, socket::NlSocket, utils::Groups};
use tokio::io::unix::AsyncFd;

use crate::codec::{self, Request, decode};
use crate::consts;
use crate::error::{Error, Rejection, libc_errno};
use crate::model::{
    Destination, Info, Service, ServiceKey, SyncDaemon, Table, Timeouts, VirtualService,
};
use crate::reconcile::Op;

/// Tuning of [`IpvsClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Requests per `sendmsg` in [`IpvsClient::apply`] (at least 1).
    pub batch_size: usize,
    /// How long to wait for each answer from the kernel.
    pub timeout: Duration,
    /// Requested `SO_RCVBUF` in bytes (the kernel doubles it and caps it at twice
    /// `net.core.rmem_max`).
    pub recv_buffer: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            batch_size: 256,
            timeout: Duration::from_secs(5),
            recv_buffer: 4 << 20,
        }
    }
}

/// Size of the receive buffer for one datagram; kernel dumps use at most 32 KiB per datagram.
const RECV_BUF: usize = 64 * 1024;
/// Dump attempts when the kernel flags a dump as interrupted by concurrent changes.
const DUMP_ATTEMPTS: u32 = 3;

/// A connection to the kernel's IPVS.
pub struct IpvsClient {
    sock: AsyncFd<NlSocket>,
    family: u16,
    next_seq: u32,
    cfg: ClientConfig,
    buf: Vec<u8>,
    capture: Option<Vec<Vec<u8>>>,
}

impl IpvsClient {
    /// Open a netlink socket and resolve the `IPVS` family with default settings.
    ///
    /// Errors: [`Error::Unavailable`] when the kernel has no IPVS (say `modprobe ip_vs`),
    /// [`Error::PermissionDenied`] without CAP_NET_ADMIN (on the first IPVS request; the
    /// resolution itself is unprivileged).
    pub async fn connect() -> Result<Self, Error> {
        Self::connect_with(ClientConfig::default()).await
    }

    /// [`IpvsClient::connect`] with explicit settings.
    pub async fn connect_with(cfg: ClientConfig) -> Result<Self, Error> {
        let sock = NlSocket::connect(NlFamily::Generic, None, Groups::empty())?;
        sock.nonblock()?;
        // Best effort: a smaller buffer only limits how many ACKs a batch can hold.
        let _ = sock.set_recv_buffer_size(cfg.recv_buffer);
        let _ = sock.enable_ext_ack(true);
        // `AsyncFd::new` is deprecated in newer tokio in favour of an unsafe `register` whose
        // contract (the fd stays open while registered) holds here: the `AsyncFd` owns the
        // socket. `new` keeps every tokio 1.x working.
        #[allow(deprecated)]
        let sock = AsyncFd::new(sock)?;
        let mut client = IpvsClient {
            sock,
            family: 0,
            next_seq: 1,
            cfg,
            buf: vec![0; RECV_BUF],
            capture: None,
        };
        client.family = client.resolve_family(consts::IPVS_GENL_NAME).await?;
        Ok(client)
    }

    /// The family id the kernel gave `IPVS`.
    pub fn family_id(&self) -> u16 {
        self.family
    }

    /// Record every datagram received from now on (for fixture capture and debugging).
    pub fn set_capture(&mut self, on: bool) {
        self.capture = if on { Some(Vec::new()) } else { None };
    }

    /// The datagrams recorded since capture was switched on (or last taken).
    pub fn take_captured(&mut self) -> Vec<Vec<u8>> {
        self.capture
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        s
    }

    async fn send(&self, bytes: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.sock.writable().await?;
            match guard.try_io(|s| s.get_ref().send(bytes, neli::consts::socket::Msg::empty())) {
                Ok(Ok(n)) if n == bytes.len() => return Ok(()),
                Ok(Ok(n)) => {
                    return Err(io::Error::other(format!(
                        "short netlink send: {n} of {} bytes",
                        bytes.len()
                    )));
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Receive one datagram into `self.buf`; returns its length.
    async fn recv(&mut self, during: &(dyn Fn() -> String + Sync)) -> Result<usize, Error> {
        let timeout = self.cfg.timeout;
        let sock = &self.sock;
        let buf = &mut self.buf;
        let fut = async {
            loop {
                let mut guard = sock.readable().await?;
                match guard.try_io(|s| {
                    s.get_ref()
                        .recv(&mut buf[..], neli::consts::socket::Msg::empty())
                }) {
                    Ok(r) => return r.map(|(n, _groups)| n),
                    Err(_would_block) => continue,
                }
            }
        };
        let n = match tokio::time::timeout(timeout, fut).await {
            Err(_) => {
                return Err(Error::Timeout {
                    during: during(),
                    timeout,
                });
            }
            Ok(Err(e)) if e.raw_os_error() == Some(libc_errno::ENOBUFS) => {
                return Err(Error::AnswersLost { during: during() });
            }
            Ok(Err(e)) => return Err(Error::Io(e)),
            Ok(Ok(n)) => n,
        };
        if n >= self.buf.len() {
            // recv() without MSG_TRUNC cannot tell a full buffer from a cut datagram.
            return Err(Error::Io(io::Error::other(
                "netlink datagram filled the receive buffer (possibly truncated)",
            )));
        }
        if let Some(c) = self.capture.as_mut() {
            c.push(self.buf[..n].to_vec());
        }
        Ok(n)
    }

    fn kernel_error(during: String, errno: i32, message: Option<String>) -> Error {
        if errno == libc_errno::EPERM || errno == libc_errno::EACCES {
            Error::PermissionDenied { during }
        } else {
            Error::Kernel {
                during,
                errno,
                message,
            }
        }
    }

    async fn resolve_family(&mut self, name: &str) -> Result<u16, Error> {
        let seq = self.seq();
        let during = || format!("resolve the generic netlink family {name:?}");
        self.send(&codec::encode_get_family(name, seq)?).await?;
        let mut id = None;
        loop {
            let n = self.recv(&during).await?;
            for msg in decode::split(&self.buf[..n])? {
                if msg.seq != seq {
                    continue;
                }
                match msg.ty {
                    consts::NLMSG_ERROR => {
                        let ack = decode::ack(&msg)?;
                        match ack.errno {
                            0 => {
                                return id.ok_or(Error::Decode(crate::DecodeError::Missing {
                                    attr: "CTRL_ATTR_FAMILY_ID",
                                }));
                            }
                            libc_errno::ENOENT => return Err(Error::Unavailable),
                            e => return Err(Self::kernel_error(during(), e, ack.message)),
                        }
                    }
                    consts::GENL_ID_CTRL => id = Some(decode::family_id(msg.payload)?),
                    _ => {}
                }
            }
        }
    }

    /// One non-dump request: its replies (if any) until its ACK.
    async fn request(&mut self, req: &Request) -> Result<Vec<decode::GenlMsg>, Error> {
        let seq = self.seq();
        let bytes = req.encode(self.family, seq)?;
        self.send(&bytes).await?;
        let during = || req.to_string();
        let mut replies = Vec::new();
        loop {
            let n = self.recv(&during).await?;
            for msg in decode::split(&self.buf[..n])? {
                if msg.seq != seq {
                    continue;
                }
                if msg.ty == consts::NLMSG_ERROR {
                    let ack = decode::ack(&msg)?;
                    if ack.errno == 0 {
                        return Ok(replies);
                    }
                    return Err(Self::kernel_error(during(), ack.errno, ack.message));
                }
                if msg.ty == self.family {
                    replies.push(decode::genl(msg.payload)?);
                }
            }
        }
    }

    /// One dump request: every entry until `NLMSG_DONE`, retried when interrupted.
    async fn dump(&mut self, req: &Request) -> Result<Vec<decode::GenlMsg>, Error> {
        for _ in 0..DUMP_ATTEMPTS {
            let seq = self.seq();
            let bytes = req.encode(self.family, seq)?;
            self.send(&bytes).await?;
            let during = || req.to_string();
            let mut entries = Vec::new();
            let mut interrupted = false;
            'recv: loop {
                let n = self.recv(&during).await?;
                for msg in decode::split(&self.buf[..n])? {
                    if msg.seq != seq {
                        continue;
                    }
                    interrupted |= msg.flags & consts::NLM_F_DUMP_INTR != 0;
                    match msg.ty {
                        consts::NLMSG_DONE => break 'recv,
                        consts::NLMSG_ERROR => {
                            let ack = decode::ack(&msg)?;
                            if ack.errno == 0 {
                                break 'recv;
                            }
                            return Err(Self::kernel_error(during(), ack.errno, ack.message));
                        }
                        t if t == self.family => entries.push(decode::genl(msg.payload)?),
                        _ => {}
                    }
                }
            }
            if !interrupted {
                return Ok(entries);
            }
        }
        Err(Error::DumpInconsistent {
            what: req.to_string(),
            attempts: DUMP_ATTEMPTS,
        })
    }

    /// Version and connection table size.
    pub async fn info(&mut self) -> Result<Info, Error> {
        let replies = self.request(&Request::GetInfo).await?;
        let g = replies
            .first()
            .ok_or(Error::Decode(crate::DecodeError::Unexpected(
                "no GET_INFO reply".to_string(),
            )))?;
        Ok(decode::info(g)?)
    }

    /// Protocol timeouts.
    pub async fn timeouts(&mut self) -> Result<Timeouts, Error> {
        let replies = self.request(&Request::GetConfig).await?;
        let g = replies
            .first()
            .ok_or(Error::Decode(crate::DecodeError::Unexpected(
                "no GET_CONFIG reply".to_string(),
            )))?;
        Ok(decode::timeouts(g)?)
    }

    /// One service, `None` when it does not exist.
    pub async fn service(&mut self, key: &ServiceKey) -> Result<Option<Service>, Error> {
        match self.request(&Request::GetService(*key)).await {
            Ok(replies) => match replies.first() {
                Some(g) => Ok(Some(decode::service_reply(g)?)),
                None => Ok(None),
            },
            Err(Error::Kernel { errno, .. }) if errno == libc_errno::ESRCH => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every virtual service (without destinations).
    pub async fn services(&mut self) -> Result<Vec<Service>, Error> {
        let entries = self.dump(&Request::DumpServices).await?;
        Ok(entries
            .iter()
            .map(decode::service_reply)
            .collect::<Result<_, _>>()?)
    }

    /// The destinations of a service (empty when the service does not exist).
    pub async fn destinations(&mut self, key: &ServiceKey) -> Result<Vec<Destination>, Error> {
        let entries = self.dump(&Request::DumpDests(*key)).await?;
        Ok(entries
            .iter()
            .map(|g| decode::dest_reply(g, key.af()))
            .collect::<Result<_, _>>()?)
    }

    /// The whole table: every service with its destinations.
    pub async fn table(&mut self) -> Result<Table, Error> {
        let mut table = Table::new();
        for service in self.services().await? {
            let key = service.key;
            let mut vs = VirtualService::new(service);
            for d in self.destinations(&key).await? {
                vs.destinations.insert(d.key(), d);
            }
            table.insert(vs);
        }
        Ok(table)
    }

    /// The running sync daemons.
    pub async fn daemons(&mut self) -> Result<Vec<SyncDaemon>, Error> {
        let entries = self.dump(&Request::DumpDaemons).await?;
        Ok(entries
            .iter()
            .map(decode::daemon_reply)
            .collect::<Result<_, _>>()?)
    }

    /// One request that changes something; a refusal is [`Error::Kernel`] (or
    /// [`Error::PermissionDenied`]).
    pub async fn execute(&mut self, req: &Request) -> Result<(), Error> {
        if req.is_dump() {
            return Err(Error::Encode(crate::EncodeError::Invalid {
                attr: "request",
                detail: format!("{req} is a dump; use the listing methods"),
            }));
        }
        self.request(req).await.map(|_| ())
    }

    /// Reconcile operations, pipelined (see [`IpvsClient::apply`]).
    pub async fn apply_ops(&mut self, ops: &[Op]) -> Result<(), Error> {
        let reqs: Vec<Request> = ops.iter().map(Op::to_request).collect();
        self.apply(&reqs).await
    }

    /// Send many requests pipelined, in order: [`ClientConfig::batch_size`] per `sendmsg`, then
    /// their ACKs. Every request is attempted; the refused ones come back together as
    /// [`Error::Rejected`], each naming its request. Dumps are not accepted here.
    pub async fn apply(&mut self, requests: &[Request]) -> Result<(), Error> {
        let mut rejections = Vec::new();
        let batch = self.cfg.batch_size.max(1);
        for (chunk_no, chunk) in requests.chunks(batch).enumerate() {
            let first_index = chunk_no * batch;
            let base = self.next_seq;
            let mut out = Vec::with_capacity(chunk.len() * 128);
            for (i, req) in chunk.iter().enumerate() {
                if req.is_dump() {
                    return Err(Error::Encode(crate::EncodeError::Invalid {
                        attr: "request",
                        detail: format!("{req} is a dump and cannot be batched"),
                    }));
                }
                let seq = base.wrapping_add(i as u32);
                // Only the last request asks for an ACK: refusals are answered anyway, in
                // order, so the last ACK closes the batch (see `Request::encode_unacked`).
                let bytes = if i + 1 == chunk.len() {
                    req.encode(self.family, seq)?
                } else {
                    req.encode_unacked(self.family, seq)?
                };
                out.extend_from_slice(&bytes);
            }
            self.next_seq = base.wrapping_add(chunk.len() as u32).max(1);
            self.send(&out).await?;
            let last = chunk.len() - 1;
            let mut answered = vec![false; chunk.len()];
            let during = || {
                format!(
                    "apply IPVS operations {}..{}",
                    first_index,
                    first_index + chunk.len()
                )
            };
            while !answered[last] {
                let n = self.recv(&during).await?;
                for msg in decode::split(&self.buf[..n])? {
                    if msg.ty != consts::NLMSG_ERROR {
                        continue;
                    }
                    let ack = decode::ack(&msg)?;
                    let i = msg.seq.wrapping_sub(base) as usize;
                    if i >= chunk.len() || answered[i] {
                        continue; // a late answer to an earlier exchange
                    }
                    answered[i] = true;
                    if ack.errno != 0 {
                        rejections.push(Rejection {
                            index: first_index + i,
                            request: chunk[i].clone(),
                            errno: ack.errno,
                            message: ack.message,
                        });
                    }
                }
            }
        }
        if rejections.is_empty() {
            return Ok(());
        }
        if rejections
            .iter()
            .all(|r| r.errno == libc_errno::EPERM || r.errno == libc_errno::EACCES)
        {
            return Err(Error::PermissionDenied {
                during: format!("apply {} IPVS operations", requests.len()),
            });
        }
        Err(Error::Rejected {
            total: requests.len(),
            rejections,
        })
    }
}
