//! The load generator's own correctness, within CI's time: short runs with an exact
//! expected delivery count against the real `raw-ws` binary (through the real `loadgen`
//! binary and its `--json` output) and against our engine behind the real transports
//! (`transport-ws` on actix-web, and `transport-tcp`), started in-process on port 0.
//! Each run must report zero loss, zero duplication and exactly the expected deliveries;
//! the join and reconnect storms likewise (every client in, every client back, every
//! message posted meanwhile received once).
//! Loopback only; every run is bounded by loadgen's own deadlines.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use benches::client::Protocol;
use benches::run::{run, Config};
use benches::storm::{self, StormConfig};
use chat_core::{Engine, Limits, Rate};
use tokio_util::sync::CancellationToken;

/// Kills the child process when the test ends, whatever happens.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn config(protocol: Protocol, addr: SocketAddr) -> Config {
    Config {
        label: "test".into(),
        protocol,
        addr,
        also: Vec::new(),
        clients: 12,
        channels: 3,
        senders: 6,
        rate: 0.0,
        window: 16,
        duration: Duration::from_secs(3),
        drain: Duration::from_secs(3),
        size: 48,
        max_messages: 50,
        settle: Duration::from_millis(100),
        ..Config::default()
    }
}

/// 6 senders x 50 messages, each to the 3 other members of its channel.
const EXPECTED: u64 = 6 * 50 * 3;

#[test]
fn loadgen_binary_against_raw_ws_binary() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_raw-ws"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--threads",
            "1",
            "--max-seconds",
            "60",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start raw-ws");
    let stdout = server.stdout.take().expect("raw-ws stdout");
    let server = Reaped(server);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("raw-ws prints its address");
    let addr = line
        .trim()
        .strip_prefix("listening on ws://")
        .expect("address line")
        .to_owned();

    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--protocol",
            "ws",
            "--addr",
            &addr,
            "--clients",
            "12",
            "--channels",
            "3",
        ])
        .args([
            "--senders",
            "6",
            "--max-messages",
            "50",
            "--window",
            "16",
            "--duration",
            "3",
        ])
        .args(["--drain", "3", "--settle", "0.1", "--json"])
        .args(["--server-pid", &server.0.id().to_string()])
        .output()
        .expect("run loadgen");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "loadgen failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("JSON report");
    assert_eq!(report["connected"], 12, "{report}");
    assert_eq!(report["sent"], 300, "{report}");
    assert_eq!(report["expected_deliveries"], EXPECTED, "{report}");
    assert_eq!(report["deliveries"], EXPECTED, "{report}");
    assert_eq!(report["lost"], 0, "{report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["untracked"], 0, "{report}");
    assert_eq!(report["latency_ms"]["count"], EXPECTED, "{report}");
    assert_eq!(report["until_last_ms"]["count"], 300, "{report}");
    // raw-ws writes our server's frames: every poster gets its own message back too.
    assert_eq!(report["echoes_ignored"], 300, "{report}");
    assert!(
        report["server_memory"]["peak_kib"].as_u64().unwrap_or(0) > 0,
        "{report}"
    );
    if cfg!(target_os = "linux") {
        // Both sides worked while sending: their CPU time was read, and it is not zero.
        for field in ["server_busy", "server_us_per_delivery", "loadgen_busy"] {
            let value = report["cpu"][field].as_f64().unwrap_or(0.0);
            assert!(value > 0.0, "cpu.{field} = {value}: {report}");
        }
    }
}

