//! One RESP connection to one node, with a bound on every step.
//!
//! The error type records whether the request may have reached the server (`sent`),
//! which is what decides between `fail` (certainly not applied) and `info` (unknown).

use crate::resp::{self, RespError, Value};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection-level failure.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("connection refused by {addr}")]
    Refused { addr: SocketAddr },
    #[error("connect to {addr} timed out")]
    ConnectTimeout { addr: SocketAddr },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: timed out waiting for reply (request {})", sent_text(*.sent))]
    Timeout { addr: SocketAddr, sent: bool },
    #[error("{addr}: connection closed (request {})", sent_text(*.sent))]
    Closed { addr: SocketAddr, sent: bool },
    #[error("{addr}: i/o error (request {}): {source}", sent_text(*.sent))]
    Io {
        addr: SocketAddr,
        sent: bool,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr}: malformed reply: {source}")]
    Protocol {
        addr: SocketAddr,
        #[source]
        source: RespError,
    },
}

fn sent_text(sent: bool) -> &'static str {
    if sent {
        "sent"
    } else {
        "not sent"
    }
}

impl ConnError {
    /// True when the server certainly did not execute the request: it never got it.
    pub fn certainly_not_applied(&self) -> bool {
        match self {
            ConnError::Refused { .. }
            | ConnError::ConnectTimeout { .. }
            | ConnError::Connect { .. } => true,
            ConnError::Timeout { sent, .. }
            | ConnError::Closed { sent, .. }
            | ConnError::Io { sent, .. } => !sent,
            // The server answered something we cannot parse: it did receive the request.
            ConnError::Protocol { .. } => false,
        }
    }

    /// A short tag for the history's `error` field.
    pub fn tag(&self) -> String {
        match self {
            ConnError::Refused { .. } => "connection-refused".into(),
            ConnError::ConnectTimeout { .. } => "connect-timeout".into(),
            ConnError::Connect { source, .. } => format!("connect-error: {source}"),
            ConnError::Timeout { .. } => "timeout".into(),
            ConnError::Closed { .. } => "connection-closed".into(),
            ConnError::Io { source, .. } => format!("io-error: {source}"),
            ConnError::Protocol { source, .. } => format!("protocol-error: {source}"),
        }
    }
}

/// An open connection.
pub struct Conn {
    addr: SocketAddr,
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    /// Connects within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Conn, ConnError> {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Err(_) => Err(ConnError::ConnectTimeout { addr }),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                Err(ConnError::Refused { addr })
            }
            Ok(Err(source)) => Err(ConnError::Connect { addr, source }),
            Ok(Ok(stream)) => {
                // Small requests; latency matters more than batching.
                let _ = stream.set_nodelay(true);
                Ok(Conn {
                    addr,
                    stream,
                    buf: Vec::with_capacity(4096),
                })
            }
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends one command and reads one reply, all within `timeout`.
    /// After any error the connection must be dropped: its stream position is unknown.
    pub async fn request(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Value, ConnError> {
        let addr = self.addr;
        let deadline = tokio::time::Instant::now() + timeout;
        let frame = resp::encode(args);
        match tokio::time::timeout_at(deadline, self.stream.write_all(&frame)).await {
            // A partial write may have delivered the command; count it as sent.
            Err(_) => return Err(ConnError::Timeout { addr, sent: true }),
            Ok(Err(source)) => {
                return Err(ConnError::Io {
                    addr,
                    sent: true,
                    source,
                })
            }
            Ok(Ok(())) => {}
        }
        loop {
            match resp::decode(&self.buf) {
                Err(source) => return Err(ConnError::Protocol { addr, source }),
                Ok(Some((v, used))) => {
                    self.buf.drain(..used);
                    return Ok(v);
                }
                Ok(None) => {}
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return Err(ConnError::Timeout { addr, sent: true }),
                Ok(Err(source)) => {
                    return Err(ConnError::Io {
                        addr,
                        sent: true,
                        source,
                    })
                }
                Ok(Ok(0)) => return Err(ConnError::Closed { addr, sent: true }),
                Ok(Ok(n)) => self.buf.extend_from_slice(chunk.get(..n).unwrap_or(&[])),
            }
        }
    }
}

/// How a client reaches nodes: TCP sockets in real runs ([`Tcp`]); the simulator
/// (`hearsay sim`) plugs in its virtual network, so the cluster client, the
/// transactions and every workload's op logic run unchanged in simulated time.
pub trait Transport {
    type Conn: Link;
    /// Connects within `timeout`.
    fn connect(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Self::Conn, ConnError>>;
}

/// One open connection of a [`Transport`].
pub trait Link {
    /// Sends one command and reads one reply within `timeout`; after an error the
    /// connection must be dropped.
    fn request(
        &mut self,
        args: &[&[u8]],
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Value, ConnError>>;
}

/// Real TCP connections.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tcp;

impl Transport for Tcp {
    type Conn = Conn;
    fn connect(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Conn, ConnError>> {
        Conn::connect(addr, timeout)
    }
}

impl Link for Conn {
    fn request(
        &mut self,
        args: &[&[u8]],
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Value, ConnError>> {
        Conn::request(self, args, timeout)
    }
}

/// One-shot helper: connect, send one command, return the reply.
pub async fn oneshot(
    addr: SocketAddr,
    args: &[&[u8]],
    timeout: Duration,
) -> Result<Value, ConnError> {
    let mut c = Conn::connect(addr, timeout).await?;
    c.request(args, timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn refused_is_certain_timeout_after_send_is_not() {
        // Bind then drop to get a port nobody listens on.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = Conn::connect(addr, Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(matches!(e, ConnError::Refused { .. }), "{e}");
        assert!(e.certainly_not_applied());

        // A server that accepts and never answers.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(2)).await;
            drop(s);
        });
        let mut c = Conn::connect(addr, Duration::from_secs(1)).await.unwrap();
        let e = c
            .request(&[b"PING"], Duration::from_millis(100))
            .await
            .err()
            .unwrap();
        assert!(matches!(e, ConnError::Timeout { sent: true, .. }), "{e}");
        assert!(!e.certainly_not_applied());
        hold.abort();
    }

    #[tokio::test]
    async fn reads_split_reply_and_eof_is_unknown() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 64];
            let _ = s.read(&mut b).await;
            s.write_all(b"$5\r\nhel").await.unwrap();
            tokio::time::sleep(Duration::from_millis(30)).await;
            s.write_all(b"lo\r\n").await.unwrap();
            let _ = s.read(&mut b).await;
            // close without answering the second request
        });
        let mut c = Conn::connect(addr, Duration::from_secs(1)).await.unwrap();
        let v = c
            .request(&[b"GET", b"k"], Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(v, Value::Bulk(Some(b"hello".to_vec().into())));
        let e = c
            .request(&[b"GET", b"k"], Duration::from_secs(1))
            .await
            .err()
            .unwrap();
        assert!(matches!(e, ConnError::Closed { sent: true, .. }), "{e}");
    }
}
