//! Shutdown: cancelling the token tells every client, closes it, and `serve` returns.
//! Helpers: `common/mod.rs`.

mod common;

use common::*;
use tokio::net::TcpStream;
use tokio::time::timeout;

#[tokio::test]
async fn shutdown_tells_every_client_and_closes() {
    let mut s = server().await;
    let mut anonymous = s.client().await;
    anonymous.expect_line("= pick a display name").await;
    let mut alice = s.founder("alice", "general").await;

    s.shutdown.cancel();
    for client in [&mut anonymous, &mut alice] {
        let rest = client.expect_eof().await;
        assert_eq!(
            rest.last().map(String::as_str),
            Some("! closed shutting_down: server shutting down"),
            "{rest:?}"
        );
    }
    let task = s.task.take().expect("server task");
    timeout(WAIT, task)
        .await
        .expect("serve returns after shutdown")
        .expect("serve did not panic")
        .expect("the config is valid");
    // The listener is gone.
    assert!(TcpStream::connect(s.addr).await.is_err());
    s.engine.shutdown().await;
}
