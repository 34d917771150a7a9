//! The hook shard's counters as the REST shards see them: the hook shard writes a snapshot
//! once a second and `/metrics` reads it. A mutex is fine here: it is touched once a second and
//! once per scrape, never per message.

use super::endpoint::EndpointStats;
use std::{fmt::Write, sync::Mutex};

/// A metric: its name, its help text, and how to read it from an endpoint's counters.
type Row = (&'static str, &'static str, fn(&EndpointStats) -> u64);

/// One endpoint's counters with what it is.
#[derive(Debug, Clone)]
pub struct EndpointReport {
    /// `webhook` or `event_hook`.
    pub kind: &'static str,
    pub url: String,
    pub stats: EndpointStats,
}

/// The latest snapshot of every endpoint.
#[derive(Debug, Default)]
pub struct Board(Mutex<Vec<EndpointReport>>);

impl Board {
    pub fn publish(&self, reports: Vec<EndpointReport>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = reports;
        }
    }

    /// Prometheus lines for every endpoint.
    pub fn render(&self) -> String {
        let Ok(reports) = self.0.lock() else { return String::new() };
        let mut out = String::new();
        let rows: [Row; 7] = [
            ("hook_sent_total", "events delivered with a 2xx answer", |s| s.sent),
            ("hook_requests_total", "HTTP requests, retries included", |s| s.requests),
            ("hook_retried_total", "retries", |s| s.retried),
            ("hook_failed_total", "events given up after retrying", |s| s.failed),
            ("hook_dropped_total", "events dropped on a full endpoint queue", |s| s.dropped),
            ("hook_queued", "events waiting", |s| s.queued),
            ("hook_latency_p99_microseconds", "p99 of successful requests (bucket bound)", |s| {
                s.latency.quantile_us(0.99)
            }),
        ];
        for (name, help, get) in rows {
            let _ = writeln!(out, "# HELP pushgate_{name} {help}");
            for r in reports.iter() {
                let _ = writeln!(
                    out,
                    "pushgate_{name}{{kind=\"{}\",endpoint=\"{}\"}} {}",
                    r.kind,
                    r.url.replace('"', "%22"),
                    get(&r.stats)
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_each_endpoint() {
        let board = Board::default();
        let stats = EndpointStats { sent: 3, dropped: 1, ..EndpointStats::default() };
        board.publish(vec![EndpointReport { kind: "webhook", url: "http://x/h".into(), stats }]);
        let text = board.render();
        assert!(
            text.contains("pushgate_hook_sent_total{kind=\"webhook\",endpoint=\"http://x/h\"} 3\n"),
            "{text}"
        );
        assert!(text
            .contains("pushgate_hook_dropped_total{kind=\"webhook\",endpoint=\"http://x/h\"} 1\n"));
    }
}
