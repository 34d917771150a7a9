//! pushgate-load: entry point; raises the open-file limit, builds the runtime, runs one scenario.

mod accounting;
mod cli;
mod payload;
mod plot;
mod procstat;
mod publisher;
mod report;
mod scenarios;
mod sign;
mod source_addr;
mod stats;
#[cfg(test)]
mod test_server;
mod ws_client;

use clap::Parser;
use cli::{Cli, Scenario};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let nofile = procstat::raise_nofile_limit();
    let common = cli.scenario.common().clone();
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
