//! Command-line interface: subcommands (scenarios) and their flags.

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "pushgate-load",
    version,
    about = "Load generator for Pusher protocol 7 servers (pushgate, sockudo, soketi)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// N subscribers over C channels; publish R events/s for T seconds; measure delivery and latency.
    Fanout(FanoutArgs),
    /// Open N subscribed connections and hold them; measure server memory per connection.
    Idle(IdleArgs),
    /// A fanout run while extra connections open and close at a given rate.
    Churn(ChurnArgs),
    /// No server: CPU cost of one send(2) of a small frame over loopback TCP, to one socket or N
    /// round robin (the floor for CPU/delivery).
    Floor(crate::floor::FloorArgs),
    /// The reader process of `floor --sockets N` (started by it).
    #[command(hide = true)]
    FloorReader(crate::floor::reader::ReaderArgs),
    /// No server: an HTTP receiver answering 200 to every request (for webhook / event-hook runs).
    Sink(crate::sink::SinkArgs),
    /// The gateway dialect: fanout with gateway subscribers (register + sub_add through this
    /// tool's mock upstream) and publishes through POST /gateway/publish.
    Gateway(crate::gateway::GatewayArgs),
    /// The gateway dialect: upstream round trips per second through the hook shard.
    GatewayCalls(crate::gateway::calls::CallsArgs),
    /// Durable publishing with 10 consumers: pushgate's Zato GD topics or NATS JetStream.
    Durable(crate::durable::DurableArgs),
    /// IM dialect: `POST /im/sendMsg` to N users R times a second; latency, server CPU per push.
    ImPush(crate::im::ImPushArgs),
    /// IM dialect: requests routed through a mock gRPC backend this tool runs; round trips/s.
    ImRtt(crate::im::ImRttArgs),
}

impl Scenario {
    /// The shared flags; `None` for `floor` and `sink`, which talk to no server.
    pub fn common(&self) -> Option<&Common> {
        match self {
            Scenario::Fanout(a) => Some(&a.common),
            Scenario::Idle(a) => Some(&a.common),
            Scenario::Churn(a) => Some(&a.fanout.common),
            Scenario::Gateway(a) => Some(&a.fanout.common),
            Scenario::GatewayCalls(a) => Some(&a.common),
            Scenario::ImPush(a) => Some(&a.common),
            Scenario::ImRtt(a) => Some(&a.common),
            Scenario::Floor(_)
            | Scenario::FloorReader(_)
            | Scenario::Sink(_)
            | Scenario::Durable(_) => None,
        }
    }
}

/// Flags shared by every scenario.
#[derive(Debug, Clone, Args, Serialize)]
pub struct Common {
    /// Server address (an IP, or `localhost`).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port for publishing and, unless `--sub-ports` is given, for subscribers.
    #[arg(long, default_value_t = 6001)]
    pub port: u16,
    /// Spread subscribers over these ports of `--host`, connection i to the (i % len)-th (several
    /// nodes of a cluster); publishes still go to `--port`.
    #[arg(long, value_delimiter = ',', value_name = "PORT,...")]
    pub sub_ports: Vec<u16>,
    /// Allow a target outside 127.0.0.0/8 and ::1.
    #[arg(long)]
    pub allow_non_loopback: bool,
    #[arg(long, default_value = "app-id")]
    pub app_id: String,
    #[arg(long, default_value = "app-key")]
    pub app_key: String,
    #[arg(long, default_value = "app-secret")]
    #[serde(skip)]
    pub app_secret: String,
    /// Tokio worker threads for the load generator.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub workers: u16,
    /// Server PID: sample its RSS and CPU time before/after.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// More processes whose CPU time over the measured window is reported (other cluster nodes,
    /// the cluster's message server); repeatable.
    #[arg(long, value_name = "PID")]
    pub extra_pid: Vec<u32>,
    /// Write every figure as one JSON object to FILE (`-` for stdout; the summary then goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub json: Option<String>,
    /// Write an SVG latency distribution plot.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Per-connection timeout for TCP connect + WebSocket handshake + subscribe (ms).
    #[arg(long, default_value_t = 10_000)]
    pub connect_timeout_ms: u64,
    /// Connections being set up at the same time.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub connect_concurrency: u32,
    /// Upper bound on the whole connect phase (s).
    #[arg(long, default_value_t = 300)]
    pub connect_phase_secs: u64,
    /// Connections per 127.0.0.x source address (default: a quarter of the ephemeral port range).
    #[arg(long)]
    pub conns_per_source: Option<usize>,
    /// Channel name prefix; channel c is PREFIX{c}.
    #[arg(long, default_value = "bench-")]
    pub channel_prefix: String,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl Common {
    /// The target socket address, refusing non-loopback targets unless allowed.
    pub fn target(&self) -> anyhow::Result<SocketAddr> {
        let ip: IpAddr = if self.host == "localhost" {
            IpAddr::from([127, 0, 0, 1])
        } else {
            self.host
                .parse()
                .map_err(|_| anyhow::anyhow!("--host must be an IP address or localhost"))?
        };
        if !ip.is_loopback() && !self.allow_non_loopback {
            anyhow::bail!("refusing non-loopback target {ip} (pass --allow-non-loopback)");
        }
        Ok(SocketAddr::new(ip, self.port))
    }

    /// The Pusher WebSocket path and query.
    pub fn ws_path(&self) -> String {
        format!("/app/{}?protocol=7&client=pushgate-load&version=0.1", self.app_key)
    }

    /// Where subscribers connect to `path`: `--sub-ports` in order, or `--port` alone.
    pub fn endpoints(&self, path: &str) -> anyhow::Result<Vec<Endpoint>> {
        let ip = self.target()?.ip();
        let ports = if self.sub_ports.is_empty() { &[self.port][..] } else { &self.sub_ports };
        Ok(ports
            .iter()
            .map(|&p| Endpoint {
                addr: SocketAddr::new(ip, p),
                url: format!("ws://{}:{p}{path}", self.host),
            })
            .collect())
    }
}

/// One server subscribers connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: SocketAddr,
    pub url: String,
}

