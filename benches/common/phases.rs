//! The server's per-phase latency histograms (`eidgate_phase_duration_seconds`, issue 22)
//! read from its `/metrics` text before and after a bench phase, so that the bench can
//! say where an exchange's or a login's time and tail go.

use std::collections::BTreeMap;

/// One phase's histogram: cumulative bucket counts (upper bound, count), sum and count.
#[derive(Clone, Default)]
struct Series {
    buckets: Vec<(f64, u64)>,
    sum: f64,
    count: u64,
}

/// Every phase's histogram at one moment.
#[derive(Default)]
pub struct Snapshot(BTreeMap<String, Series>);

impl Snapshot {
    /// Reads the phase series out of an exposition text.
    pub fn parse(text: &str) -> Self {
        let mut phases: BTreeMap<String, Series> = BTreeMap::new();
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("eidgate_phase_duration_seconds_") else {
                continue;
            };
            let Some((series, value)) = rest.rsplit_once(' ') else {
                continue;
            };
            let label = |name: &str| {
                series
                    .split_once(&format!("{name}=\""))
                    .and_then(|(_, v)| v.split_once('"'))
                    .map(|(v, _)| v.to_owned())
            };
            let Some(phase) = label("phase") else { continue };
            let entry = phases.entry(phase).or_default();
            if series.starts_with("bucket") {
                let le = label("le").map_or(f64::INFINITY, |v| v.parse().unwrap_or(f64::INFINITY));
                entry.buckets.push((le, value.parse().unwrap_or(0)));
            } else if series.starts_with("sum") {
                entry.sum = value.parse().unwrap_or(0.0);
            } else if series.starts_with("count") {
                entry.count = value.parse().unwrap_or(0);
            }
        }
        Self(phases)
    }

    /// Prints, for every phase observed between `before` and `self`, its observations per
    /// `unit` (an exchange, a login), mean, p50 and p99 (bucket upper bounds: a factor of
    /// two apart) and its share of the summed phase time.
    pub fn print_since(&self, before: &Snapshot, units: u64, unit: &str) {
        let mut rows = Vec::new();
        for (phase, now) in &self.0 {
            let old = before.0.get(phase).cloned().unwrap_or_default();
            let n = now.count - old.count;
            if n == 0 {
                continue;
            }
            let diff: Vec<(f64, u64)> = now
                .buckets
                .iter()
                .map(|(le, c)| {
                    let was = old.buckets.iter().find(|(l, _)| l == le).map_or(0, |(_, c)| *c);
                    (*le, c - was)
                })
                .collect();
            let quantile = |q: f64| {
                let rank = (q * n as f64).ceil() as u64;
                diff.iter()
                    .find(|(_, c)| *c >= rank)
                    .map_or(f64::INFINITY, |(le, _)| *le)
            };
            rows.push((phase.clone(), n, now.sum - old.sum, quantile(0.5), quantile(0.99)));
        }
        let total: f64 = rows.iter().filter(|r| r.0 != "token_sign").map(|r| r.2).sum();
        println!("   phase            per {unit:<8}  mean us   p50 <= us   p99 <= us   share");
        for (phase, n, sum, p50, p99) in rows {
            let share = if phase == "token_sign" {
                "(hsm_*)".to_owned()
            } else {
                format!("{:.0} %", 100.0 * sum / total)
            };
            println!(
                "   {phase:<16} {:>10.2} {:>9.1} {:>11.0} {:>11.0}   {share}",
                n as f64 / units.max(1) as f64,
                sum / n as f64 * 1e6,
                p50 * 1e6,
                p99 * 1e6
            );
        }
    }
}
