//! The randomness and the distributions the analysis draws from.
//!
//! Everything here is seeded: the same inputs and seed give the same report, so a report can be reproduced and a
//! test can assert on it. The generator is xoshiro256++ (Blackman and Vigna), seeded through SplitMix64; normal
//! and exponential variates use Marsaglia and Tsang's ziggurat (2000; the layer index and the value come from
//! separate bits of one 64-bit draw, which avoids the correlation Leong et al. found in the original), gamma
//! variates their squeeze method, beta variates the ratio of two gammas.

/// The ziggurats' tables: 128 layers for the normal, 256 for the exponential.
struct Ziggurat {
    kn: [u32; 128],
    wn: [f64; 128],
    fn_: [f64; 128],
    ke: [u32; 256],
    we: [f64; 256],
    fe: [f64; 256],
}

/// The normal ziggurat's base strip starts at this `r`; the exponential's at `DE`.
const DN: f64 = 3.442_619_855_899;
const VN: f64 = 9.912_563_035_262_17e-3;
const DE: f64 = 7.697_117_470_131_487;
const VE: f64 = 3.949_659_822_581_572e-3;

impl Ziggurat {
    fn build() -> Ziggurat {
        let (m1, m2) = (2_147_483_648.0f64, 4_294_967_296.0f64);
        let mut z =
            Ziggurat { kn: [0; 128], wn: [0.0; 128], fn_: [0.0; 128], ke: [0; 256], we: [0.0; 256], fe: [0.0; 256] };
        let (mut dn, mut tn) = (DN, DN);
        let q = VN / (-0.5 * dn * dn).exp();
        z.kn[0] = ((dn / q) * m1) as u32;
        z.kn[1] = 0;
        z.wn[0] = q / m1;
        z.wn[127] = dn / m1;
        z.fn_[0] = 1.0;
        z.fn_[127] = (-0.5 * dn * dn).exp();
        for i in (1..=126).rev() {
            dn = (-2.0 * (VN / dn + (-0.5 * dn * dn).exp()).ln()).sqrt();
            z.kn[i + 1] = ((dn / tn) * m1) as u32;
            tn = dn;
            z.fn_[i] = (-0.5 * dn * dn).exp();
            z.wn[i] = dn / m1;
        }
        let (mut de, mut te) = (DE, DE);
        let q = VE / (-de).exp();
        z.ke[0] = ((de / q) * m2) as u32;
        z.ke[1] = 0;
        z.we[0] = q / m2;
        z.we[255] = de / m2;
        z.fe[0] = 1.0;
        z.fe[255] = (-de).exp();
        for i in (1..=254).rev() {
            de = -(VE / de + (-de).exp()).ln();
            z.ke[i + 1] = ((de / te) * m2) as u32;
            te = de;
            z.fe[i] = (-de).exp();
            z.we[i] = de / m2;
        }
        z
    }
}

fn ziggurat() -> &'static Ziggurat {
    static TABLES: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    TABLES.get_or_init(Ziggurat::build)
}

