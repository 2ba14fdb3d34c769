//! Grouping sentences by the terms they share: distinct phrasings weighted by how often they were said, terms
//! weighted by how rare they are (IDF), one pass that puts each phrasing with the nearest group or starts a new
//! one, a second pass that moves each phrasing to the group it is now nearest, and a merge of groups whose
//! centres are alike. No number of topics is given: the data decide it.
//!
//! Cost: a phrasing is compared only with the groups whose heaviest terms it shares, found through an inverted
//! index, so a million sentences are grouped in seconds, not in hours.

use std::collections::HashMap;

use super::terms::Term;

/// One phrasing to group: its terms (sorted, each once) and how many times it was said.
pub struct Item<'a> {
    pub terms: &'a [Term],
    pub weight: u32,
}

/// How alike two things must be to go together.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Cosine of a phrasing to a group's centre to join it.
    pub join: f32,
    /// Cosine of two groups' centres to merge them.
    pub merge: f32,
}

/// IDF weights of terms over `items` (each counted as often as it was said).
pub fn idf(items: &[Item<'_>]) -> HashMap<Term, f32> {
    let mut df: HashMap<Term, u64> = HashMap::new();
    let mut total = 0u64;
    for item in items {
        total += u64::from(item.weight);
        for t in item.terms {
            *df.entry(*t).or_default() += u64::from(item.weight);
        }
    }
    let n = total.max(1) as f32;
    df.into_iter().map(|(t, d)| (t, (n / d as f32).ln() + 1.0)).collect()
}

/// A unit vector: the terms with their IDF weights, scaled to length 1.
fn vector(terms: &[Term], idf: &HashMap<Term, f32>) -> Vec<(Term, f32)> {
    let mut v: Vec<(Term, f32)> = terms.iter().map(|t| (*t, idf.get(t).copied().unwrap_or(1.0))).collect();
    let norm = v.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|(_, w)| *w /= norm);
    }
    v
}

/// A group's centre: the weighted sum of its members' vectors, and that sum's squared length.
#[derive(Default, Clone)]
struct Centre {
    sum: HashMap<Term, f32>,
    norm2: f32,
}

impl Centre {
    fn add(&mut self, v: &[(Term, f32)], times: f32) {
        for (t, w) in v {
            let e = self.sum.entry(*t).or_default();
            let old = *e;
            *e += w * times;
            self.norm2 += *e * *e - old * old;
        }
    }

    fn cosine(&self, v: &[(Term, f32)]) -> f32 {
        if self.norm2 <= 0.0 {
            return 0.0;
        }
        let dot: f32 = v.iter().filter_map(|(t, w)| self.sum.get(t).map(|c| c * w)).sum();
        dot / self.norm2.sqrt()
    }

    /// The centre's terms by weight, heaviest first (at most `n`).
    fn top(&self, n: usize) -> Vec<Term> {
        let mut terms: Vec<(&Term, &f32)> = self.sum.iter().collect();
        terms.sort_unstable_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
        terms.into_iter().take(n).map(|(t, _)| *t).collect()
    }
}

/// How many of a group's heaviest terms index it, how many groups one term may lead a phrasing to (the
/// earliest, which are the most said), and how many heaviest terms of a group's centre find groups to merge with.
const INDEX_TERMS: usize = 12;
const CANDIDATES_PER_TERM: usize = 256;
const PROBE_TERMS: usize = 4;

/// Candidates scored by the weight of the terms they share with a phrasing (through the index), then the best
/// few measured exactly: the cost is the length of the posting lists, not the number of groups.
#[derive(Default)]
struct Scratch {
    score: Vec<f32>,
    touched: Vec<usize>,
}

/// Candidates measured exactly per phrasing.
const EXACT: usize = 8;

