//! Live figures for the dashboard, read back from the metrics exposition: latency
//! percentiles per component over the last half minute (end-to-end for sinks, time per
//! batch for the others) and the consumer lag of each source.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How far back the percentiles look.
const WINDOW: Duration = Duration::from_secs(30);
/// Readings closer together than this are not kept apart.
const STEP: Duration = Duration::from_secs(1);

/// Cumulative bucket counts per component: (upper bound, count).
type Buckets = BTreeMap<String, Vec<(f64, f64)>>;

/// The figures of one moment.
#[derive(Default)]
pub(super) struct Figures {
    /// p50, p95, p99 in seconds, per component with observations in the window.
    pub latency: BTreeMap<String, [f64; 3]>,
    /// Records or messages waiting, per source that reports it.
    pub lag: BTreeMap<String, f64>,
}

/// Recent readings of the latency histograms.
#[derive(Default)]
pub(super) struct Recent {
    readings: Mutex<VecDeque<(Instant, Buckets)>>,
}

impl Recent {
    /// The figures as of `exposition` (the `/metrics` text now).
    pub fn figures(&self, exposition: &str) -> Figures {
        let parsed = parse(exposition);
        let now = Instant::now();
        let mut readings = self.readings.lock().unwrap_or_else(|p| p.into_inner());
        while readings
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
        {
            readings.pop_front();
        }
        let base = readings.front().map(|(_, b)| b.clone()).unwrap_or_default();
        if readings
            .back()
            .is_none_or(|(at, _)| now.duration_since(*at) >= STEP)
        {
            readings.push_back((now, parsed.buckets.clone()));
        }
        drop(readings);
        let mut latency = BTreeMap::new();
        for (component, buckets) in &parsed.buckets {
            // Bucket by bucket, matched by bound; a reading of other buckets (a sink's
            // histogram changes once it has end-to-end figures) is no base.
            let earlier = base.get(component).filter(|e| {
                e.len() == buckets.len() && e.iter().zip(buckets).all(|(a, b)| a.0 == b.0)
            });
            let window: Vec<(f64, f64)> = buckets
                .iter()
                .enumerate()
                .map(|(i, &(le, count))| {
                    let before = earlier.and_then(|e| e.get(i)).map_or(0.0, |b| b.1);
                    (le, (count - before).max(0.0))
                })
                .collect();
            if let Some(p) = percentiles(&window) {
                latency.insert(component.clone(), p);
            }
        }
        Figures {
            latency,
            lag: parsed.lag,
        }
    }
}

struct Parsed {
    buckets: Buckets,
    lag: BTreeMap<String, f64>,
}

/// The label `name` of a series' label text (`a="x",b="y"`).
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let rest = &labels[start..];
    Some(&rest[..rest.find('"')?])
}

fn parse(exposition: &str) -> Parsed {
    let mut batch = Buckets::new();
    let mut end_to_end = Buckets::new();
    let mut lag: BTreeMap<String, f64> = BTreeMap::new();
    for line in exposition.lines().filter(|l| !l.starts_with('#')) {
        let (Some(open), Some(close)) = (line.find('{'), line.rfind('}')) else {
            continue;
        };
        let (name, labels) = (&line[..open], &line[open + 1..close]);
        let Ok(value) = line[close + 1..].trim().parse::<f64>() else {
            continue;
        };
        let target = match name {
            "weir_batch_duration_seconds_bucket" => &mut batch,
            "weir_end_to_end_latency_seconds_bucket" => &mut end_to_end,
            "weir_kafka_consumer_lag" | "weir_jetstream_consumer_pending" => {
                // Kafka's lag is per partition, labelled by source; JetStream's by component.
                if let Some(source) = label(labels, "source").or_else(|| label(labels, "component"))
                {
                    *lag.entry(source.to_owned()).or_default() += value;
                }
                continue;
            }
            _ => continue,
        };
        let (Some(component), Some(le)) = (label(labels, "component"), label(labels, "le")) else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::INFINITY)
        };
        target
            .entry(component.to_owned())
            .or_default()
            .push((le, value));
    }
    // A sink's end-to-end latency says more than its time per batch.
    for (component, buckets) in end_to_end {
        if buckets.last().is_some_and(|b| b.1 > 0.0) {
            batch.insert(component, buckets);
        }
    }
    for buckets in batch.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Parsed {
        buckets: batch,
        lag,
    }
}

/// p50, p95 and p99 of cumulative `buckets`, interpolated within a bucket; none without
/// observations.
fn percentiles(buckets: &[(f64, f64)]) -> Option<[f64; 3]> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let at = |q: f64| {
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(le, count) in buckets {
            if count >= rank {
                if le.is_infinite() {
                    return lower.0;
                }
                let share = if count > lower.1 {
                    (rank - lower.1) / (count - lower.1)
                } else {
                    1.0
                };
                return lower.0 + (le - lower.0) * share;
            }
            lower = (le, count);
        }
        lower.0
    };
    Some([at(0.5), at(0.95), at(0.99)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_the_window_and_lag_per_source() {
        let text = |slow: u32| {
            format!(
                "# TYPE x\nweir_batch_duration_seconds_bucket{{component=\"s\",le=\"0.001\"}} 100\nweir_batch_duration_seconds_bucket{{le=\"0.01\",component=\"s\"}} {}\nweir_batch_duration_seconds_bucket{{le=\"+Inf\",component=\"s\"}} {}\nweir_kafka_consumer_lag{{source=\"k\",topic=\"t\",partition=\"0\"}} 5\nweir_kafka_consumer_lag{{source=\"k\",topic=\"t\",partition=\"1\"}} 7\nweir_jetstream_consumer_pending{{component=\"js\"}} 3\n",
                100 + slow,
                100 + slow
            )
        };
        let recent = Recent::default();
        let first = recent.figures(&text(0));
        assert_eq!(first.lag["k"], 12.0);
        assert_eq!(first.lag["js"], 3.0);
        let [p50, p95, _] = first.latency["s"];
        assert!(p50 <= 0.001 && p95 <= 0.001, "all fast: {p50} {p95}");
        // 100 slow batches since: the window holds only those.
        let later = recent.figures(&text(100));
        let [p50, _, _] = later.latency["s"];
        assert!(p50 > 0.001, "only the batches of the window count: {p50}");
    }
}
