//! Built-in aggregations: what each keeps per window, how two partial results merge (for
//! session windows that join), and the value each gives when its window fires.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config as SketchConfig, DDSketch};

use super::value::Scalar;

/// Relative error of `percentile` results: a result `v` for a true value `x` has
/// `|v - x| <= PERCENTILE_RELATIVE_ERROR * |x|`.
pub const PERCENTILE_RELATIVE_ERROR: f64 = 0.01;
/// HyperLogLog++ precision of `distinct_count`: 2^14 registers, a standard error of about
/// 0.8 %; below a few thousand distinct values the sparse form is close to exact.
const DISTINCT_PRECISION: u8 = 14;

/// Hashes distinct values the same way in every build and on every platform (SipHash-1-3
/// with fixed keys over bytes written little-endian), so a sketch restored from a
/// checkpoint goes on counting the same values as the same.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct StableHasher;

/// The hasher [`StableHasher`] builds.
pub struct StableHash(siphasher::sip::SipHasher13);

impl Hasher for StableHash {
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    fn write_u64(&mut self, n: u64) {
        self.0.write(&n.to_le_bytes());
    }
}

impl BuildHasher for StableHasher {
    type Hasher = StableHash;

    fn build_hasher(&self) -> StableHash {
        StableHash(siphasher::sip::SipHasher13::new_with_keys(
            0x5765_6972_2d68_6c6c,
            0x6469_7374_696e_6374,
        ))
    }
}

/// The value's identity for distinct counting: a kind tag and its bytes, hashed with
/// [`StableHasher`] (std's `Hash` of a value may change between Rust releases).
pub fn stable_hash(value: &Scalar) -> u64 {
    let mut h = StableHasher.build_hasher();
    match value {
        Scalar::Nil => h.write(&[0]),
        Scalar::Bool(b) => h.write(&[1, u8::from(*b)]),
        Scalar::Int(i) => {
            h.write(&[2]);
            h.write(&i.to_le_bytes());
        }
        Scalar::Float(f) => {
            h.write(&[3]);
            h.write(&f.to_bits().to_le_bytes());
        }
        Scalar::Str(s) => {
            h.write(&[4]);
            h.write(s.as_bytes());
        }
        Scalar::Raw(r) => {
            h.write(&[5]);
            h.write(r);
        }
    }
    h.finish()
}

/// What an aggregation computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggKind {
    /// Events (or, with a field, events where it is present and not nil).
    Count,
    /// Sum of a numeric field; an integer while every value is one.
    Sum,
    /// Mean of a numeric field.
    Avg,
    /// Smallest value of a numeric field.
    Min,
    /// Largest value of a numeric field.
    Max,
    /// The field's value in the event with the earliest event time (first arrived on ties).
    First,
    /// The field's value in the event with the latest event time (last arrived on ties).
    Last,
    /// Sample standard deviation of a numeric field (nil below two values).
    Stddev,
    /// Sample variance of a numeric field (nil below two values).
    Variance,
    /// The quantile `q` (0 to 1) of a numeric field, within [`PERCENTILE_RELATIVE_ERROR`].
    Percentile(f64),
    /// Distinct values of the field (HyperLogLog++).
    DistinctCount,
    /// The `k` most frequent values, most frequent first (exact counts).
    TopK(usize),
    /// An `aggregator` plugin: the stage's custom aggregation number `n`, whose
    /// accumulators are opaque bytes folded by the plugin.
    Custom(u16),
}

/// One aggregation of a window stage: its output name, what it computes and over which
/// field.
#[derive(Debug, Clone, PartialEq)]
pub struct AggSpec {
    /// The output field.
    pub name: String,
    /// What it computes.
    pub kind: AggKind,
    /// The payload field (dotted path) it reads; `None` only for `count`.
    pub field: Option<String>,
}

/// The running state of one aggregation in one window.
#[derive(Clone, Serialize, Deserialize)]
pub enum Accumulator {
    /// Count.
    Count(u64),
    /// Sum: integer part, float part, and whether a float was seen.
    Sum { int: i128, float: f64, floats: bool },
    /// Avg.
    Avg { sum: f64, n: u64 },
    /// Min or Max (the kind decides).
    Extreme(Option<f64>),
    /// First or Last: (event time, arrival order, value).
    Pick(Option<(i64, u64, Scalar)>),
    /// Variance and Stddev (Welford; merged with Chan's formula).
    Moments { n: u64, mean: f64, m2: f64 },
    /// Percentile.
    Sketch(Box<DDSketch>),
    /// Distinct count.
    Distinct(Box<HyperLogLogPlus<u64, StableHasher>>),
    /// Top-k: count per value.
    Frequencies(HashMap<Scalar, u64>),
    /// A plugin's accumulator; empty until the plugin first folds into it.
    Custom(Vec<u8>),
}

