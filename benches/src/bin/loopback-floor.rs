//! `loopback-floor`: the machine's floor for a fan-out ([`benches::floor`]) as a binary.
//! Parses flags, measures, prints a human table or `--json`. No measuring logic lives here.

use std::process::ExitCode;
use std::time::Duration;

use benches::floor::{self, FloorConfig, Pacing};
use clap::Parser;

/// One frame to each of many loopback TCP sockets, written and read with nothing in between:
/// the floor under every fan-out latency measured on this machine.
#[derive(Debug, Parser)]
#[command(name = "loopback-floor", version, about)]
struct Args {
    /// Sockets written to in each round (recipients of one message).
    #[arg(long, default_value_t = 1000)]
    sockets: usize,
    /// Rounds (messages).
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Bytes per frame.
    #[arg(long, default_value_t = 192)]
    frame_bytes: usize,
    /// Rounds due per second, as scenario 3 offers messages; 0 sends each round alone,
    /// `--gap-ms` after the one before.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// With `--rate 0`: the pause after each round, milliseconds.
    #[arg(long, default_value_t = 20)]
    gap_ms: u64,
    /// Pin the writer to this core (with `--reader-cpu`).
    #[arg(long, requires = "reader_cpu")]
    writer_cpu: Option<usize>,
    /// Pin the reader to this core (with `--writer-cpu`).
    #[arg(long, requires = "writer_cpu")]
    reader_cpu: Option<usize>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = FloorConfig {
        sockets: args.sockets,
        rounds: args.rounds,
        frame_bytes: args.frame_bytes,
        pacing: if args.rate > 0.0 {
            Pacing::Rate { per_sec: args.rate }
        } else {
            Pacing::Alone {
                gap: Duration::from_millis(args.gap_ms),
            }
        },
        cpus: args.writer_cpu.zip(args.reader_cpu),
        ..FloorConfig::default()
    };
    let report = match floor::measure(config) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("loopback-floor: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.json {
        match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("loopback-floor: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        print!("{}", report.table());
    }
    ExitCode::SUCCESS
}