/// Subscriber population.
#[derive(Debug, Clone, Args, Serialize)]
pub struct ConnArgs {
    /// Subscribed connections (connection i subscribes to channel i % channels).
    #[arg(short = 'n', long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub connections: u64,
    /// Number of channels.
    #[arg(short = 'c', long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub channels: u64,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub conns: ConnArgs,
    /// Events published per second (over all channels).
    #[arg(short = 'r', long, default_value_t = 100.0)]
    pub rate: f64,
    /// Publish window (s).
    #[arg(short = 't', long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_secs: u64,
    /// Size of each event's data string (bytes).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub payload_bytes: u32,
    /// Pick each event's channel at random instead of round-robin.
    #[arg(long)]
    pub random_channel: bool,
    /// Parallel keep-alive HTTP connections used for publishing.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub publishers: u32,
    /// Per-request HTTP timeout (ms).
    #[arg(long, default_value_t = 5_000)]
    pub http_timeout_ms: u64,
    /// Longest wait for outstanding deliveries after publishing ends (s).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub drain_secs: u64,
    /// Event name used for published events.
    #[arg(long, default_value = "bench")]
    pub event_name: String,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub conns: ConnArgs,
    /// How long to hold the connections open (s).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub hold_secs: u64,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub fanout: FanoutArgs,
    /// Extra connections opened per second (each subscribes, then closes after its lifetime).
    #[arg(long, default_value_t = 50.0)]
    pub churn_rate: f64,
    /// Lifetime of each churning connection (ms).
    #[arg(long, default_value_t = 1_000)]
    pub churn_lifetime_ms: u64,
    /// Upper bound on churning connections alive at once.
    #[arg(long, default_value_t = 1_000)]
    pub churn_max_open: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fanout_defaults_and_flags() {
        let cli = Cli::try_parse_from([
            "pushgate-load",
            "fanout",
            "-n",
            "500",
            "--channels",
            "5",
            "--random-channel",
            "--json",
            "-",
        ]);
        let Ok(Cli { scenario: Scenario::Fanout(a) }) = cli else {
            panic!("fanout did not parse");
        };
        assert_eq!(a.conns.connections, 500);
        assert_eq!(a.conns.channels, 5);
        assert!(a.random_channel);
        assert_eq!(a.payload_bytes, 64);
        assert_eq!(a.drain_secs, 3);
        assert_eq!(a.common.json.as_deref(), Some("-"));
        assert!(a.common.target().is_ok());
    }

    #[test]
    fn sub_ports_and_extra_pids() {
        let cli = Cli::try_parse_from([
            "pushgate-load",
            "fanout",
            "--port",
            "6001",
            "--sub-ports",
            "6001,6002,6003",
            "--extra-pid",
            "11",
            "--extra-pid",
            "12",
        ]);
        let Ok(Cli { scenario: Scenario::Fanout(a) }) = cli else {
            panic!("fanout did not parse");
        };
        assert_eq!(a.common.sub_ports, [6001, 6002, 6003]);
        assert_eq!(a.common.extra_pid, [11, 12]);
        let ports: Vec<u16> = match a.common.endpoints("/x") {
            Ok(e) => e.iter().map(|e| e.addr.port()).collect(),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(ports, [6001, 6002, 6003]);
        let one = Cli::try_parse_from(["pushgate-load", "idle", "--port", "7000"]);
        let Ok(Cli { scenario: Scenario::Idle(i) }) = one else { panic!("idle did not parse") };
        let e = i.common.endpoints("/app/k").unwrap_or_default();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].url, "ws://127.0.0.1:7000/app/k");
        assert!(i.common.extra_pid.is_empty());
    }

    #[test]
    fn refuses_remote_target_by_default() {
        let cli = Cli::try_parse_from(["pushgate-load", "idle", "--host", "10.1.2.3"]);
        let Ok(cli) = cli else { panic!("idle did not parse") };
        assert!(cli.scenario.common().is_some_and(|c| c.target().is_err()));
    }
}