/// A small, fast, seedable generator. Not for secrets.
#[derive(Clone)]
pub struct Rng {
    s: [u64; 4],
    zig: &'static Ziggurat,
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rng").finish_non_exhaustive()
    }
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()], zig: ziggurat() }
    }

    /// An independent stream for the `n`th worker or the `n`th item, derived from this one's seed material.
    pub fn fork(&self, n: u64) -> Rng {
        Rng::new(self.s[0] ^ self.s[3].rotate_left(17) ^ n.wrapping_mul(0xd134_2543_de82_ef95))
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = (self.s[0].wrapping_add(self.s[3])).rotate_left(23).wrapping_add(self.s[0]);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in the open interval (0, 1): never 0, so its logarithm is finite.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in `0..n` (`n > 0`), by Lemire's multiply-shift (its bias is below 2^-32 for the sizes used
    /// here).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Standard normal.
    pub fn normal(&mut self) -> f64 {
        let z = self.zig;
        loop {
            let bits = self.next_u64();
            let iz = (bits & 127) as usize;
            let hz = (bits >> 32) as u32 as i32;
            let x = hz as f64 * z.wn[iz];
            if hz.unsigned_abs() < z.kn[iz] {
                return x;
            }
            if iz == 0 {
                // The tail beyond DN, by Marsaglia's method.
                loop {
                    let x = -self.uniform().ln() / DN;
                    let y = -self.uniform().ln();
                    if y + y >= x * x {
                        return if hz > 0 { DN + x } else { -DN - x };
                    }
                }
            }
            if z.fn_[iz] + self.uniform() * (z.fn_[iz - 1] - z.fn_[iz]) < (-0.5 * x * x).exp() {
                return x;
            }
        }
    }

    /// Exponential with mean 1: the weights of a Bayesian bootstrap.
    pub fn exp1(&mut self) -> f64 {
        let z = self.zig;
        loop {
            let bits = self.next_u64();
            let iz = (bits & 255) as usize;
            let jz = (bits >> 32) as u32;
            if jz < z.ke[iz] {
                return jz as f64 * z.we[iz];
            }
            if iz == 0 {
                return DE - self.uniform().ln();
            }
            let x = jz as f64 * z.we[iz];
            if z.fe[iz] + self.uniform() * (z.fe[iz - 1] - z.fe[iz]) < (-x).exp() {
                return x;
            }
        }
    }

    /// Gamma with the given shape and scale 1 (`shape > 0`).
    pub fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            // Boost: Gamma(a) = Gamma(a + 1) * U^(1/a).
            let g = self.gamma(shape + 1.0);
            return g * self.uniform().powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = 1.0 + c * x;
            if v <= 0.0 {
                continue;
            }
            let v = v * v * v;
            let u = self.uniform();
            let x2 = x * x;
            if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d * (1.0 - v + v.ln()) {
                return d * v;
            }
        }
    }

    /// Beta(a, b) (`a, b > 0`). Exact (a ratio of gammas) unless both parameters are large, where the normal with
    /// the same mean and variance is used instead: at `min(a, b) >= 100` its skewness, the only visible
    /// difference, is under 0.2 for the rates of ads and the draw costs a quarter as much.
    pub fn beta(&mut self, a: f64, b: f64) -> f64 {
        if a >= BETA_NORMAL_ABOVE && b >= BETA_NORMAL_ABOVE {
            let n = a + b;
            let mean = a / n;
            let sd = (mean * (1.0 - mean) / (n + 1.0)).sqrt();
            return (mean + sd * self.normal()).clamp(f64::MIN_POSITIVE, 1.0 - f64::EPSILON);
        }
        self.beta_exact(a, b)
    }

    /// Beta(a, b) as a ratio of gammas, whatever the parameters.
    pub fn beta_exact(&mut self, a: f64, b: f64) -> f64 {
        let x = self.gamma(a);
        let y = self.gamma(b);
        if x + y > 0.0 { x / (x + y) } else { a / (a + b) }
    }

    /// Binomial(n, p): exact by counting for small `n`, the normal approximation (rounded, clamped) when both
    /// `n p` and `n (1 - p)` are large enough for it to be good, Poisson by inversion when `n p` is small.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        let p = p.clamp(0.0, 1.0);
        if n == 0 || p == 0.0 {
            return 0;
        }
        if n <= 64 {
            return (0..n).filter(|_| self.uniform() < p).count() as u64;
        }
        let mean = n as f64 * p;
        if mean >= 30.0 && n as f64 * (1.0 - p) >= 30.0 {
            let sd = (mean * (1.0 - p)).sqrt();
            return (mean + sd * self.normal()).round().clamp(0.0, n as f64) as u64;
        }
        if p > 0.5 {
            return n - self.binomial(n, 1.0 - p);
        }
        // Poisson(mean) by inversion: mean < 30 here.
        let mut k = 0u64;
        let mut prob = (-mean).exp();
        let mut cumulative = prob;
        let u = self.uniform();
        while u > cumulative && k < n {
            k += 1;
            prob *= mean / k as f64;
            cumulative += prob;
        }
        k
    }
}

