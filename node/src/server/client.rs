//! Client connections: read whatever requests have arrived, run them all under
//! one lock acquisition (pipelining costs one lock per read, not per command),
//! write all replies at once.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::host::HostCtx;
use super::Shared;
use crate::cluster::LogLevel;
use crate::commands::{self, ClientState};
use crate::resp::{self, Frame, RequestLimits};

pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(shared.clone(), stream));
            }
            Err(e) => {
                shared.node.lock().log(
                    LogLevel::Verbose,
                    &format!("Accepting client connection: {e}"),
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn serve(shared: Arc<Shared>, mut stream: TcpStream) {
    let mut client = {
        let mut n = shared.node.lock();
        n.stats.connected_clients += 1;
        n.stats.total_connections += 1;
        let id = n.stats.next_client_id;
        n.stats.next_client_id += 1;
        ClientState::new(id)
    };
    let limits = RequestLimits::default();
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut outbuf = BytesMut::with_capacity(16 * 1024);
    let mut requests = Vec::new();
    'conn: loop {
        match stream.read_buf(&mut inbuf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let mut protocol_error = None;
        loop {
            match resp::parse_request(&inbuf, &limits) {
                Ok(Some((args, used))) => {
                    inbuf.advance(used);
                    if !args.is_empty() {
                        requests.push(args);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    protocol_error = Some(e);
                    break;
                }
            }
        }
        let mut close = false;
        if !requests.is_empty() {
            let mut guard = shared.node.lock();
            let n = &mut *guard;
            for args in requests.drain(..) {
                n.stats.total_commands += 1;
                let mut host =
                    HostCtx::new(&mut n.cluster, &mut n.config, &mut n.stats, &mut n.logger);
                let outcome = commands::execute(&mut host, &mut n.db, &mut client, args);
                resp::encode(&outcome.reply, client.resp3, &mut outbuf);
                if outcome.close {
                    close = true;
                    break;
                }
            }
            guard.drain(&shared);
        }
        if let Some(e) = protocol_error {
            resp::encode(&Frame::Error(format!("ERR {e}")), client.resp3, &mut outbuf);
            close = true;
        }
        if !outbuf.is_empty() {
            if stream.write_all(&outbuf).await.is_err() {
                break 'conn;
            }
            outbuf.clear();
        }
        if close {
            break;
        }
        // Don't hold on to a huge buffer after one big request.
        if inbuf.is_empty() && inbuf.capacity() > 1024 * 1024 {
            inbuf = BytesMut::with_capacity(16 * 1024);
        }
    }
    let mut n = shared.node.lock();
    n.stats.connected_clients -= 1;
    // Release this connection's WATCHes (they live in the db).
    commands::disconnect(&mut n.db, &mut client);
}
