//! Latency histogram with log-linear buckets: exact below 64 ns, then 32 buckets per power of
//! two (about 3 % relative error), small enough to keep one per connection and merge at the end.

use serde::{Deserialize, Serialize};

const LINEAR: u64 = 64;
const SUB_BUCKETS: u64 = 32;
/// Highest power of two tracked (2^40 ns is about 18 minutes); larger values are clamped.
const MAX_EXPONENT: u32 = 40;
const BUCKETS: usize = (LINEAR + (MAX_EXPONENT as u64 - 5) * SUB_BUCKETS) as usize;

/// Counts of nanosecond durations.
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

/// A histogram as it travels between processes: only the buckets that are not empty.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SparseHistogram {
    /// (bucket index, count) pairs.
    pub buckets: Vec<(u32, u64)>,
    /// Largest value recorded, exact.
    pub max: u64,
}

fn index(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let exponent = (63 - value.leading_zeros()).min(MAX_EXPONENT);
    let value = value.min((1 << (MAX_EXPONENT + 1)) - 1);
    // The top six bits of the value: 32..=63.
    let mantissa = value >> (exponent - 5);
    (LINEAR + u64::from(exponent - 6) * SUB_BUCKETS + (mantissa - SUB_BUCKETS)) as usize
}

/// The middle of a bucket.
fn value_at(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let exponent = (index - LINEAR) / SUB_BUCKETS + 6;
    let mantissa = (index - LINEAR) % SUB_BUCKETS + SUB_BUCKETS;
    let low = mantissa << (exponent - 5);
    low + (1 << (exponent - 5)) / 2
}

impl Histogram {
    /// Records one duration in nanoseconds.
    pub fn record(&mut self, nanos: u64) {
        self.counts[index(nanos)] += 1;
        self.total += 1;
        self.max = self.max.max(nanos);
    }

    /// Number of values recorded.
    pub fn count(&self) -> u64 {
        self.total
    }

    /// Adds another histogram's counts to this one.
    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The value below which `quantile` (0..=1) of the values fall; 0 when empty.
    pub fn quantile(&self, quantile: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((quantile * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return value_at(index).min(self.max);
            }
        }
        self.max
    }

    /// Largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The non-empty buckets, for sending to another process.
    pub fn to_sparse(&self) -> SparseHistogram {
        SparseHistogram {
            buckets: self
                .counts
                .iter()
                .enumerate()
                .filter(|(_, count)| **count > 0)
                .map(|(index, count)| (index as u32, *count))
                .collect(),
            max: self.max,
        }
    }

    /// Adds counts received from another process.
    pub fn merge_sparse(&mut self, sparse: &SparseHistogram) {
        for &(index, count) in &sparse.buckets {
            if let Some(slot) = self.counts.get_mut(index as usize) {
                *slot += count;
                self.total += count;
            }
        }
        self.max = self.max.max(sparse.max);
    }

    /// p50, p90, p99 and max in milliseconds, as JSON.
    pub fn summary_ms(&self) -> serde_json::Value {
        serde_json::json!({
            "p50": ms(self.quantile(0.50)),
            "p90": ms(self.quantile(0.90)),
            "p99": ms(self.quantile(0.99)),
            "max": ms(self.max),
        })
    }
}

impl Histogram {
    /// "p50 / p90 / p99 / max ms" for the tables.
    pub fn spread_ms(&self) -> String {
        format!(
            "{:.2} / {:.2} / {:.2} / {:.2} ms",
            ms(self.quantile(0.5)),
            ms(self.quantile(0.9)),
            ms(self.quantile(0.99)),
            ms(self.max())
        )
    }
}

/// Nanoseconds as milliseconds rounded to the microsecond.
pub fn ms(nanos: u64) -> f64 {
    (nanos as f64 / 1_000.0).round() / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_values_within_three_percent() {
        for value in [0, 1, 63, 64, 65, 100, 1_000, 123_456, 9_999_999, 1 << 39] {
            let middle = value_at(index(value));
            let error = (middle as f64 - value as f64).abs() / (value.max(1) as f64);
            assert!(error <= 0.032, "{value} -> {middle}");
        }
    }

    #[test]
    fn quantiles_and_merging() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for value in 1..=50 {
            a.record(value * 1_000);
        }
        for value in 51..=100 {
            b.record(value * 1_000);
        }
        let mut merged = Histogram::default();
        merged.merge(&a);
        merged.merge_sparse(&b.to_sparse());
        assert_eq!(merged.count(), 100);
        assert_eq!(merged.max(), 100_000);
        let p50 = merged.quantile(0.5) as f64;
        assert!((p50 - 50_000.0).abs() / 50_000.0 < 0.04, "{p50}");
        assert_eq!(Histogram::default().quantile(0.99), 0);
    }
}