/// Our engine behind both real transports, on its own thread and runtime.
struct Ours {
    http: SocketAddr,
    tcp: SocketAddr,
    stop: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Ours {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start_ours() -> Ours {
    start_ours_with(Limits::default())
}

/// Our engine with `limits`, flood control lifted, over WebSocket and TCP.
fn start_ours_with(limits: Limits) -> Ours {
    let http = std::net::TcpListener::bind("127.0.0.1:0").expect("bind http");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind tcp");
    let (http_addr, tcp_addr) = (http.local_addr().unwrap(), tcp.local_addr().unwrap());
    let stop = CancellationToken::new();
    let token = stop.clone();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let fast = Rate::new(100_000, 100_000.0);
            let limits = {
                let mut limits = limits;
                limits.message_rate = fast;
                limits.channel_create_rate = fast;
                // Every loadgen client comes from 127.0.0.1.
                limits.login_rate_per_address = fast;
                limits
            };
            let engine = Engine::builder()
                .limits(limits)
                .start()
                .await
                .expect("engine");
            tcp.set_nonblocking(true).expect("nonblocking");
            let tcp = tokio::net::TcpListener::from_std(tcp).expect("tokio listener");
            let tcp_task = tokio::spawn(transport_tcp::serve(
                tcp,
                engine.clone(),
                {
                    let mut config = transport_tcp::TcpConfig::default();
                    config.max_connections_per_address = 1 << 20;
                    config.connect_rate_per_address = fast;
                    config
                },
                token.clone(),
            ));
            let mut config = transport_ws::WsConfig::default();
            config.max_connections_per_address = 1 << 20;
            config.connect_rate_per_address = fast;
            let chat =
                transport_ws::WsChat::new(engine.clone(), config, token.clone()).expect("config");
            let builder = actix_server::Server::build().workers(1).disable_signals();
            let server = chat
                .listen(builder, http, actix_web::App::new)
                .expect("listen")
                .run();
            let handle = server.handle();
            let server_task = tokio::spawn(server);
            token.cancelled().await;
            // The sockets' tasks run on the server's worker: they close before it stops.
            let ws_tasks = chat.tasks();
            ws_tasks.close();
            let _ = tokio::time::timeout(Duration::from_secs(5), ws_tasks.wait()).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), handle.stop(false)).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), tcp_task).await;
            let _ = tokio::time::timeout(Duration::from_secs(5), engine.shutdown()).await;
        });
    });
    Ours {
        http: http_addr,
        tcp: tcp_addr,
        stop,
        thread: Some(thread),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn loadgen_against_our_engine_over_ws_and_tcp() {
    let ours = start_ours();
    for (protocol, addr) in [(Protocol::Ws, ours.http), (Protocol::Tcp, ours.tcp)] {
        let report = run(config(protocol, addr)).await.expect("run");
        let table = report.table();
        assert_eq!(report.connected, 12, "{protocol:?}\n{table}");
        assert_eq!(report.sent, 300, "{protocol:?}\n{table}");
        assert_eq!(
            report.expected_deliveries, EXPECTED,
            "{protocol:?}\n{table}"
        );
        assert_eq!(report.deliveries, EXPECTED, "{protocol:?}\n{table}");
        assert_eq!(report.lost, 0, "{protocol:?}\n{table}");
        assert_eq!(report.duplicates, 0, "{protocol:?}\n{table}");
        assert_eq!(report.untracked, 0, "{protocol:?}\n{table}");
        // Our engine echoes each message to its sender too; loadgen ignores those.
        assert_eq!(report.echoes_ignored, 300, "{protocol:?}\n{table}");
        assert!(report.is_clean(), "{protocol:?}\n{table}");
    }
}

/// A stalled member is reported cut by a server that bounds what it queues for it, and
/// kept by one whose bound the burst does not reach; the readers get everything either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn stalled_members_are_reported_cut_or_kept() {
    for (hard_bytes, cut) in [
        (Limits::default().session_queue_hard_bytes, 0),
        (1024 * 1024, 2),
    ] {
        let ours = start_ours_with({
            let mut limits = Limits::default();
            limits.session_queue_hard_bytes = hard_bytes;
            limits.session_queue_soft_bytes = hard_bytes.min(limits.session_queue_soft_bytes);
            limits
        });
        let config = Config {
            clients: 3,
            channels: 1,
            senders: 1,
            size: 4_000,
            // About 8 MB: past the small bound and the loopback socket buffers (a few MB),
            // under the default hard limit.
            max_messages: 2_000,
            // The readers pace the sender (the stalled members do not count in the
            // window), so only the stalled members' queues grow.
            window: 64,
            stalled: 2,
            ..config(Protocol::Ws, ours.http)
        };
        let report = run(config).await.expect("run");
        let table = report.table();
        assert!(report.is_clean(), "{table}");
        assert_eq!(report.deliveries, 2 * 2_000, "{table}");
        let stalled = report.stalled.expect("a stalled report");
        assert_eq!((stalled.clients, stalled.connected), (2, 2), "{table}");
        assert_eq!(stalled.cut, cut, "hard limit {hard_bytes}:\n{table}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn arrival_stamps_measure_every_delivery_and_never_after_it_was_read() {
    let ours = start_ours();
    let config = Config {
        arrival_every: 1,
        rate: 200.0,
        ..config(Protocol::Ws, ours.http)
    };
    let report = run(config).await.expect("run");
    let table = report.table();
    assert!(report.is_clean(), "{table}");
    let arrival = report.arrival_ms.expect("arrival percentiles");
    assert_eq!(arrival.count, EXPECTED, "{table}");
    // Each delivery arrived at its socket before the loadgen read it, so each
    // percentile of arrival is at most the same one of reading (histogram precision:
    // three significant digits).
    let latency = report.latency_ms;
    for (at_socket, read) in [
        (arrival.p50, latency.p50),
        (arrival.p99, latency.p99),
        (arrival.max, latency.max),
    ] {
        assert!(at_socket > 0.0, "{table}");
        assert!(at_socket <= read * 1.001, "{at_socket} > {read}\n{table}");
    }
    assert!(table.contains("at the socket ms"), "{table}");

    // Off by default: the report has no arrival row.
    let plain = run(config_plain(ours.http)).await.expect("run");
    assert!(plain.arrival_ms.is_none());
}

fn config_plain(addr: SocketAddr) -> Config {
    config(Protocol::Ws, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn storms_against_our_engine_lose_and_repeat_nothing() {
    let ours = start_ours();
    let config = StormConfig {
        addr: ours.http,
        clients: 60,
        connect_concurrency: 16,
        reconnect: true,
        posts: 5,
        drain: Duration::from_secs(5),
        ..StormConfig::default()
    };
    let report = storm::run(config).await.expect("run");
    let table = report.table();
    assert_eq!(report.joined, 60, "{table}");
    assert!(report.joins_per_sec > 0.0, "{table}");
    let back = report.reconnect.as_ref().expect("the reconnect storm ran");
    assert_eq!(back.back, 60, "{table}");
    assert_eq!(back.posted, 5, "{table}");
    assert_eq!(
        (back.lost, back.duplicates, back.gaps),
        (0, 0, 0),
        "{table}"
    );
    assert!(report.is_clean(), "{table}");
}