impl Scratch {
    fn nearest(
        &mut self,
        v: &[(Term, f32)],
        centres: &[Centre],
        index: &HashMap<Term, Vec<usize>>,
    ) -> Option<(usize, f32)> {
        if self.score.len() < centres.len() {
            self.score.resize(centres.len(), 0.0);
        }
        for (t, w) in v {
            for &g in index.get(t).map(Vec::as_slice).unwrap_or_default().iter().take(CANDIDATES_PER_TERM) {
                if self.score[g] == 0.0 {
                    self.touched.push(g);
                }
                self.score[g] += w;
            }
        }
        let score = &self.score;
        if self.touched.len() > EXACT {
            self.touched.select_nth_unstable_by(EXACT - 1, |a, b| score[*b].total_cmp(&score[*a]).then(a.cmp(b)));
        }
        let best = self.touched[..self.touched.len().min(EXACT)]
            .iter()
            .map(|&g| (g, centres[g].cosine(v)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        for g in self.touched.drain(..) {
            self.score[g] = 0.0;
        }
        best
    }
}

/// The group of each item (`None` for an item with no terms), groups numbered from 0.
pub fn group(items: &[Item<'_>], thresholds: Thresholds) -> Vec<Option<usize>> {
    let idf = idf(items);
    let vectors: Vec<Vec<(Term, f32)>> = items.iter().map(|i| vector(i.terms, &idf)).collect();
    // Most-said phrasings first: they found the groups, and rarer ones join them.
    let mut order: Vec<usize> = (0..items.len()).filter(|&i| !vectors[i].is_empty()).collect();
    order.sort_by(|&a, &b| items[b].weight.cmp(&items[a].weight).then(a.cmp(&b)));

    let mut centres: Vec<Centre> = Vec::new();
    let mut index: HashMap<Term, Vec<usize>> = HashMap::new();
    let mut indexed: Vec<Vec<Term>> = Vec::new();
    let mut assigned: Vec<Option<usize>> = vec![None; items.len()];
    let mut scratch = Scratch::default();
    let reindex = |g: usize, centres: &[Centre], index: &mut HashMap<Term, Vec<usize>>, indexed: &mut [Vec<Term>]| {
        // Terms only join a group's index entries, never leave them: a stale entry only makes a candidate that
        // scores low, and removing it would cost a scan of the term's whole list.
        for t in centres[g].top(INDEX_TERMS) {
            if !indexed[g].contains(&t) {
                indexed[g].push(t);
                index.entry(t).or_default().push(g);
            }
        }
    };

    // First pass: join the nearest group, or found one.
    for &i in &order {
        let weight = items[i].weight as f32;
        let g = match scratch.nearest(&vectors[i], &centres, &index) {
            Some((g, c)) if c >= thresholds.join => g,
            _ => {
                centres.push(Centre::default());
                indexed.push(Vec::new());
                centres.len() - 1
            }
        };
        let before = centres[g].top(INDEX_TERMS);
        centres[g].add(&vectors[i], weight);
        assigned[i] = Some(g);
        if centres[g].top(INDEX_TERMS) != before {
            reindex(g, &centres, &mut index, &mut indexed);
        }
    }

    // Second pass: each phrasing to the centre it is nearest now (its own group stays a candidate).
    let mut moved = vec![Centre::default(); centres.len()];
    for &i in &order {
        let own = assigned[i].expect("every phrasing with terms was assigned");
        let stay = centres[own].cosine(&vectors[i]);
        let g = match scratch.nearest(&vectors[i], &centres, &index) {
            Some((g, c)) if c > stay + 1e-6 && c >= thresholds.join => g,
            _ => own,
        };
        assigned[i] = Some(g);
        moved[g].add(&vectors[i], items[i].weight as f32);
    }
    let centres = moved;

    // Merge groups whose centres are alike (through their heaviest terms), the larger absorbing the smaller.
    let mut parent: Vec<usize> = (0..centres.len()).collect();
    fn root(parent: &mut [usize], mut g: usize) -> usize {
        while parent[g] != g {
            parent[g] = parent[parent[g]];
            g = parent[g];
        }
        g
    }
    let tops: Vec<Vec<Term>> = centres.iter().map(|c| c.top(INDEX_TERMS)).collect();
    let mut by_term: HashMap<Term, Vec<usize>> = HashMap::new();
    for (g, top) in tops.iter().enumerate() {
        if centres[g].norm2 > 0.0 {
            for t in top.iter().take(PROBE_TERMS) {
                by_term.entry(*t).or_default().push(g);
            }
        }
    }
    let unit = |c: &Centre| -> Vec<(Term, f32)> {
        let n = c.norm2.sqrt();
        c.sum.iter().map(|(t, w)| (*t, w / n)).collect()
    };
    for (g, top) in tops.iter().enumerate() {
        if centres[g].norm2 <= 0.0 {
            continue;
        }
        let mine = unit(&centres[g]);
        for t in top.iter().take(PROBE_TERMS) {
            for &h in &by_term[t] {
                if h <= g {
                    continue;
                }
                if centres[h].cosine(&mine) >= thresholds.merge {
                    let (a, b) = (root(&mut parent, g), root(&mut parent, h));
                    if a != b {
                        parent[a.max(b)] = a.min(b);
                    }
                }
            }
        }
    }
    // Number the groups that remain from 0, in order of first appearance.
    let mut numbers: HashMap<usize, usize> = HashMap::new();
    assigned
        .into_iter()
        .map(|g| {
            g.map(|g| {
                let r = root(&mut parent, g);
                let next = numbers.len();
                *numbers.entry(r).or_insert(next)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mine::terms::terms;

    fn grouped(texts: &[(&str, u32)]) -> Vec<Option<usize>> {
        let terms: Vec<Vec<Term>> = texts
            .iter()
            .map(|(t, _)| {
                let mut out = Vec::new();
                terms(&tutti_ai::text::normalize(t), &mut out);
                out
            })
            .collect();
        let items: Vec<Item<'_>> = terms.iter().zip(texts).map(|(t, (_, w))| Item { terms: t, weight: *w }).collect();
        group(&items, Thresholds { join: 0.3, merge: 0.5 })
    }

    #[test]
    fn paraphrases_go_together_and_other_topics_apart() {
        let g = grouped(&[
            ("the price is too high", 20),
            ("your price is a bit high for us", 5),
            ("price too high compared to others", 3),
            ("worried about data security", 15),
            ("data security worries me", 4),
            ("how long is the contract", 10),
            ("the contract is too long", 2),
            ("is it ok", 1),
        ]);
        assert!(g[0] == g[1] && g[1] == g[2], "{g:?}");
        assert!(g[3] == g[4], "{g:?}");
        assert!(g[5] == g[6], "{g:?}");
        assert!(g[0] != g[3] && g[0] != g[5] && g[3] != g[5], "{g:?}");
        assert_eq!(g[7], None, "no terms, no group");
    }
}
