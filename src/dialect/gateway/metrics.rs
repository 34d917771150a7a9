//! The gateway's Prometheus metrics, under the original's names: per-shard plain counters
//! (no atomics: each shard counts its own), gathered from every shard on scrape and rendered
//! here. `ws_current_connections`, `ws_topic_count` and `ws_msg_queue_size` are per shard
//! (`worker="shard-N"`, the original's per-worker label); `ws_pub_total{topic}` counts the
//! pushes published to each topic; `ws_status{route,subroute,status}` every answer;
//! `ws_latency` (request to answer) and `ws_upstream_latency` (the upstream call) are
//! histograms in seconds over the original's buckets.

use ahash::AHashMap;
use std::{fmt::Write, time::Duration};

/// The original's histogram buckets (its values are seconds here).
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0];

/// Distinct topics `ws_pub_total` tracks per shard; pushes to others count as `_other`, so a
/// publisher inventing topics cannot grow the scrape without bound.
const MAX_PUB_TOPICS: usize = 1024;

/// A cumulative histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, secs: f64) {
        for (count, bound) in self.counts.iter_mut().zip(BUCKETS) {
            if secs <= bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.sum += other.sum;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (count, bound) in self.counts.iter().zip(BUCKETS) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// Where an answer came from: a route's index, or none (decode errors, 4001, 4041).
pub type RouteLabel = Option<usize>;

/// One shard's counters.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    status: AHashMap<(RouteLabel, u16), u64>,
    latency: AHashMap<RouteLabel, Histogram>,
    upstream: AHashMap<usize, Histogram>,
    pub_total: AHashMap<Box<str>, u64>,
    received_push_total: u64,
}

impl Metrics {
    /// An answer with `status` went out `elapsed` after its request came in.
    pub fn answered(&mut self, route: RouteLabel, status: u16, elapsed: Duration) {
        *self.status.entry((route, status)).or_default() += 1;
        self.latency.entry(route).or_default().observe(elapsed.as_secs_f64());
    }

    pub fn upstream_latency(&mut self, route: usize, elapsed: Duration) {
        self.upstream.entry(route).or_default().observe(elapsed.as_secs_f64());
    }

    /// A push to `topic` was published.
    pub fn published(&mut self, topic: &str) {
        self.received_push_total += 1;
        if let Some(n) = self.pub_total.get_mut(topic) {
            *n += 1;
        } else if self.pub_total.len() < MAX_PUB_TOPICS {
            self.pub_total.insert(topic.into(), 1);
        } else {
            *self.pub_total.entry("_other".into()).or_default() += 1;
        }
    }

    fn merge(&mut self, other: &Metrics) {
        for (k, v) in &other.status {
            *self.status.entry(*k).or_default() += v;
        }
        for (k, h) in &other.latency {
            self.latency.entry(*k).or_default().merge(h);
        }
        for (k, h) in &other.upstream {
            self.upstream.entry(*k).or_default().merge(h);
        }
        for (k, v) in &other.pub_total {
            *self.pub_total.entry(k.clone()).or_default() += v;
        }
        self.received_push_total += other.received_push_total;
    }
}

/// What one shard reports on a scrape.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub shard: usize,
    pub metrics: Metrics,
    pub connections: u64,
    /// Topics of the gateway with a subscriber on this shard.
    pub topics: u64,
    /// Frames waiting in the gateway connections' outbound queues (bytes).
    pub queued_bytes: u64,
    /// Requests accepted and not yet answered.
    pub requests_waiting: u64,
}

/// A per-shard figure of a snapshot.
type Gauge = fn(&Snapshot) -> u64;

