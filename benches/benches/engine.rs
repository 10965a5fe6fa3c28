//! Criterion benchmarks of the engine alone (no sockets, no JSON): fan-out of one message
//! to 1, 100 and 1,000 subscribers (throughput in deliveries), joining a channel whose
//! history is full, and creating channels.
//!
//! Each benchmark starts its own engine with the per-user rate limits lifted, so that
//! what is measured is the engine's work and not its throttles. Measurement times are
//! short (about 3 s per benchmark) so `cargo bench -p benches` takes a couple of minutes.
//! It must not touch the network.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{Engine, Event, Limits, Login, Rate, Session};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

/// Posts between two waits for every delivery (keeps queues far below their bound).
const BATCH: u64 = 64;

fn limits() -> Limits {
    let unlimited = Rate::new(1_000_000, 1e9);
    {
        let mut limits = Limits::default();
        limits.message_rate = unlimited;
        limits.channel_create_rate = unlimited;
        limits.max_channels = 10_000_000;
        limits.session_queue_hard_bytes = 1 << 30;
        limits.session_queue_soft_bytes = 1 << 30;
        limits
    }
}

fn runtime() -> Runtime {
    // unwrap: a benchmark cannot run without its runtime.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Reads and drops whatever events are already queued for `session`, without waiting.
async fn drain_ready(session: &mut Session) {
    // Bounded: a queue holds at most `session_queue_hard_bytes` of events.
    for _ in 0..(1 << 16) {
        match tokio::time::timeout(Duration::ZERO, session.next_event()).await {
            Ok(Some(_)) => continue,
            _ => break,
        }
    }
}

struct Counter {
    delivered: AtomicU64,
    target: AtomicU64,
    reached: Notify,
}

impl Counter {
    async fn wait_for(&self, target: u64) {
        self.target.store(target, Ordering::SeqCst);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.delivered.load(Ordering::SeqCst) < target {
            assert!(Instant::now() < deadline, "deliveries stalled");
            let _ = tokio::time::timeout(Duration::from_millis(50), self.reached.notified()).await;
        }
    }
}

fn fan_out(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("fan_out");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for subscribers in [1u64, 100, 1000] {
        let engine = rt
            .block_on(Engine::builder().limits(limits()).start())
            .expect("engine");
        let counter = Arc::new(Counter {
            delivered: AtomicU64::new(0),
            target: AtomicU64::new(u64::MAX),
            reached: Notify::new(),
        });
        let mut poster = rt.block_on(async {
            let poster = engine
                .connect(Login::Name("poster".into()))
                .await
                .expect("poster");
            poster.create_channel("fan").await.expect("create");
            poster.join("fan", None).await.expect("join");
            for i in 0..subscribers {
                let mut s = engine
                    .connect(Login::Name(format!("s{i}")))
                    .await
                    .expect("sub");
                s.join("fan", None).await.expect("sub join");
                let counter = counter.clone();
                tokio::spawn(async move {
                    // Ends when the engine shuts down and the session yields None.
                    while let Some(event) = s.next_event().await {
                        if let Event::Posted(_) = event {
                            let n = counter.delivered.fetch_add(1, Ordering::SeqCst) + 1;
                            if n >= counter.target.load(Ordering::SeqCst) {
                                counter.reached.notify_one();
                            }
                        }
                    }
                });
            }
            poster
        });
        group.throughput(Throughput::Elements(subscribers));
        group.bench_function(BenchmarkId::from_parameter(subscribers), |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let base = counter.delivered.load(Ordering::SeqCst);
                    let start = Instant::now();
                    for i in 0..iters {
                        poster
                            .post("fan", "a benchmark message of some forty bytes")
                            .await
                            .expect("post");
                        if (i + 1) % BATCH == 0 || i + 1 == iters {
                            counter.wait_for(base + (i + 1) * subscribers).await;
                            drain_ready(&mut poster).await;
                        }
                    }
                    start.elapsed()
                })
            })
        });
        rt.block_on(engine.shutdown());
    }
    group.finish();
}

fn join_full_history(c: &mut Criterion) {
    let rt = runtime();
    let engine = rt
        .block_on(Engine::builder().limits(limits()).start())
        .expect("engine");
    let joiner = rt.block_on(async {
        let author = engine
            .connect(Login::Name("author".into()))
            .await
            .expect("author");
        author.create_channel("full").await.expect("create");
        author.join("full", None).await.expect("join");
        for i in 0..engine.limits().history {
            author
                .post("full", &format!("history message number {i}"))
                .await
                .expect("post");
        }
        engine
            .connect(Login::Name("joiner".into()))
            .await
            .expect("joiner")
    });
    let mut group = c.benchmark_group("join");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("full_history_100", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let joined = joiner.join("full", None).await.expect("join");
                    assert_eq!(joined.messages.len(), 100);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    rt.block_on(engine.shutdown());
}

fn create_channels(c: &mut Criterion) {
    let rt = runtime();
    let engine = rt
        .block_on(Engine::builder().limits(limits()).start())
        .expect("engine");
    let mut creator = rt
        .block_on(engine.connect(Login::Name("creator".into())))
        .expect("creator");
    let mut next = 0u64;
    let mut group = c.benchmark_group("create");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function("channel", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    creator
                        .create_channel(&format!("c{next}"))
                        .await
                        .expect("create");
                    next += 1;
                    if (i + 1) % BATCH == 0 {
                        // Every session hears of each new channel: keep its queue short.
                        drain_ready(&mut creator).await;
                    }
                }
                let elapsed = start.elapsed();
                drain_ready(&mut creator).await;
                elapsed
            })
        })
    });
    group.finish();
    rt.block_on(engine.shutdown());
}

criterion_group!(engine, fan_out, join_full_history, create_channels);
criterion_main!(engine);
