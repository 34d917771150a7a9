//! pushgate-load: entry point; raises the open-file limit, builds the runtime, runs one scenario.

mod accounting;
mod cli;
mod durable;
mod floor;
mod gateway;
mod im;
mod output;
mod payload;
mod plot;
mod procstat;
mod publisher;
mod report;
mod scenarios;
mod sign;
mod sink;
mod source_addr;
mod stats;
#[cfg(test)]
mod test_server;
mod ws_client;

use clap::Parser;
use cli::{Cli, Scenario};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let common = match (&cli.scenario, cli.scenario.common()) {
        (_, Some(c)) => c.clone(),
        (Scenario::Floor(a), None) => return run_floor(a),
        (Scenario::FloorReader(a), None) => return floor::reader::main(a),
        (Scenario::Sink(a), None) => return run_sink(a),
        (Scenario::Durable(a), None) => return durable::main(a),
        (_, None) => return std::process::ExitCode::from(2),
    };
    let nofile = procstat::raise_nofile_limit();
    if let Err(e) = common.target() {
        eprintln!("pushgate-load: {e}");
        return std::process::ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(common.workers as usize)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pushgate-load: cannot start runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async {
        let report = match &cli.scenario {
            Scenario::Fanout(a) => scenarios::fanout::run(a, None, nofile).await?,
            Scenario::Churn(a) => scenarios::fanout::run(&a.fanout, Some(a), nofile).await?,
            Scenario::Idle(a) => scenarios::idle::run(a, nofile).await?,
            Scenario::Gateway(a) => gateway::run(a, nofile).await?,
            Scenario::GatewayCalls(a) => {
                return gateway::calls::run(a, nofile).await?.emit(common.json.as_deref());
            }
            Scenario::ImPush(a) => return im::push(a).await,
            Scenario::ImRtt(a) => return im::rtt(a).await,
            Scenario::Floor(_)
            | Scenario::FloorReader(_)
            | Scenario::Sink(_)
            | Scenario::Durable(_) => {
                anyhow::bail!("not a server scenario")
            }
        };
        report.emit(common.json.as_deref())
    });
    // Connection tasks left behind (if any) must not hold up the exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushgate-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `floor` needs no runtime: plain threads (or a reader process) and loopback TCP.
fn run_floor(args: &floor::FloorArgs) -> std::process::ExitCode {
    match floor::run(args).and_then(|r| r.emit(args.json.as_deref())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushgate-load floor: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `sink` runs on a current-thread runtime of its own.
fn run_sink(args: &sink::SinkArgs) -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let result = rt
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(sink::run(args)))
        .and_then(|r| r.emit(args.json.as_deref()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pushgate-load sink: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
