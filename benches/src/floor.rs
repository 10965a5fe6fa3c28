//! The machine's floor for a fan-out: how long one message takes to reach N loopback TCP
//! sockets when nothing but the kernel stands in the way.
//!
//! A bare writer (one thread, blocking `write`s of fixed-size frames, no WebSocket, no
//! engine, no JSON) sends "rounds": one message, a frame to each of the N sockets. A bare
//! reader (a current-thread tokio runtime, one task per socket reading into a 4 KiB
//! buffer, as the loadgen's clients do, minus the decoding) notes when each frame arrives.
//! Two pacings ([`Pacing`]):
//! - each round alone, the next after a pause: one message fanned out on an idle machine;
//! - rounds due at a fixed rate, as scenario 3 offers them: the writer goes round the
//!   sockets again and again and writes each one every frame due for it so far in one
//!   `write`, as a server that has fallen behind does. This is a perfect server for
//!   scenario 3: nothing but the kernel's cost of each write and read.
//!
//! What this gives is a lower bound for any server measured by the loadgen on this
//! machine: no server hands a message to its N-th subscriber sooner than this writer, and
//! no client learns of it sooner than this reader. `run-all.sh` runs it at scenario 3's
//! rate, with the writer and the reader pinned as the server and the loadgen are, and
//! `docs/performance.md` shows it beside scenario 3's latency goal.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::cpu;
use crate::Error;

/// What to measure.
#[derive(Debug, Clone, Copy)]
pub struct FloorConfig {
    /// Sockets written to in each round (scenario 3's subscribers).
    pub sockets: usize,
    /// Rounds (messages) to send.
    pub rounds: usize,
    /// Bytes per frame (about the size of one of our `message` events).
    pub frame_bytes: usize,
    /// When rounds are sent.
    pub pacing: Pacing,
    /// The cores to pin the writer and the reader to (`None`: where the OS puts them).
    pub cpus: Option<(usize, usize)>,
    /// How long the reader may take in all before the measurement is abandoned.
    pub deadline: Duration,
}

impl Default for FloorConfig {
    fn default() -> Self {
        FloorConfig {
            sockets: 1000,
            rounds: 200,
            frame_bytes: 192,
            pacing: Pacing::Alone {
                gap: Duration::from_millis(20),
            },
            cpus: None,
            deadline: Duration::from_secs(60),
        }
    }
}

/// When the writer sends its rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// One round at a time: write it whole, then pause.
    Alone {
        /// The pause after each round.
        gap: Duration,
    },
    /// Round k is due `k / per_sec` seconds after the start; each socket gets whatever is
    /// due for it when the writer comes to it.
    Rate {
        /// Rounds (messages) per second.
        per_sec: f64,
    },
}

/// What one measurement found. Times are milliseconds, CPU microseconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FloorReport {
    /// Sockets per round.
    pub sockets: usize,
    /// Rounds sent (and, every frame having arrived, received).
    pub rounds: usize,
    /// Bytes per frame.
    pub frame_bytes: usize,
    /// Rounds per second offered (0: each round alone).
    pub rate_per_sec: f64,
    /// The writer's CPU time per `write` call.
    pub write_cpu_us: f64,
    /// Frames per `write` call, on average.
    pub frames_per_write: f64,
    /// The reader's CPU time per frame received (reading, waking, waiting included).
    pub read_cpu_us_per_frame: f64,
    /// Wall time of one pass of the writer over every socket that had something due,
    /// median (with rounds sent alone, a pass is a round).
    pub pass_ms: f64,
    /// From the time a round was due to the arrival of its frame, over every socket and
    /// round.
    pub per_recipient_p50_ms: f64,
    /// The same, 99th percentile: the floor of scenario 3's p99.
    pub per_recipient_p99_ms: f64,
    /// From the time a round was due to the arrival of its last frame, median over rounds.
    pub last_recipient_p50_ms: f64,
    /// The same, 99th percentile over rounds.
    pub last_recipient_p99_ms: f64,
}

