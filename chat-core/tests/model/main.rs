//! A model-based test of recovery. One, two or three engines share a broker (a
//! `MemoryBroker`; the same with feeds that get cut; a real `redis-server`) and go through
//! a seeded random sequence of posts, deletions, clients coming back anywhere and joining
//! with `after`, nodes stopping and starting, and the store's faults (a node's feed cut,
//! Redis pub/sub connections killed, Redis restarted while clients keep going). Every
//! client logs what it is shown. Every 25 operations, and at the end, a checkpoint heals
//! everything and waits (bounded) until every client has caught up; then `check.rs` holds
//! each log against a simple model (`truth.rs`): every message delivered once and in order
//! or covered by a reported gap, no false deletion, and no deletion missed.
//!
//! Seeded (`rng.rs`): a failure names its seed and prints its trace, and `MODEL_SEED=N`
//! runs that seed alone (`MODEL_SEEDS=N` runs seeds 1 to N instead of the default list;
//! `MODEL_TRACE=1` prints every run's trace, `MODEL_TRACE=live` as it goes, timed). The
//! operations are the seed's; what the threads and Redis make of them in time may vary, so
//! a failure that depends on a race may need a few runs to show again. Each Redis run
//! starts its own `redis-server` (killed on drop, with its temp dir), every node is shut
//! down at the end of its run, and each call is bounded (15 s), as is the wait at the end.
//!
//! - `world.rs`: the nodes, the store, the clients; joining and reconnecting;
//! - `ops.rs`: the random operations; `faults.rs`: the store's faults and their healing;
//! - `settle.rs`: healing and waiting for convergence at the end;
//! - `client.rs`: a client and its log; `truth.rs`: the model; `check.rs`: the checks;
//! - `lossy.rs`: a node's view of a shared `MemoryBroker` whose feed can be cut.

#[path = "../common/mod.rs"]
mod common;

mod check;
mod client;
mod faults;
mod lossy;
mod ops;
mod rng;
mod settle;
mod truth;
mod world;

use std::time::Instant;

use world::{Kind, World};

/// Operations between two checkpoints, where everything is healed and every client must
/// have caught up: often enough that a deletion a client missed is still in the window.
const CHECKPOINT_EVERY: usize = 25;

/// The seeds a variant runs by default: `MODEL_SEED` runs one, `MODEL_SEEDS` the first N.
fn seeds(default: u64) -> Vec<u64> {
    if let Some(seed) = env_number("MODEL_SEED") {
        return vec![seed];
    }
    (1..=env_number("MODEL_SEEDS").unwrap_or(default)).collect()
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
    )
}

/// Failing seeds after which a variant stops: a broken engine often fails every seed, and
/// each failure may wait out its checkpoint's patience.
const ENOUGH_FAILURES: usize = 5;

/// Runs every seed of `seeds` for `kind`, each with `ops` random operations, and fails
/// with the first failing seed's report and the list of the failing seeds.
async fn run_all(kind: Kind, seeds: Vec<u64>, ops: usize) {
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut first = None;
    let mut ran = 0;
    for seed in &seeds {
        ran += 1;
        if let Err(report) = run(kind, *seed, ops).await {
            failed.push(*seed);
            first.get_or_insert(report);
            if failed.len() == ENOUGH_FAILURES {
                break;
            }
        }
    }
    eprintln!("{kind:?}: {ran} seeds in {:.2?}", started.elapsed());
    if let Some(report) = first {
        panic!("{kind:?}: seeds {failed:?} failed (of {ran} run). {report}");
    }
}

/// Runs `ops` random operations on seed `seed` (one to three nodes by seed) and checks
/// the outcome: the seed, the problems and the trace when it fails.
async fn run(kind: Kind, seed: u64, ops: usize) -> Result<(), String> {
    let nodes = 1 + (seed % 3) as usize;
    let started = Instant::now();
    let Some(mut world) = World::new(kind, seed, nodes).await else {
        return Ok(());
    };
    for op in 1..=ops {
        world.step().await;
        if op % CHECKPOINT_EVERY == 0 {
            world.checkpoint().await;
            if !world.problems.is_empty() {
                // Enough to report; going on would only wait out more checkpoints.
                break;
            }
        }
    }
    world.checkpoint().await;
    let problems = check::check(&mut world).await;
    world.tally();
    for node in world.nodes.iter().flatten() {
        node.engine.shutdown().await;
    }
    let trace = world.trace.join("\n  ");
    if std::env::var("MODEL_TRACE").is_ok() {
        eprintln!("seed {seed} ({kind:?}) trace:\n  {trace}");
    }
    let verdict = if problems.is_empty() { "ok" } else { "FAILED" };
    eprintln!(
        "seed {seed} ({kind:?}, {nodes} nodes) {verdict} in {:.2?}: {:?}",
        started.elapsed(),
        world.stats,
    );
    if problems.is_empty() {
        return Ok(());
    }
    if std::env::var("MODEL_TRACE").is_ok() {
        for c in &world.clients {
            let log: Vec<String> = c.log.iter().map(|e| e.short()).collect();
            eprintln!("{} saw: {}", c.name, log.join(" "));
        }
    }
    let shown = problems.len().min(20);
    Err(format!(
        "The first: seed {seed} ({kind:?}, {nodes} nodes); reproduce with MODEL_SEED={seed}\n\
         {} problems, the first {shown}:\n  {}\ntrace:\n  {trace}",
        problems.len(),
        problems[..shown].join("\n  ")
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_on_a_memory_broker_follow_the_model() {
    run_all(Kind::Memory, seeds(30), 150).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_whose_feeds_are_cut_recover_as_the_model_says() {
    run_all(Kind::Lossy, seeds(30), 150).await;
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engines_on_a_restarting_redis_recover_as_the_model_says() {
    run_all(Kind::Redis, seeds(8), 100).await;
}
