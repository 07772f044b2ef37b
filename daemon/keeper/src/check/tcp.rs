//! `tcp_check`, and the connect every network check starts with: non-blocking, from `bindto`
//! when set, bounded by `connect_timeout`.

use std::net::SocketAddr;

use tokio::net::{TcpSocket, TcpStream};

use super::plan::Connect;

/// Connects as the plan says; the error text names the target and what went wrong.
pub async fn connect(c: &Connect) -> Result<TcpStream, String> {
    let target = c.target;
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket for {target}: {e}"))?;
    if let Some(ip) = c.bind {
        socket
            .bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind to {ip} (bindto): {e}"))?;
    }
    match tokio::time::timeout(c.timeout, socket.connect(target)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("connect to {target}: {e}")),
        Err(_) => Err(format!(
            "connect to {target}: no answer within connect_timeout {:?}",
            c.timeout
        )),
    }
}

/// A connect that succeeds passes; the connection is closed at once.
pub async fn check(c: &Connect) -> Result<(), String> {
    connect(c).await.map(drop)
}