impl FloorReport {
    /// One human line per figure.
    pub fn table(&self) -> String {
        format!(
            "one {} B frame to each of {} loopback sockets, {} rounds{}:\n\
             writer CPU per write      {:>8.2} µs ({:.1} frames per write)\n\
             reader CPU per frame      {:>8.2} µs\n\
             one pass over the sockets {:>8.2} ms (median)\n\
             per recipient p50 / p99   {:>8.2} / {:.2} ms\n\
             last recipient p50 / p99  {:>8.2} / {:.2} ms\n",
            self.frame_bytes,
            self.sockets,
            self.rounds,
            match self.rate_per_sec {
                r if r > 0.0 => format!(" at {r} per second"),
                _ => " sent alone".to_string(),
            },
            self.write_cpu_us,
            self.frames_per_write,
            self.read_cpu_us_per_frame,
            self.pass_ms,
            self.per_recipient_p50_ms,
            self.per_recipient_p99_ms,
            self.last_recipient_p50_ms,
            self.last_recipient_p99_ms,
        )
    }
}

/// Connects `config.sockets` loopback pairs, runs the writer and the reader on threads of
/// their own, and reports. Fails if a socket cannot be made or a frame does not arrive
/// within `config.deadline`.
pub fn measure(config: FloorConfig) -> Result<FloorReport, Error> {
    if config.sockets == 0 || config.rounds == 0 || config.frame_bytes == 0 {
        return Err("sockets, rounds and frame bytes must all be at least 1".into());
    }
    let (writers, readers) = socket_pairs(config.sockets)?;
    // The writer starts once the reader's tasks are all in place.
    let ready = Arc::new(Barrier::new(2));
    let reader = {
        let ready = ready.clone();
        thread::Builder::new()
            .name("floor-reader".into())
            .spawn(move || read_rounds(readers, config, &ready))?
    };
    // A thread of its own, so that pinning it leaves the caller's thread alone.
    let writer = thread::Builder::new()
        .name("floor-writer".into())
        .spawn(move || {
            ready.wait();
            write_rounds(writers, config)
        })?;
    let written = writer.join().map_err(|_| "the writer thread panicked")?;
    let read = reader.join().map_err(|_| "the reader thread panicked")??;
    Ok(summarize(config, &written?, &read))
}

/// `n` connected pairs on 127.0.0.1: the accepted (writing) ends, with `TCP_NODELAY` as
/// every server measured here sets it, and the connecting (reading) ends, non-blocking
/// for tokio.
fn socket_pairs(n: usize) -> Result<(Vec<TcpStream>, Vec<TcpStream>), Error> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    let addr = listener.local_addr()?;
    let mut writers = Vec::with_capacity(n);
    let mut readers = Vec::with_capacity(n);
    for _ in 0..n {
        let reader = TcpStream::connect(addr)?;
        let (writer, _) = listener.accept()?;
        writer.set_nodelay(true)?;
        // A reader that stopped reading must not hold the writer forever.
        writer.set_write_timeout(Some(Duration::from_secs(10)))?;
        reader.set_nonblocking(true)?;
        writers.push(writer);
        readers.push(reader);
    }
    Ok((writers, readers))
}

/// What the writer did: when each round was due, how long its passes took, what it cost.
struct Written {
    due: Vec<Instant>,
    passes: Vec<Duration>,
    writes: u64,
    cpu_ns: u64,
}

fn write_rounds(sockets: Vec<TcpStream>, config: FloorConfig) -> Result<Written, Error> {
    if let Some((cpu, _)) = config.cpus {
        pin_to(cpu)?;
    }
    let cpu_before = cpu::thread_used_ns();
    let (due, passes, writes) = match config.pacing {
        Pacing::Alone { gap } => write_alone(sockets, config, gap)?,
        Pacing::Rate { per_sec } => write_at_rate(sockets, config, per_sec)?,
    };
    let cpu_ns = cpu::thread_used_ns()
        .zip(cpu_before)
        .map_or(0, |(after, before)| after - before);
    Ok(Written {
        due,
        passes,
        writes,
        cpu_ns,
    })
}

/// When each round was due, how long each pass took, and how many writes were made.
type Rounds = (Vec<Instant>, Vec<Duration>, u64);

/// Each round whole, then a pause (sleeping costs no CPU, so none is counted).
fn write_alone(
    mut sockets: Vec<TcpStream>,
    config: FloorConfig,
    gap: Duration,
) -> Result<Rounds, Error> {
    let frame = vec![b'x'; config.frame_bytes];
    let mut due = Vec::with_capacity(config.rounds);
    let mut passes = Vec::with_capacity(config.rounds);
    for _ in 0..config.rounds {
        let start = Instant::now();
        for socket in &mut sockets {
            socket.write_all(&frame)?;
        }
        passes.push(start.elapsed());
        due.push(start);
        thread::sleep(gap);
    }
    let writes = (config.rounds * config.sockets) as u64;
    Ok((due, passes, writes))
}