fn sketch() -> Box<DDSketch> {
    Box::new(DDSketch::new(SketchConfig::new(
        PERCENTILE_RELATIVE_ERROR,
        4096,
        1.0e-9,
    )))
}

impl Accumulator {
    /// An empty accumulator for `kind`.
    pub fn new(kind: AggKind) -> Self {
        match kind {
            AggKind::Count => Self::Count(0),
            AggKind::Sum => Self::Sum {
                int: 0,
                float: 0.0,
                floats: false,
            },
            AggKind::Avg => Self::Avg { sum: 0.0, n: 0 },
            AggKind::Min | AggKind::Max => Self::Extreme(None),
            AggKind::First | AggKind::Last => Self::Pick(None),
            AggKind::Stddev | AggKind::Variance => Self::Moments {
                n: 0,
                mean: 0.0,
                m2: 0.0,
            },
            AggKind::Percentile(_) => Self::Sketch(sketch()),
            AggKind::DistinctCount => Self::Distinct(Box::new(
                HyperLogLogPlus::new(DISTINCT_PRECISION, StableHasher)
                    .expect("precision 14 is valid"),
            )),
            AggKind::TopK(_) => Self::Frequencies(HashMap::new()),
            AggKind::Custom(_) => Self::Custom(Vec::new()),
        }
    }

    /// Folds in one event's value of the field (`Nil` when it has none), its event time
    /// and its arrival order.
    pub fn add(&mut self, kind: AggKind, value: &Scalar, time: i64, order: u64) {
        if *value == Scalar::Nil {
            return;
        }
        match self {
            Self::Count(n) => *n += 1,
            Self::Sum { int, float, floats } => match value {
                Scalar::Int(i) => *int += i128::from(*i),
                Scalar::Float(f) => {
                    *float += f;
                    *floats = true;
                }
                _ => {}
            },
            Self::Avg { sum, n } => {
                if let Some(v) = value.as_f64() {
                    *sum += v;
                    *n += 1;
                }
            }
            Self::Extreme(current) => {
                // NaN compares false with everything: kept, it would stick or not by order.
                if let Some(v) = value.as_f64().filter(|v| !v.is_nan()) {
                    let keep_new = match current {
                        None => true,
                        Some(c) if kind == AggKind::Min => v < *c,
                        Some(c) => v > *c,
                    };
                    if keep_new {
                        *current = Some(v);
                    }
                }
            }
            Self::Pick(current) => {
                let candidate = (time, order, value.clone());
                if better_pick(kind, current.as_ref(), &candidate) {
                    *current = Some(candidate);
                }
            }
            Self::Moments { n, mean, m2 } => {
                if let Some(v) = value.as_f64() {
                    *n += 1;
                    let delta = v - *mean;
                    *mean += delta / *n as f64;
                    *m2 += delta * (v - *mean);
                }
            }
            Self::Sketch(sketch) => {
                if let Some(v) = value.as_f64().filter(|v| v.is_finite()) {
                    sketch.add(v);
                }
            }
            Self::Distinct(hll) => hll.insert(&stable_hash(value)),
            // Folded by its plugin, a batch at a time, by the engine.
            Self::Custom(_) => {}
            Self::Frequencies(counts) => *counts.entry(value.clone()).or_default() += 1,
        }
    }

    /// Takes in `other`, the same aggregation over other events of the same key.
    pub fn merge(&mut self, kind: AggKind, other: &Self) {
        match (self, other) {
            (Self::Count(a), Self::Count(b)) => *a += b,
            (
                Self::Sum { int, float, floats },
                Self::Sum {
                    int: i2,
                    float: f2,
                    floats: s2,
                },
            ) => {
                *int += i2;
                *float += f2;
                *floats |= s2;
            }
            (Self::Avg { sum, n }, Self::Avg { sum: s2, n: n2 }) => {
                *sum += s2;
                *n += n2;
            }
            (Self::Extreme(a), Self::Extreme(Some(b))) => {
                let take = match a {
                    None => true,
                    Some(a) if kind == AggKind::Min => b < a,
                    Some(a) => b > a,
                };
                if take {
                    *a = Some(*b);
                }
            }
            (Self::Pick(a), Self::Pick(Some(b))) if better_pick(kind, a.as_ref(), b) => {
                *a = Some(b.clone());
            }
            (
                Self::Moments { n, mean, m2 },
                Self::Moments {
                    n: n2,
                    mean: mean2,
                    m2: m22,
                },
            ) if *n2 > 0 => {
                let total = *n + n2;
                let delta = mean2 - *mean;
                *m2 += m22 + delta * delta * (*n as f64) * (*n2 as f64) / total as f64;
                *mean += delta * *n2 as f64 / total as f64;
                *n = total;
            }
            (Self::Sketch(a), Self::Sketch(b)) => {
                // Same configuration on both sides, so merging cannot fail.
                let _ = a.merge(b);
            }
            (Self::Distinct(a), Self::Distinct(b)) => {
                let _ = a.merge(b.as_ref());
            }
            (Self::Frequencies(a), Self::Frequencies(b)) => {
                for (value, n) in b {
                    *a.entry(value.clone()).or_default() += n;
                }
            }
            _ => {}
        }
    }

