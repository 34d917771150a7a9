//! Per-shard counters: plain integers owned by one shard, merged with `Sum` when scraped, so
//! counting costs no atomics on the message path.

use std::{fmt::Write, iter::Sum, ops::AddAssign};

/// One shard's counters (or, summed, the server's).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Open WebSocket connections (a gauge).
    pub connections: u64,
    /// WebSocket connections accepted since start.
    pub connections_total: u64,
    /// Connections closed with 4100 because their outbound queue passed its limit.
    pub slow_consumers_closed: u64,
    /// Connections closed with 4201 after an unanswered ping.
    pub pong_timeouts: u64,
    /// Client messages received.
    pub messages_in: u64,
    /// Frames queued to clients (deliveries, plus protocol frames).
    pub frames_out: u64,
    /// Bytes written to client sockets.
    pub bytes_out: u64,
    /// `sendmsg` calls made to write them (bytes_out / writes shows the coalescing).
    pub writes: u64,
    /// Events accepted by the REST API (one per channel).
    pub events_published: u64,
    /// Topics with local subscribers (a gauge).
    pub topics: u64,
    /// Hook events dropped because the ring to the hook shard was full.
    pub hook_events_dropped: u64,
    /// Notices and questions waiting for room in a ring to another shard (a gauge).
    pub ring_backlog: u64,
    /// Upstream calls waiting for their answers (a gauge).
    pub calls_in_flight: u64,
}

impl AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.connections += o.connections;
        self.connections_total += o.connections_total;
        self.slow_consumers_closed += o.slow_consumers_closed;
        self.pong_timeouts += o.pong_timeouts;
        self.messages_in += o.messages_in;
        self.frames_out += o.frames_out;
        self.bytes_out += o.bytes_out;
        self.writes += o.writes;
        self.events_published += o.events_published;
        self.topics += o.topics;
        self.hook_events_dropped += o.hook_events_dropped;
        self.ring_backlog += o.ring_backlog;
        self.calls_in_flight += o.calls_in_flight;
    }
}

impl Sum for Stats {
    fn sum<I: Iterator<Item = Stats>>(iter: I) -> Stats {
        iter.fold(Stats::default(), |mut acc, s| {
            acc += s;
            acc
        })
    }
}

impl Stats {
    /// The Prometheus text exposition of these counters.
    pub fn render(&self, shards: usize) -> String {
        let rows: [(&str, &str, &str, u64); 14] = [
            ("shards", "gauge", "connection shards", shards as u64),
            ("connections", "gauge", "open WebSocket connections", self.connections),
            ("connections_total", "counter", "connections accepted", self.connections_total),
            (
                "slow_consumers_closed_total",
                "counter",
                "closed with 4100",
                self.slow_consumers_closed,
            ),
            ("pong_timeouts_total", "counter", "closed with 4201", self.pong_timeouts),
            ("messages_in_total", "counter", "client messages received", self.messages_in),
            ("frames_out_total", "counter", "frames queued to clients", self.frames_out),
            ("bytes_out_total", "counter", "bytes written to clients", self.bytes_out),
            ("writes_total", "counter", "sendmsg calls to clients", self.writes),
            (
                "events_published_total",
                "counter",
                "events accepted by the REST API",
                self.events_published,
            ),
            ("topics", "gauge", "topics with subscribers, summed over shards", self.topics),
            (
                "hook_ring_dropped_total",
                "counter",
                "hook events dropped on a full ring",
                self.hook_events_dropped,
            ),
            (
                "ring_backlog",
                "gauge",
                "notices waiting for room in a ring to another shard",
                self.ring_backlog,
            ),
            (
                "upstream_calls_in_flight",
                "gauge",
                "upstream calls waiting for their answers",
                self.calls_in_flight,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP pushgate_{name} {help}\n# TYPE pushgate_{name} {kind}");
            let _ = writeln!(out, "pushgate_{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_renders() {
        let a = Stats { connections: 2, slow_consumers_closed: 1, ..Stats::default() };
        let b = Stats { connections: 3, frames_out: 9, ring_backlog: 4, ..Stats::default() };
        let total: Stats = [a, b].into_iter().sum();
        assert_eq!(total.connections, 5);
        assert_eq!(total.frames_out, 9);
        let text = total.render(2);
        assert!(text.contains("pushgate_connections 5\n"));
        assert!(text.contains("pushgate_ring_backlog 4\n"));
        assert!(text.contains("pushgate_slow_consumers_closed_total 1\n"));
        assert!(text.contains("pushgate_shards 2\n"));
    }
}