/// Where [`Rng::beta`] switches to its normal approximation.
pub(crate) const BETA_NORMAL_ABOVE: f64 = 100.0;

/// A Beta prior for a rate, written as its mean and its strength (the pseudo-count `alpha + beta`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BetaPrior {
    pub mean: f64,
    pub strength: f64,
}

impl BetaPrior {
    /// Strength used when there is too little to estimate it from: weak next to any creative's real traffic.
    pub const DEFAULT_STRENGTH: f64 = 200.0;

    pub fn alpha(&self) -> f64 {
        (self.mean * self.strength).max(1e-3)
    }

    pub fn beta(&self) -> f64 {
        ((1.0 - self.mean) * self.strength).max(1e-3)
    }

    /// Fits a Beta prior to units (creatives) each with `trials` and `successes`, by the method of moments for
    /// the beta-binomial: the spread of the units' rates beyond what binomial noise explains says how much the
    /// units really differ, and so how strongly each unit's rate is pulled toward the mean.
    ///
    /// With `m` the pooled rate, `N` the total trials and `C` the units, the trial-weighted variance of the
    /// units' rates has expectation `m (1 - m) (C + rho (N - C)) / N`, where `rho = 1 / (strength + 1)`.
    pub fn fit(units: impl Iterator<Item = (u64, u64)> + Clone) -> BetaPrior {
        let (mut n_total, mut k_total, mut count) = (0.0f64, 0.0f64, 0.0f64);
        for (n, k) in units.clone() {
            if n > 0 {
                n_total += n as f64;
                k_total += k.min(n) as f64;
                count += 1.0;
            }
        }
        if n_total == 0.0 {
            return BetaPrior { mean: 0.5, strength: 2.0 };
        }
        // Kept off 0 and 1 so that the prior stays proper.
        let mean = ((k_total + 0.5) / (n_total + 1.0)).clamp(1e-6, 1.0 - 1e-6);
        if count < 3.0 || n_total <= count {
            return BetaPrior { mean, strength: BetaPrior::DEFAULT_STRENGTH };
        }
        let mut spread = 0.0;
        for (n, k) in units {
            if n > 0 {
                let rate = k.min(n) as f64 / n as f64;
                spread += n as f64 * (rate - mean).powi(2);
            }
        }
        let observed = spread / n_total * count / (count - 1.0);
        let rho = (observed * n_total / (mean * (1.0 - mean)) - count) / (n_total - count);
        // Units no more different than noise: a strong pull (but not total, so evidence still counts); very
        // different units: a weak pull.
        let rho = rho.clamp(1e-6, 0.5);
        BetaPrior { mean, strength: 1.0 / rho - 1.0 }
    }
}

