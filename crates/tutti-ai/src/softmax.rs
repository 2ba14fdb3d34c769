//! Softmax regression over sparse hashed features, trained by stochastic gradient descent: the learner under
//! the creative tagger and the review gate's meaning classifier. Deterministic: examples are visited in a
//! shuffled order drawn from a seeded generator, so the same data and seed give the same weights.

/// One model: for each of `dim` features, a weight per class, side by side, so that reading a feature's
/// weights touches one cache line, not one per class.
pub(crate) struct Softmax {
    classes: usize,
    weights: Vec<f32>,
}

/// How to train: epochs, the first step (it decays as `rate / (1 + 0.1 epoch)`), the L2 penalty on the weights
/// an example touches, and the shuffle's seed.
pub(crate) struct Training {
    pub epochs: usize,
    pub rate: f32,
    pub l2: f32,
    pub seed: u64,
}

impl Softmax {
    pub(crate) fn new(classes: usize, dim: usize) -> Softmax {
        Softmax { classes, weights: vec![0.0; classes * dim] }
    }

    /// Each class's score: the dot product of its weights with the features (indices below `dim`).
    pub(crate) fn scores(&self, features: &[(u32, f32)]) -> Vec<f64> {
        let mut out = vec![0f64; self.classes];
        for &(i, x) in features {
            let w = &self.weights[i as usize * self.classes..(i as usize + 1) * self.classes];
            out.iter_mut().zip(w).for_each(|(o, wc)| *o += (wc * x) as f64);
        }
        out
    }

    pub(crate) fn probabilities(&self, features: &[(u32, f32)]) -> Vec<f64> {
        let mut s = self.scores(features);
        let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        s.iter_mut().for_each(|x| *x = (*x - max).exp());
        let total: f64 = s.iter().sum();
        s.iter_mut().for_each(|x| *x /= total);
        s
    }

    /// Trains on (features, class) pairs.
    pub(crate) fn train(&mut self, examples: &[(&[(u32, f32)], usize)], training: &Training) {
        let mut order: Vec<usize> = (0..examples.len()).collect();
        // SplitMix64.
        let mut state = training.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5851_f42d_4c95_7f2d;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        for epoch in 0..training.epochs {
            for i in (1..order.len()).rev() {
                let j = (next() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            let rate = training.rate / (1.0 + 0.1 * epoch as f32);
            for &k in &order {
                let (features, label) = examples[k];
                let p = self.probabilities(features);
                for &(i, x) in features {
                    let w = &mut self.weights[i as usize * self.classes..(i as usize + 1) * self.classes];
                    for (class, (wi, pc)) in w.iter_mut().zip(&p).enumerate() {
                        let gradient = (if class == label { 1.0 } else { 0.0 }) - *pc as f32;
                        *wi += rate * (gradient * x - training.l2 * *wi);
                    }
                }
            }
        }
    }
}