/// Round k due at `start + k / per_sec`; the writer goes round the sockets and writes each
/// the frames due for it so far, in one `write`. It sleeps only when nothing is due.
fn write_at_rate(
    mut sockets: Vec<TcpStream>,
    config: FloorConfig,
    per_sec: f64,
) -> Result<Rounds, Error> {
    if per_sec.is_nan() || per_sec <= 0.0 {
        return Err("the rate must be above 0".into());
    }
    let period = Duration::from_secs_f64(1.0 / per_sec);
    let start = Instant::now();
    let due: Vec<Instant> = (0..config.rounds as u32)
        .map(|k| start + period * k)
        .collect();
    let due_by = |now: Instant| {
        let elapsed = now.saturating_duration_since(start).as_secs_f64();
        ((elapsed * per_sec) as usize + 1).min(config.rounds)
    };
    let frames = vec![b'x'; config.frame_bytes * config.rounds];
    let mut sent = vec![0usize; sockets.len()];
    let mut passes = Vec::new();
    let mut writes = 0u64;
    while sent.iter().any(|&n| n < config.rounds) {
        let pass = Instant::now();
        let mut wrote = false;
        for (socket, sent) in sockets.iter_mut().zip(sent.iter_mut()) {
            let due_now = due_by(Instant::now());
            if due_now > *sent {
                let bytes = &frames[*sent * config.frame_bytes..due_now * config.frame_bytes];
                socket.write_all(bytes)?;
                *sent = due_now;
                writes += 1;
                wrote = true;
            }
        }
        if wrote {
            passes.push(pass.elapsed());
        } else if let Some(next) = due.get(due_by(Instant::now())) {
            thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }
    Ok((due, passes, writes))
}

/// Pins the calling thread to one core.
fn pin_to(cpu: usize) -> Result<(), Error> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(format!("cannot pin to core {cpu}: beyond the CPU set").into());
    }
    // SAFETY: `set` is a plain bit set that lives across the call; the call only reads it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        return Err(format!(
            "cannot pin to core {cpu}: {}",
            std::io::Error::last_os_error()
        )
        .into());
    }
    Ok(())
}

/// What the reader saw: for each socket, when each round's frame arrived.
struct Read {
    arrivals: Vec<Vec<Instant>>,
    cpu_ns: u64,
}

fn read_rounds(
    sockets: Vec<TcpStream>,
    config: FloorConfig,
    ready: &Barrier,
) -> Result<Read, Error> {
    let pinned = config.cpus.map_or(Ok(()), |(_, cpu)| pin_to(cpu));
    let runtime = match pinned.and_then(|()| {
        Ok(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?)
    }) {
        Ok(runtime) => runtime,
        Err(e) => {
            ready.wait();
            return Err(e);
        }
    };
    runtime.block_on(async {
        let tasks: Result<Vec<_>, std::io::Error> = sockets
            .into_iter()
            .map(|socket| {
                let socket = tokio::net::TcpStream::from_std(socket)?;
                Ok(tokio::spawn(read_socket(socket, config)))
            })
            .collect();
        // The writer waits for this whatever happened: on an error here the sockets are
        // closed, and its writes fail instead of waiting.
        ready.wait();
        let tasks = tasks?;
        let cpu_before = cpu::thread_used_ns();
        let all = futures_util::future::join_all(tasks);
        let results = tokio::time::timeout(config.deadline, all)
            .await
            .map_err(|_| "not every frame arrived before the deadline")?;
        let cpu_ns = cpu::thread_used_ns()
            .zip(cpu_before)
            .map_or(0, |(a, b)| a - b);
        let mut arrivals = Vec::with_capacity(results.len());
        for result in results {
            arrivals.push(result.map_err(|e| format!("a reader task failed: {e}"))??);
        }
        Ok(Read { arrivals, cpu_ns })
    })
}

/// Reads frames until every round's has arrived; the k-th whole frame is round k's.
async fn read_socket(
    mut socket: tokio::net::TcpStream,
    config: FloorConfig,
) -> Result<Vec<Instant>, Error> {
    let mut arrivals = Vec::with_capacity(config.rounds);
    let mut buffer = [0u8; 4096];
    let mut partial = 0;
    while arrivals.len() < config.rounds {
        let n = socket.read(&mut buffer).await?;
        if n == 0 {
            return Err("the writer closed a socket early".into());
        }
        let now = Instant::now();
        partial += n;
        while partial >= config.frame_bytes {
            partial -= config.frame_bytes;
            arrivals.push(now);
        }
    }
    Ok(arrivals)
}

