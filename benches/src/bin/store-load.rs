//! `store-load`: how many posts per second the engine acknowledges with its durable store
//! (`--store sqlite`, the demo's default) against memory only (`--store memory`), and what
//! happens when posters outrun the disk: posters wait (their acknowledgements slow down),
//! memory stays flat. In-process, no sockets: the store is the only thing measured.
//!
//! Every poster is one session in one of `--channels` channels, keeping `--window` posts in
//! flight (the transports' pipeline) and draining its own events. Each second prints the
//! posts acknowledged in it and the process's resident memory; the end prints the totals,
//! the acknowledgement latency, the peak memory, the file's size and how long the final
//! flush took.
//!
//! ```sh
//! cargo run --release -p benches --bin store-load -- --store sqlite --seconds 10
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use chat_core::{Engine, Limits, Login, PostPipeline, Rate};
use clap::Parser;
use hdrhistogram::Histogram;

#[derive(Debug, Parser)]
struct Args {
    /// `sqlite` (a fresh file in `--dir`) or `memory`.
    #[arg(long, default_value = "sqlite")]
    store: String,
    /// Where the SQLite file goes (a fresh directory is made inside it).
    #[arg(long, default_value = "target/store-load")]
    dir: PathBuf,
    /// Concurrent posters (one session each).
    #[arg(long, default_value_t = 64)]
    posters: usize,
    /// Channels the posters are spread over.
    #[arg(long, default_value_t = 8)]
    channels: usize,
    /// Posts each poster keeps in flight (at most 64, the transports' pipeline).
    #[arg(long, default_value_t = 16)]
    window: usize,
    /// How long to post.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bytes of text per post.
    #[arg(long, default_value_t = 64)]
    text_bytes: usize,
    /// Messages kept per room.
    #[arg(long, default_value_t = 100)]
    history: usize,
}

/// What one poster measured.
struct Tally {
    latency: Histogram<u64>,
    per_second: Vec<u64>,
}

fn rss_kib() -> (u64, u64) {
    benches::rss::read(std::process::id()).map_or((0, 0), |m| (m.rss_kib, m.hwm_kib))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut limits = Limits::default();
    limits.history = args.history;
    limits.message_rate = Rate::new(1_000_000, 1_000_000.0);
    limits.session_queue_hard_bytes = 1 << 30;
    limits.session_queue_soft_bytes = 1 << 30;
    let builder = Engine::builder().limits(limits).room_workers(1);
    let (engine, file) = match args.store.as_str() {
        "memory" => (builder.start().await?, None),
        "sqlite" => {
            let dir = args.dir.join(format!("run-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let file = dir.join("flack.sqlite3");
            (builder.sqlite(&file).start().await?, Some(file))
        }
        other => return Err(format!("--store {other}: sqlite or memory").into()),
    };
    for c in 0..args.channels {
        engine.create_channel(&format!("c{c}")).await?;
    }
    let text = "x".repeat(args.text_bytes);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let (rss_before, _) = rss_kib();
    let mut posters = Vec::new();
    for p in 0..args.posters {
        let mut session = engine.connect(Login::Name(format!("poster{p}"))).await?;
        let room = format!("c{}", p % args.channels);
        session.join(room.as_str(), None).await?;
        let (text, window) = (text.clone(), args.window.clamp(1, 64));
        posters.push(tokio::spawn(async move {
            let mut tally = Tally {
                latency: Histogram::new(3).expect("histogram"),
                per_second: Vec::new(),
            };
            let mut pipeline = PostPipeline::new();
            let mut events = Vec::new();
            loop {
                while pipeline.len() < window && Instant::now() < deadline {
                    match session.start_post(room.as_str(), text.clone()).await {
                        Ok(post) => pipeline.push(Instant::now(), post),
                        Err(e) => panic!("post refused: {e}"),
                    }
                }
                if pipeline.is_empty() {
                    return tally;
                }
                tokio::select! {
                    Some((sent, outcome)) = pipeline.next() => {
                        outcome.expect("post stored");
                        let now = Instant::now();
                        let _ = tally.latency.record(now.duration_since(sent).as_micros() as u64);
                        let second = now.duration_since(start).as_secs() as usize;
                        if tally.per_second.len() <= second {
                            tally.per_second.resize(second + 1, 0);
                        }
                        tally.per_second[second] += 1;
                    }
                    more = session.next_events(&mut events) => {
                        assert!(more, "session ended");
                        events.clear();
                    }
                }
            }
        }));
    }
    // One line a second: posts acknowledged so far, and memory.
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_secs(1)).await;
            samples.push(rss_kib().0);
        }
        samples
    });
    let mut latency = Histogram::<u64>::new(3)?;
    let mut per_second: Vec<u64> = Vec::new();
    for poster in posters {
        let tally = poster.await?;
        latency.add(&tally.latency)?;
        if per_second.len() < tally.per_second.len() {
            per_second.resize(tally.per_second.len(), 0);
        }
        for (s, n) in tally.per_second.iter().enumerate() {
            per_second[s] += n;
        }
    }
    let elapsed = start.elapsed();
    let rss = sampler.await?;
    let flushing = Instant::now();
    engine.shutdown().await;
    let flush = flushing.elapsed();
    let total: u64 = per_second.iter().sum();
    println!(
        "store {} | posters {} x window {} in {} channels | text {} B | history {}",
        args.store, args.posters, args.window, args.channels, args.text_bytes, args.history
    );
    for (s, n) in per_second.iter().enumerate() {
        let mem = rss
            .get(s)
            .map_or(String::new(), |k| format!("  rss {} MiB", k / 1024));
        println!("  second {s:>2}: {n:>8} posts acknowledged{mem}");
    }
    let (_, hwm) = rss_kib();
    println!(
        "total {total} posts in {:.1} s = {:.0} posts/s; ack latency p50 {} us, p99 {} us, max {} us",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        latency.value_at_quantile(0.5),
        latency.value_at_quantile(0.99),
        latency.max()
    );
    println!(
        "memory: rss {} MiB before posting, peak {} MiB; shutdown (with the final flush) {:?}",
        rss_before / 1024,
        hwm / 1024,
        flush
    );
    if let Some(file) = file {
        let size = |p: &PathBuf| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = file.clone().into_os_string();
        wal.push("-wal");
        println!(
            "file {}: {} KiB (+ {} KiB write-ahead log)",
            file.display(),
            size(&file) / 1024,
            size(&PathBuf::from(wal)) / 1024
        );
    }
    Ok(())
}
