//! Simulated clients: the workloads' own client code (`ClusterClient`, the
//! transactions, every op's completion taxonomy) run as futures over a
//! [`Transport`] whose I/O the world carries out in virtual time. Each client
//! process is one task; when it awaits I/O it leaves one request in its
//! [`IoCell`], the world simulates it and polls the task again with the result
//! (no executor, no threads, no wakers: the world knows which task waits).

use super::record::Rec;
use hearsay_checkers::{OpType, Process};
use hearsay_workloads::any::{AnyGen, AnyOp, Workload};
use hearsay_workloads::cluster::{ClientConfig, ClusterClient, Routing};
use hearsay_workloads::conn::{ConnError, Link, Transport};
use hearsay_workloads::resp::Value;
use hearsay_workloads::rng::{stream, unit};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

/// What a task asks the world to do.
#[derive(Debug)]
pub enum IoReq {
    Connect {
        addr: SocketAddr,
        timeout_us: u64,
    },
    Request {
        conn: u64,
        args: Vec<Vec<u8>>,
        timeout_us: u64,
    },
    Sleep {
        us: u64,
    },
}

/// What the world answers.
#[derive(Debug)]
pub enum IoRes {
    Connected(Result<u64, ConnError>),
    Reply(Result<Value, ConnError>),
    Woke,
}

/// The one outstanding I/O of a task.
#[derive(Default)]
pub struct IoCell {
    pub req: Option<IoReq>,
    pub res: Option<IoRes>,
}

pub type Io = Rc<RefCell<IoCell>>;

struct IoFuture {
    io: Io,
    req: Option<IoReq>,
}

impl Future for IoFuture {
    type Output = IoRes;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<IoRes> {
        let req = self.req.take();
        let mut cell = self.io.borrow_mut();
        if let Some(req) = req {
            cell.res = None;
            cell.req = Some(req);
            return Poll::Pending;
        }
        match cell.res.take() {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }
}

fn io(io: &Io, req: IoReq) -> IoFuture {
    IoFuture {
        io: io.clone(),
        req: Some(req),
    }
}

/// Sleeps `us` of virtual time.
pub async fn sleep(cell: &Io, us: u64) {
    let _ = io(cell, IoReq::Sleep { us }).await;
}

/// The simulator's network, as a client transport.
pub struct SimTransport {
    pub io: Io,
}

pub struct SimConn {
    io: Io,
    id: u64,
    addr: SocketAddr,
}

impl Transport for SimTransport {
    type Conn = SimConn;
    async fn connect(&mut self, addr: SocketAddr, timeout: Duration) -> Result<SimConn, ConnError> {
        let timeout_us = timeout.as_micros() as u64;
        match io(&self.io, IoReq::Connect { addr, timeout_us }).await {
            IoRes::Connected(Ok(id)) => Ok(SimConn {
                io: self.io.clone(),
                id,
                addr,
            }),
            IoRes::Connected(Err(e)) => Err(e),
            _ => Err(ConnError::Closed { addr, sent: false }),
        }
    }
}

impl Link for SimConn {
    async fn request(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Value, ConnError> {
        let req = IoReq::Request {
            conn: self.id,
            args: args.iter().map(|a| a.to_vec()).collect(),
            timeout_us: timeout.as_micros() as u64,
        };
        match io(&self.io, req).await {
            IoRes::Reply(r) => r,
            _ => Err(ConnError::Closed {
                addr: self.addr,
                sent: true,
            }),
        }
    }
}

/// What every client task shares (run/workload.rs's `ClientSpec`, for the sim).
pub struct Clients {
    pub workload: Workload,
    pub seed: u64,
    pub keys: Vec<String>,
    pub seeds: Vec<SocketAddr>,
    pub names: BTreeMap<SocketAddr, String>,
    pub cfg: ClientConfig,
    pub read_fraction: f64,
    pub concurrency: u64,
    pub mean_gap_s: f64,
    pub rec: Rc<RefCell<Rec>>,
    pub stop: Rc<Cell<bool>>,
    pub max_process: Rc<Cell<u64>>,
}

impl Clients {
    fn client(&self, cell: &Io) -> ClusterClient<SimTransport> {
        ClusterClient::with_transport(
            self.seeds.clone(),
            self.cfg,
            Routing::Cluster,
            SimTransport { io: cell.clone() },
        )
    }
}

/// A task of the world: a worker or the final reads.
pub type Task = Pin<Box<dyn Future<Output = ()>>>;

/// One worker, as `run::workload::Worker::run`: draw, run, record; a fresh
/// process id after an `info`; paced by its own stream.
pub async fn worker(c: Rc<Clients>, cell: Io, first_process: u64) {
    let mut process = first_process;
    c.max_process.set(c.max_process.get().max(process));
    let mut gen = AnyGen::new(c.workload, c.seed, process, c.read_fraction);
    let mut client = c.client(&cell);
    let mut pace = stream(c.seed, &format!("stagger-worker-{first_process}"));
    while !c.stop.get() {
        let op = gen.next_op(&c.keys);
        if execute(&c, &op, process, &mut client).await == OpType::Info {
            process += c.concurrency;
            c.max_process.set(c.max_process.get().max(process));
            gen = AnyGen::new(c.workload, c.seed, process, c.read_fraction);
            client.disconnect();
        }
        let gap = c.mean_gap_s * 2.0 * unit(&mut pace);
        sleep(&cell, (gap * 1e6) as u64).await;
    }
}

/// `run::workload::final_reads`: every key once more, up to 20 tries.
pub async fn final_reads(c: Rc<Clients>, cell: Io, process: u64) {
    let mut client = c.client(&cell);
    for key in &c.keys {
        let op = AnyOp::final_read(c.workload, key);
        for _ in 0..20 {
            if execute(&c, &op, process, &mut client).await == OpType::Ok {
                break;
            }
            client.refresh().await;
            sleep(&cell, 500_000).await;
        }
    }
}

async fn execute(
    c: &Clients,
    op: &AnyOp,
    process: u64,
    client: &mut ClusterClient<SimTransport>,
) -> OpType {
    c.rec.borrow_mut().record(
        Process::Client(process),
        OpType::Invoke,
        op.f(),
        op.value(),
        None,
        None,
    );
    let (kind, value, error, node) = op.execute(client, c.cfg).await;
    let node = node.map(|a| c.names.get(&a).cloned().unwrap_or_else(|| a.to_string()));
    c.rec
        .borrow_mut()
        .record(Process::Client(process), kind, op.f(), value, node, error);
    kind
}
