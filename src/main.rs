//! The `pushgate` command: command line -> Config -> runtime, and signal handling.

use anyhow::Context;
use clap::Parser;
use pushgate::{config::Config, runtime};
use std::{io::Write, path::PathBuf};

#[cfg(not(feature = "heap-profile"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "heap-profile")]
#[global_allocator]
static GLOBAL: pushgate::heap_profile::Counting = pushgate::heap_profile::Counting;

/// A thread-per-core WebSocket push gateway speaking the Pusher Channels protocol.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file (defaults are embedded; see --print-default-config).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on (overrides config and PUSHGATE_HOST).
    #[arg(long)]
    host: Option<String>,
    /// Port for WebSocket clients and the REST API; 0 picks a free one.
    #[arg(long, short)]
    port: Option<u16>,
    /// Number of connection shards (default: the CPUs this process may use).
    #[arg(long)]
    shards: Option<usize>,
    /// Pin shard i to CPU i.
    #[arg(long)]
    pin: bool,
    /// Seconds of client silence before a server ping.
    #[arg(long)]
    activity_timeout: Option<u64>,
    /// Print the embedded default configuration as TOML and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Check the configuration and exit (0 if valid).
    #[arg(long)]
    check_config: bool,
}

/// Errors at start are one line on stderr (with their causes), whatever RUST_BACKTRACE says.
fn main() {
    if let Err(e) = run() {
        eprintln!("pushgate: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cli.print_default_config {
        print!("{}", Config::default_toml());
        return Ok(());
    }
    let config = load(&cli)?;
    if cli.check_config {
        println!("configuration is valid ({} app(s))", config.apps.len());
        return Ok(());
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let (signal_tx, signal_rx) = crossbeam_channel::bounded(1);
    // Installed before the shards start, so a signal during start is not lost.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ])
    .context("cannot install signal handlers")?;
    let running = runtime::start(config)?;
    let edge = running.edge.clone();
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if signal != signal_hook::consts::SIGHUP {
                let _ = signal_tx.send(());
                return;
            }
            match edge.reload_tls() {
                Ok(true) => tracing::info!("SIGHUP: TLS certificate reloaded for new connections"),
                Ok(false) => tracing::info!("SIGHUP: nothing to reload (no [tls])"),
                Err(e) => tracing::error!(
                    "SIGHUP: TLS certificate not reloaded, keeping the old one: {e}"
                ),
            }
        }
    });
    println!("pushgate listening on {} with {} shards", running.addr, running.shards);
    std::io::stdout().flush()?;
    let clean = running.wait(signal_rx);
    std::process::exit(if clean { 0 } else { 1 });
}

fn load(cli: &Cli) -> anyhow::Result<Config> {
    let mut config = match &cli.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    config.apply_env(|k| std::env::var(k).ok())?;
    if let Some(host) = &cli.host {
        config.host = host.clone();
    }
    if let Some(port) = cli.port {
        config.port = port;
    }
    if let Some(shards) = cli.shards {
        config.shards = shards;
    }
    if cli.pin {
        config.pin = true;
    }
    if let Some(t) = cli.activity_timeout {
        config.activity_timeout = t;
    }
    config.check()?;
    Ok(config)
}
