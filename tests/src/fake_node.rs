//! A node that misbehaves on purpose, for the tests of what a bad peer must not be able to do:
//! it joins with the real join token and heartbeats like any node, but answers tasks as it is
//! told ([`Behaviour`]). Runs on the test's tokio runtime.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use weft_abi::task::{MapOutput, TaskOutput};
use weft_wire::frame::DEFAULT_MAX_FRAME;
use weft_wire::pki::{Identity, NodeKey, Token, TokenKind};
use weft_wire::protocol::{Request, Response};
use weft_wire::transport::{self, ClientAuth, ClientEndpoint, ServerTrust};

/// How the fake node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Accept every task and never answer (a node that is connected but stuck).
    Silent,
    /// Claim to have run map tasks, reporting map outputs that its shuffle service then never
    /// serves (it accepts fetches and stays silent); other tasks are not answered either.
    ClaimMapOutputs,
}

type Held = Arc<Mutex<Vec<(quinn::SendStream, quinn::RecvStream)>>>;

/// A node that joined and misbehaves; it leaves the cluster when dropped.
pub struct FakeNode {
    /// Its id in the cluster.
    pub node_id: String,
    tasks: Arc<AtomicU64>,
    conn: quinn::Connection,
    _endpoints: (ClientEndpoint, quinn::Endpoint),
    tasks_loop: tokio::task::JoinHandle<()>,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// Join the coordinator at `addr` with `join_token`: a node certificate (what any node holds)
/// and the cluster's CA certificate.
pub async fn node_identity(addr: &str, join_token: &str) -> (Identity, CertificateDer<'static>) {
    let addr = addr.parse().expect("coordinator address");
    let token = Token::parse(join_token, TokenKind::Join).expect("join token");
    let key = NodeKey::generate().expect("key");
    let pinned =
        transport::client_endpoint(ServerTrust::PinnedCa(token.ca_fingerprint), None).unwrap();
    let conn = transport::connect(&pinned, addr).await.expect("connect");
    let csr_pem = key.csr_pem.clone();
    let join = Request::Join { token_secret: token.secret, name: "fake".into(), csr_pem };
    let Ok(Response::Joined { cert_pem, ca_pem, .. }) = transport::request(&conn, &join).await
    else {
        panic!("the fake node was not admitted");
    };
    let identity = key.identity(&cert_pem, &ca_pem).expect("identity");
    (identity, CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("CA"))
}

impl FakeNode {
    /// Join the coordinator at `addr` with `join_token`, offering `slots` slots.
    pub async fn join(addr: &str, join_token: &str, slots: u32, behaviour: Behaviour) -> FakeNode {
        let (identity, ca) = node_identity(addr, join_token).await;
        let addr = addr.parse().expect("coordinator address");
        let held: Held = Arc::default();
        // A shuffle service that accepts fetches and never answers them.
        let shuffle = transport::server_endpoint(
            "127.0.0.1:0".parse().unwrap(),
            &identity,
            &ca,
            ClientAuth::Required,
        )
        .expect("shuffle endpoint");
        let shuffle_addr = shuffle.local_addr().unwrap().to_string();
        tokio::spawn(hold_every_stream(shuffle.clone(), held.clone()));
        let endpoint = transport::client_endpoint(ServerTrust::Ca(ca), Some(&identity)).unwrap();
        let conn = transport::connect(&endpoint, addr).await.expect("connect with the certificate");
        let register = Request::Register { slots, shuffle_addr: shuffle_addr.clone() };
        let Ok(Response::Registered { node_id }) = transport::request(&conn, &register).await
        else {
            panic!("the fake node could not register");
        };
        let tasks = Arc::new(AtomicU64::new(0));
        let tasks_loop = tokio::spawn(answer_tasks(
            conn.clone(),
            behaviour,
            node_id.clone(),
            shuffle_addr,
            tasks.clone(),
        ));
        let hb_conn = conn.clone();
        let heartbeat = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let hb = Request::Heartbeat { running: 0, counters: Default::default() };
                if transport::request(&hb_conn, &hb).await.is_err() {
                    return;
                }
            }
        });
        FakeNode { node_id, tasks, conn, _endpoints: (endpoint, shuffle), tasks_loop, heartbeat }
    }

    /// Tasks the coordinator sent it so far.
    pub fn tasks_received(&self) -> u64 {
        self.tasks.load(Ordering::Relaxed)
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.tasks_loop.abort();
        self.heartbeat.abort();
        self.conn.close(0u32.into(), b"fake node leaving");
    }
}

/// Accept every stream on every connection to `endpoint` and keep it open, unanswered.
async fn hold_every_stream(endpoint: quinn::Endpoint, held: Held) {
    while let Some(incoming) = endpoint.accept().await {
        let held = held.clone();
        tokio::spawn(async move {
            let Ok(conn) = incoming.await else { return };
            while let Ok(streams) = conn.accept_bi().await {
                held.lock().unwrap().push(streams);
            }
        });
    }
}

async fn answer_tasks(
    conn: quinn::Connection,
    behaviour: Behaviour,
    node_id: String,
    shuffle_addr: String,
    tasks: Arc<AtomicU64>,
) {
    let held_tasks: Arc<Mutex<Vec<quinn::SendStream>>> = Arc::default();
    while let Ok((tx, rx)) = conn.accept_bi().await {
        let Ok(Some((request, tx))) = transport::accept_request(tx, rx, DEFAULT_MAX_FRAME).await
        else {
            continue;
        };
        match request {
            Request::RunTask(spec) => {
                tasks.fetch_add(1, Ordering::Relaxed);
                let claim = match (&spec.output, behaviour) {
                    (TaskOutput::Buckets { buckets, id, .. }, Behaviour::ClaimMapOutputs) => {
                        Some(MapOutput {
                            id: id.clone(),
                            node_id: node_id.clone(),
                            shuffle_addr: shuffle_addr.clone(),
                            bucket_bytes: vec![1; *buckets as usize],
                        })
                    }
                    _ => None,
                };
                match claim {
                    Some(map_output) => {
                        let done = Response::TaskDone {
                            map_output: Some(map_output),
                            bad_rows: None,
                            accumulators: Vec::new(),
                            stdout: Default::default(),
                            stderr: Default::default(),
                            batches: 0,
                        };
                        let _ = transport::respond(tx, &done).await;
                    }
                    // Keep the stream open: the coordinator hears nothing, ever.
                    None => held_tasks.lock().unwrap().push(tx),
                }
            }
            _ => {
                let _ = transport::respond(tx, &Response::Ack).await;
            }
        }
    }
}