    /// The aggregation's result now.
    pub fn result(&mut self, kind: AggKind) -> rmpv::Value {
        match self {
            Self::Count(n) => rmpv::Value::from(*n),
            Self::Sum { int, float, floats } => {
                if *floats {
                    rmpv::Value::F64(*int as f64 + *float)
                } else if let Ok(i) = i64::try_from(*int) {
                    rmpv::Value::from(i)
                } else {
                    rmpv::Value::F64(*int as f64)
                }
            }
            Self::Avg { sum, n } => match n {
                0 => rmpv::Value::Nil,
                n => rmpv::Value::F64(*sum / *n as f64),
            },
            Self::Extreme(v) => v.map_or(rmpv::Value::Nil, rmpv::Value::F64),
            Self::Pick(p) => p.as_ref().map_or(rmpv::Value::Nil, |(_, _, v)| v.to_rmpv()),
            Self::Moments { n, m2, .. } => {
                if *n < 2 {
                    return rmpv::Value::Nil;
                }
                let variance = (*m2 / (*n - 1) as f64).max(0.0);
                rmpv::Value::F64(if kind == AggKind::Stddev {
                    variance.sqrt()
                } else {
                    variance
                })
            }
            Self::Sketch(sketch) => {
                let AggKind::Percentile(q) = kind else {
                    return rmpv::Value::Nil;
                };
                // The value at rank `floor(q * (n - 1))`, within the relative error.
                sketch
                    .quantile(q.clamp(0.0, 1.0))
                    .ok()
                    .flatten()
                    .map_or(rmpv::Value::Nil, rmpv::Value::F64)
            }
            Self::Distinct(hll) => rmpv::Value::from(hll.count().round() as u64),
            Self::Frequencies(counts) => {
                let AggKind::TopK(k) = kind else {
                    return rmpv::Value::Nil;
                };
                top_k(counts, k)
            }
            // Finished by its plugin, by the engine.
            Self::Custom(_) => rmpv::Value::Nil,
        }
    }
}

/// Whether `candidate` replaces `current` as the first (or last) value.
fn better_pick(
    kind: AggKind,
    current: Option<&(i64, u64, Scalar)>,
    candidate: &(i64, u64, Scalar),
) -> bool {
    let Some(current) = current else {
        return true;
    };
    let (new, old) = ((candidate.0, candidate.1), (current.0, current.1));
    if kind == AggKind::First {
        new < old
    } else {
        new > old
    }
}

/// The `k` most frequent values as an array of `[value, count]`, most frequent first, ties
/// by value.
fn top_k(counts: &HashMap<Scalar, u64>, k: usize) -> rmpv::Value {
    let mut ranked: Vec<(&Scalar, &u64)> = counts.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    rmpv::Value::Array(
        ranked
            .into_iter()
            .take(k)
            .map(|(value, n)| rmpv::Value::Array(vec![value.to_rmpv(), rmpv::Value::from(*n)]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_hashes_are_fixed_across_builds() {
        // A changed value here means checkpointed sketches would count old values again.
        assert_eq!(stable_hash(&Scalar::Int(42)), 2_463_762_626_396_057_482);
        assert_eq!(
            stable_hash(&Scalar::Str("user-7".into())),
            15_883_440_549_726_164_154
        );
        assert_ne!(
            stable_hash(&Scalar::Int(1)),
            stable_hash(&Scalar::Float(1.0))
        );
    }

    #[test]
    fn nan_is_ignored_by_min_and_max_in_any_order() {
        for kind in [AggKind::Min, AggKind::Max] {
            for values in [[f64::NAN, 5.0], [5.0, f64::NAN]] {
                let mut acc = Accumulator::new(kind);
                for (i, v) in values.iter().enumerate() {
                    acc.add(kind, &Scalar::Float(*v), 0, i as u64);
                }
                assert_eq!(
                    acc.result(kind),
                    rmpv::Value::F64(5.0),
                    "{kind:?} {values:?}"
                );
            }
        }
    }
}