/// Renders every shard's snapshot; `route` is the gateway path, `subroute(i)` a route's uri.
pub fn render(snapshots: &[Snapshot], route: &str, subroute: impl Fn(usize) -> String) -> String {
    let mut out = String::new();
    let mut total = Metrics::default();
    snapshots.iter().for_each(|s| total.merge(&s.metrics));
    let worker_gauges: [(&str, &str, Gauge); 4] = [
        ("ws_current_connections", "Number of Websocket connections", |s| s.connections),
        ("ws_topic_count", "Count of topics", |s| s.topics),
        ("ws_msg_queue_size", "Bytes queued for the connections", |s| s.queued_bytes),
        ("ws_requests_waiting", "Requests waiting for their answer", |s| s.requests_waiting),
    ];
    for (name, help, value) in worker_gauges {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in snapshots {
            let _ = writeln!(out, "{name}{{worker=\"shard-{}\"}} {}", s.shard, value(s));
        }
    }
    let name = "ws_received_push_total";
    let _ = writeln!(out, "# HELP {name} Pushes published\n# TYPE {name} counter");
    let _ = writeln!(out, "{name} {}", total.received_push_total);
    let _ = writeln!(
        out,
        "# HELP ws_pub_total Pushes published per topic\n# TYPE ws_pub_total counter"
    );
    let mut topics: Vec<_> = total.pub_total.iter().collect();
    topics.sort();
    for (topic, n) in topics {
        let _ = writeln!(out, "ws_pub_total{{topic=\"{}\"}} {n}", escape(topic));
    }
    let label = |r: RouteLabel| {
        let sub = r.map(&subroute).unwrap_or_default();
        format!("route=\"{}\",subroute=\"{}\"", escape(route), escape(&sub))
    };
    let _ =
        writeln!(out, "# HELP ws_status Status of Websocket requests\n# TYPE ws_status counter");
    let mut status: Vec<_> = total.status.iter().collect();
    status.sort();
    for ((r, code), n) in status {
        let _ = writeln!(out, "ws_status{{{},status=\"{code}\"}} {n}", label(*r));
    }
    let histograms = [
        (
            "ws_latency",
            "Latency of Websocket requests",
            total.latency.into_iter().collect::<Vec<_>>(),
        ),
        (
            "ws_upstream_latency",
            "Latency of Websocket upstream requests",
            total.upstream.into_iter().map(|(r, h)| (Some(r), h)).collect(),
        ),
    ];
    for (name, help, mut rows) in histograms {
        let _ = writeln!(out, "# HELP {name} {help} (seconds)\n# TYPE {name} histogram");
        rows.sort_by_key(|(r, _)| *r);
        for (r, h) in rows {
            h.render(&mut out, name, &label(r));
        }
    }
    out
}

/// A label value as Prometheus text needs it.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_merge_into_one_exposition() {
        let mut a = Metrics::default();
        a.answered(Some(0), 200, Duration::from_millis(3));
        a.answered(None, 404, Duration::from_millis(1));
        a.upstream_latency(0, Duration::from_millis(2));
        a.published("hq_1");
        let mut b = Metrics::default();
        b.answered(Some(0), 200, Duration::from_millis(20));
        b.published("hq_1");
        let snapshots = [
            Snapshot { shard: 0, metrics: a, connections: 2, topics: 3, ..Snapshot::default() },
            Snapshot { shard: 1, metrics: b, connections: 1, ..Snapshot::default() },
        ];
        let text = render(&snapshots, "/msg-pub", |i| format!("/route{i}"));
        for line in [
            "ws_current_connections{worker=\"shard-0\"} 2\n",
            "ws_current_connections{worker=\"shard-1\"} 1\n",
            "ws_topic_count{worker=\"shard-0\"} 3\n",
            "ws_pub_total{topic=\"hq_1\"} 2\n",
            "ws_received_push_total 2\n",
            "ws_status{route=\"/msg-pub\",subroute=\"/route0\",status=\"200\"} 2\n",
            "ws_status{route=\"/msg-pub\",subroute=\"\",status=\"404\"} 1\n",
            "ws_latency_count{route=\"/msg-pub\",subroute=\"/route0\"} 2\n",
            "ws_latency_bucket{route=\"/msg-pub\",subroute=\"/route0\",le=\"0.005\"} 1\n",
            "ws_upstream_latency_count{route=\"/msg-pub\",subroute=\"/route0\"} 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }

    #[test]
    fn topic_labels_are_bounded_and_escaped() {
        let mut m = Metrics::default();
        for i in 0..MAX_PUB_TOPICS + 5 {
            m.published(&format!("t{i}"));
        }
        m.published("q\"uote");
        assert_eq!(m.pub_total.len(), MAX_PUB_TOPICS + 1);
        assert_eq!(m.pub_total.get("_other"), Some(&6));
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