/// The value at quantile `q` of sorted samples (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    sorted[at]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_var(xs: &[f64]) -> (f64, f64) {
        let m = xs.iter().sum::<f64>() / xs.len() as f64;
        (m, xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64)
    }

    #[test]
    fn same_seed_same_stream_and_forks_differ() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..5).map(|_| b.next_u64()).collect::<Vec<_>>());
        let mut f = Rng::new(7).fork(1);
        assert_ne!(xs[0], f.next_u64());
    }

    #[test]
    fn normal_and_exponential_have_their_moments_and_tails() {
        let mut rng = Rng::new(11);
        let n = 1_000_000;
        let zs: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let (m, v) = mean_var(&zs);
        assert!(m.abs() < 0.005 && (v - 1.0).abs() < 0.01, "normal mean {m} variance {v}");
        let share = |f: &dyn Fn(f64) -> bool| zs.iter().filter(|z| f(**z)).count() as f64 / n as f64;
        // P(|Z| > 1) = 0.3173, P(|Z| > 2) = 0.0455, P(|Z| > 3.5) = 0.000465 (beyond the base strip's edge).
        assert!((share(&|z| z.abs() > 1.0) - 0.3173).abs() < 0.002);
        assert!((share(&|z| z.abs() > 2.0) - 0.0455).abs() < 0.001);
        assert!((share(&|z| z.abs() > 3.5) - 0.000465).abs() < 0.00012);
        assert!((share(&|z| z > 0.0) - 0.5).abs() < 0.002);
        let es: Vec<f64> = (0..n).map(|_| rng.exp1()).collect();
        let (m, v) = mean_var(&es);
        assert!((m - 1.0).abs() < 0.005 && (v - 1.0).abs() < 0.02, "exponential mean {m} variance {v}");
        let tail = es.iter().filter(|e| **e > 8.0).count() as f64 / n as f64;
        // P(E > 8) = 0.000335 (beyond the base strip's edge at 7.7).
        assert!((tail - 0.000335).abs() < 0.0001, "P(E > 8) {tail}");
        assert!(es.iter().all(|e| *e >= 0.0));
    }

    #[test]
    fn gamma_and_beta_have_the_moments_they_should() {
        let mut rng = Rng::new(1);
        for shape in [0.3, 1.0, 2.5, 40.0] {
            let xs: Vec<f64> = (0..200_000).map(|_| rng.gamma(shape)).collect();
            let (m, v) = mean_var(&xs);
            assert!((m - shape).abs() < 0.02 * shape.max(1.0), "gamma({shape}) mean {m}");
            assert!((v - shape).abs() < 0.05 * shape.max(1.0), "gamma({shape}) variance {v}");
        }
        // Exact and approximated regimes alike.
        for (a, b) in [(3.0, 9.0), (0.5, 40.0), (150.0, 12_000.0)] {
            let xs: Vec<f64> = (0..200_000).map(|_| rng.beta(a, b)).collect();
            let (m, v) = mean_var(&xs);
            let mean = a / (a + b);
            assert!((m - mean).abs() < 0.01 * mean, "beta({a}, {b}) mean {m} vs {mean}");
            let expected = a * b / ((a + b).powi(2) * (a + b + 1.0));
            assert!((v - expected).abs() < 0.05 * expected, "beta({a}, {b}) variance {v} vs {expected}");
            assert!(xs.iter().all(|x| *x > 0.0 && *x < 1.0));
        }
    }

    #[test]
    fn binomial_has_the_moments_it_should_in_every_regime() {
        let mut rng = Rng::new(2);
        for (n, p) in [(20, 0.3), (1_000, 0.005), (5_000, 0.02), (100_000, 0.9)] {
            let xs: Vec<f64> = (0..50_000).map(|_| rng.binomial(n, p) as f64).collect();
            let (m, v) = mean_var(&xs);
            let (em, ev) = (n as f64 * p, n as f64 * p * (1.0 - p));
            assert!((m - em).abs() < 0.02 * em.max(1.0), "binomial({n}, {p}) mean {m} vs {em}");
            assert!((v - ev).abs() < 0.06 * ev.max(1.0), "binomial({n}, {p}) variance {v} vs {ev}");
            assert!(xs.iter().all(|&x| x <= n as f64));
        }
    }

    #[test]
    fn fitted_prior_recovers_how_much_units_differ() {
        // 400 units whose true rates come from Beta(mean 0.02, strength 500), 20,000 trials each.
        let mut rng = Rng::new(3);
        let truth = BetaPrior { mean: 0.02, strength: 500.0 };
        let units: Vec<(u64, u64)> = (0..400)
            .map(|_| {
                let p = rng.beta(truth.alpha(), truth.beta());
                (20_000, rng.binomial(20_000, p))
            })
            .collect();
        let fit = BetaPrior::fit(units.iter().copied());
        assert!((fit.mean - 0.02).abs() < 0.001, "mean {}", fit.mean);
        assert!(fit.strength > 350.0 && fit.strength < 700.0, "strength {}", fit.strength);
        // Identical units: only binomial noise, so a strong pull toward the mean.
        let same: Vec<(u64, u64)> = (0..400).map(|_| (20_000, rng.binomial(20_000, 0.02))).collect();
        assert!(BetaPrior::fit(same.iter().copied()).strength > 5_000.0);
        // Too few units to say: the default.
        assert_eq!(BetaPrior::fit([(100, 3), (100, 5)].into_iter()).strength, BetaPrior::DEFAULT_STRENGTH);
    }
}
