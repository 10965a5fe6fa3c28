//! `raw-ws`: the raw-limit WebSocket broadcast server ([`benches::raw`]) as a binary.
//! Parses flags, binds (loopback only), prints `listening on ws://ADDR`, serves until
//! SIGINT/SIGTERM or `--max-seconds`. No serving logic lives here.

use std::error::Error;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// A WebSocket broadcast server with no engine: the raw limit for benchmarks.
#[derive(Debug, Parser)]
#[command(name = "raw-ws", version, about)]
struct Args {
    /// Address to listen on (loopback only); port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:9001")]
    listen: SocketAddr,
    /// Runtime worker threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Stop after this many seconds at most (a benchmark server never outlives its run).
    #[arg(long, default_value_t = 3600)]
    max_seconds: u64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        return Err(format!("{} is not a loopback address", args.listen).into());
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        builder.worker_threads(n.max(1));
    }
    let runtime = builder.enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen).await?;
        println!("listening on ws://{}", listener.local_addr()?);
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
                _ = tokio::time::sleep(Duration::from_secs(args.max_seconds)) => {}
            }
            Ok::<(), std::io::Error>(())
        };
        benches::raw::serve(listener, async {
            if let Err(e) = stop.await {
                eprintln!("raw-ws: cannot wait for signals: {e}");
            }
        })
        .await;
        Ok::<(), Box<dyn Error>>(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
