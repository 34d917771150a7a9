//! The cluster's counters for `/metrics`: written by the cluster thread (and by shards only
//! when a message is dropped), read on scrape. Relaxed atomics: none of this orders anything.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

#[derive(Debug, Default)]
pub struct Board {
    /// Publications sent to NATS.
    pub published: AtomicU64,
    /// Publications received from NATS (each handed to every shard).
    pub received: AtomicU64,
    /// Broadcasts sent and received (dialect state: presence, counts, sessions).
    pub broadcasts_out: AtomicU64,
    pub broadcasts_in: AtomicU64,
    /// Publications not sent because the link was down (`when_down = "local"`).
    pub missed_while_down: AtomicU64,
    /// Messages dropped on a full channel, shards to the cluster thread and back.
    pub dropped_out: AtomicU64,
    pub dropped_in: AtomicU64,
    /// Topics this node follows (a gauge).
    pub interest: AtomicU64,
    /// Digest mismatches repaired by a full topic list.
    pub resyncs: AtomicU64,
    /// Times the link to NATS came back after going down.
    pub reconnects: AtomicU64,
    /// 1 while the link is up (a gauge).
    pub link_up: AtomicU64,
    /// Other nodes heard from recently (a gauge), and nodes declared gone.
    pub nodes: AtomicU64,
    pub nodes_gone: AtomicU64,
    /// Queries to the other nodes, those answered by only some of them, and their latency.
    pub queries: AtomicU64,
    pub queries_partial: AtomicU64,
    pub query_micros_sum: AtomicU64,
    pub query_micros_max: AtomicU64,
}

impl Board {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Relaxed);
    }

    /// Records one query's duration.
    pub fn query_took(&self, micros: u64, partial: bool) {
        Board::add(&self.queries, 1);
        Board::add(&self.query_micros_sum, micros);
        self.query_micros_max.fetch_max(micros, Relaxed);
        if partial {
            Board::add(&self.queries_partial, 1);
        }
    }

    /// The Prometheus text of these counters, labelled with the node's name.
    pub fn render(&self, node: &str) -> String {
        let rows: [(&str, &str, &str, &AtomicU64); 17] = [
            ("published_total", "counter", "publications sent to the cluster", &self.published),
            ("received_total", "counter", "publications received from the cluster", &self.received),
            ("broadcasts_out_total", "counter", "state broadcasts sent", &self.broadcasts_out),
            ("broadcasts_in_total", "counter", "state broadcasts received", &self.broadcasts_in),
            (
                "missed_while_down_total",
                "counter",
                "publications not sent: link down",
                &self.missed_while_down,
            ),
            (
                "dropped_out_total",
                "counter",
                "messages dropped on a full queue to the cluster thread",
                &self.dropped_out,
            ),
            (
                "dropped_in_total",
                "counter",
                "messages dropped on a full queue to a shard",
                &self.dropped_in,
            ),
            ("interest", "gauge", "topics this node follows", &self.interest),
            (
                "resyncs_total",
                "counter",
                "topic lists resent after a digest mismatch",
                &self.resyncs,
            ),
            ("reconnects_total", "counter", "links to NATS restored", &self.reconnects),
            ("link_up", "gauge", "1 while the link to NATS is up", &self.link_up),
            ("nodes", "gauge", "other nodes alive", &self.nodes),
            (
                "nodes_gone_total",
                "counter",
                "nodes declared gone after the heartbeat timeout",
                &self.nodes_gone,
            ),
            ("queries_total", "counter", "queries to the other nodes", &self.queries),
            (
                "queries_partial_total",
                "counter",
                "queries some node did not answer in time",
                &self.queries_partial,
            ),
            ("query_microseconds_sum", "counter", "time spent in queries", &self.query_micros_sum),
            ("query_microseconds_max", "gauge", "longest query", &self.query_micros_max),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP pushgate_cluster_{name} {help}");
            let _ = writeln!(out, "# TYPE pushgate_cluster_{name} {kind}");
            let _ =
                writeln!(out, "pushgate_cluster_{name}{{node=\"{node}\"}} {}", value.load(Relaxed));
        }
        out
    }
}
