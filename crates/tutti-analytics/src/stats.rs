//! Proportions and their intervals for reports: a conversion rate with its 95% Wilson score interval, and the
//! difference between two rates (an arm against its control) with Newcombe's hybrid score interval, which
//! stays inside [-1, 1] and behaves with small counts and rates near 0 or 1, where the Wald interval does not.

use serde::Serialize;

/// The normal quantile of a two-sided 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// A proportion with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rate {
    pub successes: u64,
    pub trials: u64,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// `successes` of `trials`, with the Wilson score interval. No trials: rate 0 in [0, 1].
pub fn wilson(successes: u64, trials: u64) -> Rate {
    if trials == 0 {
        return Rate { successes, trials, rate: 0.0, low: 0.0, high: 1.0 };
    }
    let n = trials as f64;
    let p = (successes.min(trials)) as f64 / n;
    let z2 = Z95 * Z95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z95 / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Rate { successes, trials, rate: p, low: (centre - half).max(0.0), high: (centre + half).min(1.0) }
}

/// A difference of two rates with its 95% interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Difference {
    /// `a - b`, in absolute terms (0.05 is five percentage points).
    pub difference: f64,
    pub low: f64,
    pub high: f64,
    /// `a / b - 1` when `b` is above zero.
    pub relative: Option<f64>,
}

/// `a - b` with Newcombe's hybrid score interval (method 10 of Newcombe 1998), from each rate's Wilson interval.
pub fn difference(a: &Rate, b: &Rate) -> Difference {
    let d = a.rate - b.rate;
    let low = d - ((a.rate - a.low).powi(2) + (b.high - b.rate).powi(2)).sqrt();
    let high = d + ((a.high - a.rate).powi(2) + (b.rate - b.low).powi(2)).sqrt();
    Difference {
        difference: d,
        low: low.max(-1.0),
        high: high.min(1.0),
        relative: (b.rate > 0.0).then(|| a.rate / b.rate - 1.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-4
    }

    #[test]
    fn wilson_matches_published_values() {
        // Newcombe (1998), "Two-sided confidence intervals for the single proportion", table I: 81/263 gives
        // 0.2553 to 0.3662 by the score method; 0/10 gives 0 to 0.2775.
        let r = wilson(81, 263);
        assert!(close(r.low, 0.2553) && close(r.high, 0.3662), "{r:?}");
        let r = wilson(0, 10);
        assert!(close(r.low, 0.0) && close(r.high, 0.2775), "{r:?}");
        assert_eq!(wilson(0, 0).high, 1.0);
    }

    #[test]
    fn newcombe_difference_matches_published_values() {
        // Newcombe (1998), "Interval estimation for the difference between independent proportions", table II,
        // method 10: 56/70 - 48/80 gives 0.0524 to 0.3339; 9/10 - 3/10 gives 0.1705 to 0.8090.
        let d = difference(&wilson(56, 70), &wilson(48, 80));
        assert!(close(d.difference, 0.2) && close(d.low, 0.0524) && close(d.high, 0.3339), "{d:?}");
        let d = difference(&wilson(9, 10), &wilson(3, 10));
        assert!(close(d.low, 0.1705) && close(d.high, 0.8090), "{d:?}");
        assert!((d.relative.unwrap() - 2.0).abs() < 1e-9);
    }
}
