//! The cluster's membership and security with real processes on 127.0.0.1: nodes join with the
//! join token and heartbeat; wrong tokens, impostor coordinators and garbage are refused, and a
//! misbehaving connection never disturbs the others.

use std::time::Duration;
use weft_tests::cluster::Coordinator;
use weft_tests::weft;
use weft_wire::pki::{Token, TokenKind};
use weft_wire::protocol::{Request, Response};
use weft_wire::transport::{self, ServerTrust};

const JOIN: Duration = Duration::from_secs(20);

fn status_text(c: &Coordinator, token: &str) -> weft_tests::Run {
    weft(&["status", "--coordinator", &c.addr, "--token", token])
}

fn wait_for_alive(c: &Coordinator, nodes: usize) -> weft_tests::cluster::Status {
    c.wait_for_nodes(nodes, JOIN)
}

/// A token with the right form and CA fingerprint but another secret.
fn forged(token: &str, kind: &str) -> String {
    let fp = token.rsplit('-').next().unwrap();
    format!("weft-{kind}-{}-{fp}", "0".repeat(64))
}

#[test]
fn three_nodes_join_and_stay_alive() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let nodes: Vec<_> =
        (1..=3).map(|i| c.node(dir.path(), &format!("n{i}"), &c.join_token(), i)).collect();
    for n in &nodes {
        n.wait_for("joined the cluster", JOIN);
    }
    let status = wait_for_alive(&c, 3);
    assert_eq!(status.slots(), 6, "{}", status.json);
    // The text form says the same.
    let text = status_text(&c, &c.admin_token());
    assert!(text.stdout.contains("3 node(s) alive, 6 slot(s)"), "{}", text.stdout);
    // Heartbeats keep them alive well past the liveness timeout.
    std::thread::sleep(Duration::from_secs(6));
    wait_for_alive(&c, 3);
}

#[test]
fn a_coordinator_restart_keeps_its_ca_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Coordinator::start(dir.path());
    let (join, admin) = (c.join_token(), c.admin_token());
    let ca = std::fs::read(c.state.join("ca.pem")).unwrap();
    c.process.kill();
    let c = Coordinator::start(dir.path());
    assert_eq!((c.join_token(), c.admin_token()), (join, admin));
    assert_eq!(std::fs::read(c.state.join("ca.pem")).unwrap(), ca);
    let node = c.node(dir.path(), "again", &c.join_token(), 1);
    node.wait_for("joined the cluster", JOIN);
}

#[test]
fn wrong_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let mut intruder = c.node(dir.path(), "intruder", &forged(&c.join_token(), "join"), 1);
    assert_eq!(intruder.wait_exit(JOIN), Some(1), "{}", intruder.output());
    assert!(
        intruder.output().contains("refused this node: invalid join token"),
        "{}",
        intruder.output()
    );
    // The admin token is not a join token, and vice versa.
    let mut confused = c.node(dir.path(), "confused", &c.admin_token(), 1);
    assert_eq!(confused.wait_exit(JOIN), Some(1));
    assert!(confused.output().contains("malformed join token"), "{}", confused.output());

    let run = status_text(&c, &forged(&c.admin_token(), "admin"));
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("refused: invalid token"), "{}", run.stderr);
    let run = weft(&["status", "--coordinator", &c.addr]);
    assert_eq!(run.code, 2, "a missing token is a usage error: {}", run.stderr);
    assert!(run.stderr.contains("--token"), "{}", run.stderr);
    // Nothing was admitted.
    assert_eq!(wait_for_alive(&c, 0).alive(), 0);
}

#[test]
fn a_node_refuses_a_coordinator_from_another_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let real = Coordinator::start(&dir.path().join("real"));
    let impostor = Coordinator::start(&dir.path().join("impostor"));
    let mut node = impostor.node(dir.path(), "careful", &real.join_token(), 1);
    assert_eq!(node.wait_exit(JOIN), Some(1), "{}", node.output());
    assert!(
        node.output().contains("is not part of the cluster named by the token"),
        "{}",
        node.output()
    );
    let run = status_text(&impostor, &real.admin_token());
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("not part of the cluster"), "{}", run.stderr);
}

