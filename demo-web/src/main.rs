//! The `demo-web` binary: parses the flags, sets up logging, binds both listeners,
//! prints their real addresses, turns SIGINT/SIGTERM into the shutdown token and hands
//! over to [`demo_web::server::run`]. It must not hold any chat logic.
//!
//! Standard output carries exactly where the data is (`data in PATH`) and the address
//! lines (`tcp listening on ADDR`, `irc listening on ADDR`, `metrics listening on
//! http://ADDR` with `--metrics ADDR`, then `listening on http://ADDR` once everything
//! is bound), so scripts and tests can start the server on
//! port 0 and read the ports; logs go to standard error, and so does the one line that
//! says why the server could not start.

use std::error::Error;
use std::io::{IsTerminal, Write};
use std::net::TcpListener;
use std::process::ExitCode;

use clap::Parser;
use demo_web::cli::{Cli, LogFormat, MetricsAt, StoreChoice};
use demo_web::exporter;
use demo_web::server::{self, Config, Listeners, Store};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// The crates whose logs `--log-level` sets when `RUST_LOG` is not given.
const OUR_CRATES: &[&str] = &[
    "demo_web",
    "chat_core",
    "transport_ws",
    "transport_tcp",
    "transport_irc",
];

/// The store's file in the data directory.
const DATA_FILE: &str = "flack.sqlite3";

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let checked = cli.check().unwrap_or_else(|e| e.exit());
    init_tracing(&cli);
    match serve(cli, checked).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo-web: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Where the data lives, said on standard output, with the data directory created.
fn prepare_store(choice: StoreChoice, out: &mut impl Write) -> Result<Store, Box<dyn Error>> {
    Ok(match choice {
        StoreChoice::Memory => {
            writeln!(out, "data in memory only (gone when the server stops)")?;
            Store::Memory
        }
        StoreChoice::Redis(url) => {
            writeln!(out, "data in redis")?;
            Store::Redis(url)
        }
        StoreChoice::DataDir(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("cannot create the data directory {}: {e}", dir.display()))?;
            let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
            writeln!(out, "data in {}", dir.display())?;
            Store::Sqlite(dir.join(DATA_FILE))
        }
    })
}

async fn serve(cli: Cli, mut checked: demo_web::cli::Checked) -> Result<(), Box<dyn Error>> {
    let store = prepare_store(cli.store(), &mut std::io::stdout().lock())?;

    let http = TcpListener::bind(cli.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", cli.listen))?;
    let tcp = match cli.tcp.0 {
        Some(addr) => {
            Some(TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?)
        }
        None => None,
    };
    let irc = match cli.irc.0 {
        Some(addr) => {
            Some(TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?)
        }
        None => None,
    };
    let metrics_listener = match cli.metrics {
        MetricsAt::Own(addr) => {
            Some(TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?)
        }
        MetricsAt::Main | MetricsAt::Off => None,
    };
    // `off` installs no recorder: every metrics call in the engine is then a no-op.
    let metrics = match cli.metrics {
        MetricsAt::Off => None,
        MetricsAt::Main | MetricsAt::Own(_) => Some(exporter::install()?),
    };
    // The line and IRC ports link a message's files under the web app's address.
    let public_url = match &cli.public_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => format!("http://{}", http.local_addr()?),
    };
    let files_url = Some(format!("{public_url}/files/"));
    checked.tcp.files_url = files_url.clone();
    checked.irc.files_url = files_url;
    // The line port tells an IRC client that knocks on it where to go instead.
    checked.tcp.irc_address = match &irc {
        Some(listener) => Some(listener.local_addr()?.to_string()),
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        match &tcp {
            Some(listener) => writeln!(out, "tcp listening on {}", listener.local_addr()?)?,
            None => writeln!(out, "tcp listener off")?,
        }
        match &irc {
            Some(listener) => writeln!(out, "irc listening on {}", listener.local_addr()?)?,
            None => writeln!(out, "irc listener off")?,
        }
        if let Some(listener) = &metrics_listener {
            writeln!(
                out,
                "metrics listening on http://{}",
                listener.local_addr()?
            )?;
        }
        writeln!(out, "listening on http://{}", http.local_addr()?)?;
        out.flush()?;
    }
    match &tcp {
        Some(listener) => {
            tracing::info!(http = %http.local_addr()?, tcp = %listener.local_addr()?, "listening")
        }
        None => tracing::info!(http = %http.local_addr()?, "listening (TCP off)"),
    }

    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let config = Config {
        limits: checked.limits,
        ws: checked.ws,
        tcp: checked.tcp,
        irc: checked.irc,
        shutdown_timeout: cli.shutdown_timeout,
        store,
        channels: cli.channels,
        metrics,
    };
    let listeners = Listeners {
        http,
        tcp,
        irc,
        metrics: metrics_listener,
    };
    server::run(config, listeners, shutdown).await?;
    Ok(())
}

/// Logs to standard error in `--log-format`: `RUST_LOG` if set, else `--log-level` for
/// our crates and warnings for the rest.
fn init_tracing(cli: &Cli) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let level = cli.log_level.as_str().to_ascii_lowercase();
        let directives: Vec<String> = std::iter::once("warn".to_owned())
            .chain(OUR_CRATES.iter().map(|krate| format!("{krate}={level}")))
            .collect();
        EnvFilter::new(directives.join(","))
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        // One JSON object a line, the span's fields (`session_id`, `peer`) included.
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received"),
        _ = terminate => tracing::info!("SIGTERM received"),
    }
    shutdown.cancel();
}
