//! Hand-written SVG latency plot: a percentile curve (log-log) above a log-binned histogram.

use hdrhistogram::Histogram;
use std::fmt::Write;

const W: f64 = 800.0;
const PANEL_H: f64 = 300.0;
const ML: f64 = 80.0; // left margin
const MR: f64 = 50.0;
const MT: f64 = 50.0;
const GAP: f64 = 80.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn fmt_us(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{}s", us / 1_000_000.0)
    } else if us >= 1_000.0 {
        format!("{}ms", us / 1_000.0)
    } else {
        format!("{us}us")
    }
}

/// Decade bounds (as log10) covering `lo..=hi` (µs).
fn decades(lo: u64, hi: u64) -> (f64, f64) {
    let a = (lo.max(1) as f64).log10().floor();
    let b = (hi.max(1) as f64).log10().ceil();
    (a, if b <= a { a + 1.0 } else { b })
}

/// Render the distribution of `h` (microseconds) as an SVG document.
pub fn render_svg(h: &Histogram<u64>, title: &str) -> String {
    let total_h = MT + PANEL_H * 2.0 + GAP + 60.0;
    let pw = W - ML - MR;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{total_h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    if h.is_empty() {
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">no samples</text></svg>"#,
            W / 2.0,
            MT + 40.0
        );
        return s;
    }
    let (ya, yb) = decades(h.min(), h.max());
    // Panel 1: percentile curve. x = log10(1/(1-q)), up to the resolution the sample count allows.
    let xmax = (h.len() as f64).log10().ceil().clamp(1.0, 6.0);
    let top = MT;
    let px = |x: f64| ML + x / xmax * pw;
    let py = |us: f64| top + PANEL_H - ((us.max(1.0).log10() - ya) / (yb - ya)) * PANEL_H;
    axes(&mut s, top, "percentile", "latency (log)");
    for d in 0..=xmax as i32 {
        let x = px(d as f64);
        let label = match d {
            0 => "0%".to_string(),
            _ => format!("{}%", 100.0 - 100.0 / 10f64.powi(d)),
        };
        grid_x(&mut s, x, top, &label);
    }
    for d in ya as i32..=yb as i32 {
        grid_y(&mut s, py(10f64.powi(d)), &fmt_us(10f64.powi(d)));
    }
    let mut pts = String::new();
    let steps = 400;
    for i in 0..=steps {
        let x = xmax * i as f64 / steps as f64;
        let q = 1.0 - 10f64.powf(-x);
        let v = h.value_at_quantile(q) as f64;
        let _ = write!(pts, "{:.1},{:.1} ", px(x), py(v));
    }
    let _ = writeln!(
        s,
        r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{pts}"/>"##
    );
    for (q, name) in [(0.5f64, "p50"), (0.99, "p99"), (0.999, "p99.9")] {
        let x = (1.0 / (1.0 - q)).log10();
        if x <= xmax {
            let v = h.value_at_quantile(q);
            let _ = writeln!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#d62728"/><text x="{:.1}" y="{:.1}" fill="#d62728">{name} {}</text>"##,
                px(x),
                py(v as f64),
                px(x) + 5.0,
                py(v as f64) - 6.0,
                fmt_us(v as f64)
            );
        }
    }
    // Panel 2: histogram, 10 log-spaced bins per decade, bar height = share of samples.
    let top2 = MT + PANEL_H + GAP;
    let nbins = ((yb - ya) * 10.0) as usize;
    let mut bins = vec![0u64; nbins.max(1)];
    for v in h.iter_recorded() {
        let lv = (v.value_iterated_to().max(1) as f64).log10();
        let b = (((lv - ya) * 10.0) as usize).min(bins.len() - 1);
        bins[b] += v.count_at_value();
    }
    let peak = bins.iter().copied().max().unwrap_or(1).max(1) as f64 / h.len() as f64;
    axes(&mut s, top2, "latency (log)", "share of deliveries");
    let bx = |lv: f64| ML + (lv - ya) / (yb - ya) * pw;
    for d in ya as i32..=yb as i32 {
        grid_x(&mut s, bx(d as f64), top2, &fmt_us(10f64.powi(d)));
    }
    for i in 0..=4 {
        let f = peak * i as f64 / 4.0;
        grid_y(&mut s, top2 + PANEL_H - PANEL_H * i as f64 / 4.0, &format!("{:.1}%", f * 100.0));
    }
    for (i, &c) in bins.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let share = c as f64 / h.len() as f64;
        let bh = share / peak * PANEL_H;
        let x0 = bx(ya + i as f64 / 10.0);
        let x1 = bx(ya + (i + 1) as f64 / 10.0);
        let _ = writeln!(
            s,
            r##"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#2ca02c" fill-opacity="0.8"><title>{}-{}: {c}</title></rect>"##,
            x0,
            top2 + PANEL_H - bh,
            (x1 - x0 - 1.0).max(1.0),
            bh,
            fmt_us(10f64.powf(ya + i as f64 / 10.0).round()),
            fmt_us(10f64.powf(ya + (i + 1) as f64 / 10.0).round()),
        );
    }
    s.push_str("</svg>\n");
    s
}

fn axes(s: &mut String, top: f64, xlabel: &str, ylabel: &str) {
    let _ = writeln!(
        s,
        r##"<rect x="{ML}" y="{top}" width="{}" height="{PANEL_H}" fill="none" stroke="#333"/>
<text x="{}" y="{}" text-anchor="middle">{xlabel}</text>
<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{ylabel}</text>"##,
        W - ML - MR,
        ML + (W - ML - MR) / 2.0,
        top + PANEL_H + 36.0,
        top + PANEL_H / 2.0,
        top + PANEL_H / 2.0
    );
}

fn grid_x(s: &mut String, x: f64, top: f64, label: &str) {
    let _ = writeln!(
        s,
        r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"##,
        top + PANEL_H,
        top + PANEL_H + 16.0
    );
}

fn grid_y(s: &mut String, y: f64, label: &str) {
    let _ = writeln!(
        s,
        r##"<line x1="{ML}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{label}</text>"##,
        W - MR,
        ML - 6.0,
        y + 4.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{new_histogram, record};

    #[test]
    fn renders_curve_and_bars() {
        let mut h = new_histogram();
        for i in 1..=10_000u64 {
            record(&mut h, 100 + i % 900 + if i % 1000 == 0 { 50_000 } else { 0 });
        }
        let svg = render_svg(&h, "test <run>");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert!(svg.contains("<polyline") && svg.contains("<rect x="));
        assert!(svg.contains("test &lt;run&gt;"));
        assert!(svg.contains("p99.9"));
    }

    #[test]
    fn empty_histogram_says_so() {
        assert!(render_svg(&new_histogram(), "t").contains("no samples"));
    }
}