/// Open an anonymous connection to the coordinator (as a client holding only the CA pin) and
/// send `bytes` raw on a stream; returns whether the coordinator closed the connection.
async fn send_raw(addr: &str, fingerprint: &str, bytes: Vec<u8>) -> bool {
    let endpoint =
        transport::client_endpoint(ServerTrust::PinnedCa(fingerprint.to_string()), None).unwrap();
    let conn = transport::connect(&endpoint, addr.parse().unwrap()).await.unwrap();
    let (mut tx, _rx) = conn.open_bi().await.unwrap();
    tx.write_all(&bytes).await.unwrap();
    let _ = tx.finish();
    tokio::time::timeout(Duration::from_secs(10), conn.closed()).await.is_ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_and_oversized_frames_close_only_that_connection() {
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let node = c.node(dir.path(), "steady", &c.join_token(), 2);
    node.wait_for("joined the cluster", JOIN);
    let admin = Token::parse(&c.admin_token(), TokenKind::Admin).unwrap();
    let fp = admin.ca_fingerprint.clone();
    // A job runs meanwhile: 12 map tasks of 1 s on 2 slots (about 6 s), then a shuffle.
    let mut job = c.submit_in_background("slow_shuffle", &["1000"], dir.path().join("job.log"));
    job.wait_for("submitted job-1", JOIN);

    let mut garbage = vec![0, 0, 0, 12];
    garbage.extend_from_slice(b"\xc1\xc1not msgpack");
    assert!(send_raw(&c.addr, &fp, garbage).await, "garbage must close the connection");
    assert!(
        send_raw(&c.addr, &fp, u32::MAX.to_be_bytes().to_vec()).await,
        "an oversized frame must close it"
    );
    // A frame cut short: a length announcing more than ever arrives.
    let mut truncated = 100u32.to_be_bytes().to_vec();
    truncated.extend_from_slice(b"short");
    assert!(send_raw(&c.addr, &fp, truncated).await, "a truncated frame must close it");

    // Meanwhile and afterwards, everyone else is served.
    let endpoint = transport::client_endpoint(ServerTrust::PinnedCa(fp.clone()), None).unwrap();
    let conn = transport::connect(&endpoint, c.addr.parse().unwrap()).await.unwrap();
    // Before it authenticates, a connection is answered nothing else.
    let early = transport::request(&conn, &Request::ClusterStatus).await.unwrap();
    assert_eq!(early, Response::Refused { reason: "authenticate first".into() });
    let auth = Request::Authenticate { token_secret: admin.secret.clone() };
    let authenticated = transport::request(&conn, &auth).await.unwrap();
    assert_eq!(authenticated, Response::Authenticated { principal: "admin".into() });
    let response = transport::request(&conn, &Request::ClusterStatus).await.unwrap();
    match response {
        Response::ClusterStatus { nodes, .. } => {
            assert_eq!(nodes.iter().filter(|n| n.alive).count(), 1)
        }
        other => panic!("unexpected {other:?}"),
    }
    // A request that needs a node certificate, from a connection without one, is refused.
    let refused =
        transport::request(&conn, &Request::Heartbeat { running: 0, counters: Default::default() })
            .await
            .unwrap();
    assert!(matches!(refused, Response::Refused { .. }), "{refused:?}");
    let log = c.process.output();
    assert_eq!(log.matches("closing connection after a protocol error").count(), 3, "{log}");
    assert!(job.running(), "the job should still be running during the attacks");
    assert_eq!(job.wait_exit(Duration::from_secs(60)), Some(0), "{}", job.output());
    let expected: u64 = (1..=12_000u64).filter(|x| x % 10 == 3).sum();
    assert!(job.output().contains(&format!("3 {expected}")), "{}", job.output());
}

/// A connection as a client that holds the CA pin but has not authenticated.
async fn anonymous(
    addr: &str,
    fingerprint: &str,
) -> (transport::ClientEndpoint, quinn::Connection) {
    let endpoint =
        transport::client_endpoint(ServerTrust::PinnedCa(fingerprint.to_string()), None).unwrap();
    let conn = transport::connect(&endpoint, addr.parse().unwrap()).await.unwrap();
    (endpoint, conn)
}

#[tokio::test(flavor = "multi_thread")]
async fn strangers_cannot_make_the_coordinator_hold_memory_streams_or_connections() {
    // Regression: an unauthenticated connection could send a 64 MiB frame on each of 100
    // streams, and any number of such connections, before any token was checked.
    let dir = tempfile::tempdir().unwrap();
    let c = Coordinator::start(dir.path());
    let fp = Token::parse(&c.admin_token(), TokenKind::Admin).unwrap().ca_fingerprint;

    // A frame announcing 1 MiB (far below the old limit) is refused before anything is buffered.
    let mut big = (1u32 << 20).to_be_bytes().to_vec();
    big.extend_from_slice(b"the rest never comes");
    let (_e, conn) = anonymous(&c.addr, &fp).await;
    let (mut tx, _rx) = conn.open_bi().await.unwrap();
    tx.write_all(&big).await.unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(5), conn.closed()).await;
    assert!(closed.is_ok(), "a large frame from a stranger was waited for");

    // A stranger gets a few streams at a time, not a hundred.
    let (_e, conn) = anonymous(&c.addr, &fp).await;
    let mut open = Vec::new();
    for _ in 0..transport::ANONYMOUS_STREAMS {
        let (mut tx, rx) = conn.open_bi().await.unwrap();
        tx.write_all(&[0]).await.unwrap();
        open.push((tx, rx));
    }
    let more = tokio::time::timeout(Duration::from_secs(2), conn.open_bi()).await;
    assert!(more.is_err(), "a stranger opened more than {} streams", transport::ANONYMOUS_STREAMS);

    // And a bounded number of connections from one address.
    let mut conns = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        let endpoint = transport::client_endpoint(ServerTrust::PinnedCa(fp.clone()), None).unwrap();
        match transport::connect(&endpoint, c.addr.parse().unwrap()).await {
            Ok(conn) => conns.push((endpoint, conn)),
            Err(_) => refused += 1,
        }
    }
    assert!(refused > 0, "40 anonymous connections from one address were all accepted");
    assert!(c.process.output().contains("too many from this address"), "{}", c.process.output());

    // Connections that do not authenticate are closed; an authenticated client is served.
    drop(open);
    let quiet = tokio::time::timeout(Duration::from_secs(15), conns[0].1.closed()).await;
    assert!(quiet.is_ok(), "a connection that never authenticated was kept");
    let admin = Token::parse(&c.admin_token(), TokenKind::Admin).unwrap();
    let (_e, conn) = anonymous(&c.addr, &fp).await;
    let auth = Request::Authenticate { token_secret: admin.secret };
    assert!(matches!(transport::request(&conn, &auth).await, Ok(Response::Authenticated { .. })));
    assert!(matches!(
        transport::request(&conn, &Request::ClusterStatus).await,
        Ok(Response::ClusterStatus { .. })
    ));
}