fn summarize(config: FloorConfig, written: &Written, read: &Read) -> FloorReport {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut per_recipient = Vec::with_capacity(config.sockets * config.rounds);
    let mut last = vec![Duration::ZERO; config.rounds];
    for socket in &read.arrivals {
        for (round, arrived) in socket.iter().enumerate() {
            let latency = arrived.saturating_duration_since(written.due[round]);
            per_recipient.push(ms(latency));
            last[round] = last[round].max(latency);
        }
    }
    let mut last: Vec<f64> = last.into_iter().map(ms).collect();
    let mut passes: Vec<f64> = written.passes.iter().copied().map(ms).collect();
    let frames = (config.sockets * config.rounds) as f64;
    let writes = written.writes.max(1) as f64;
    FloorReport {
        sockets: config.sockets,
        rounds: config.rounds,
        frame_bytes: config.frame_bytes,
        rate_per_sec: match config.pacing {
            Pacing::Alone { .. } => 0.0,
            Pacing::Rate { per_sec } => per_sec,
        },
        write_cpu_us: written.cpu_ns as f64 / 1e3 / writes,
        frames_per_write: frames / writes,
        read_cpu_us_per_frame: read.cpu_ns as f64 / 1e3 / frames,
        pass_ms: quantile(&mut passes, 0.5),
        per_recipient_p50_ms: quantile(&mut per_recipient, 0.5),
        per_recipient_p99_ms: quantile(&mut per_recipient, 0.99),
        last_recipient_p50_ms: quantile(&mut last, 0.5),
        last_recipient_p99_ms: quantile(&mut last, 0.99),
    }
}

/// The `q` quantile (nearest rank) of `values`, which it sorts; 0 if empty.
fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(pacing: Pacing) -> FloorConfig {
        FloorConfig {
            sockets: 20,
            rounds: 30,
            frame_bytes: 100,
            pacing,
            cpus: None,
            deadline: Duration::from_secs(20),
        }
    }

    /// Every frame of every round arrived (else `measure` fails at the deadline), and the
    /// figures are in the order they must be.
    fn check(report: &FloorReport) {
        assert_eq!(
            (report.sockets, report.rounds, report.frame_bytes),
            (20, 30, 100)
        );
        assert!(report.write_cpu_us > 0.0, "{report:?}");
        assert!(report.pass_ms > 0.0, "{report:?}");
        assert!(report.per_recipient_p50_ms > 0.0, "{report:?}");
        assert!(
            report.per_recipient_p50_ms <= report.per_recipient_p99_ms
                && report.per_recipient_p99_ms <= report.last_recipient_p99_ms
                && report.last_recipient_p50_ms <= report.last_recipient_p99_ms,
            "{report:?}"
        );
    }

    #[test]
    fn rounds_sent_alone_write_one_frame_at_a_time() {
        let report = measure(small(Pacing::Alone {
            gap: Duration::from_millis(2),
        }))
        .expect("measured");
        check(&report);
        assert_eq!(report.frames_per_write, 1.0);
        assert_eq!(report.rate_per_sec, 0.0);
    }

    #[test]
    fn rounds_at_a_rate_are_all_sent_and_take_their_time() {
        let started = Instant::now();
        let report = measure(small(Pacing::Rate { per_sec: 300.0 })).expect("measured");
        check(&report);
        // 30 rounds at 300 per second: the last is due 97 ms after the first.
        assert!(started.elapsed() >= Duration::from_millis(96), "{report:?}");
        assert!(report.frames_per_write >= 1.0, "{report:?}");
    }

    #[test]
    fn pins_each_side_to_its_core() {
        let report = measure(FloorConfig {
            cpus: Some((0, 0)),
            ..small(Pacing::Alone {
                gap: Duration::ZERO,
            })
        })
        .expect("measured");
        check(&report);
        let err = measure(FloorConfig {
            cpus: Some((0, libc::CPU_SETSIZE as usize - 1)),
            ..small(Pacing::Alone {
                gap: Duration::ZERO,
            })
        })
        .expect_err("no such core");
        assert!(err.to_string().contains("cannot pin"), "{err}");
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.5), 50.0);
        assert_eq!(quantile(&mut v, 0.99), 99.0);
        assert_eq!(quantile(&mut v, 1.0), 100.0);
        assert_eq!(quantile(&mut [], 0.5), 0.0);
    }
}
