//! Grouping in a provider's space: what the words alone cannot join. The lexical grouping needs the sentences of
//! a topic to share a word; "hackers might steal our data" and "is my information kept safe" share none. With a
//! provider routed for embeddings, the groups the words found, the smallest included (each placed by its most
//! said phrasings), and the phrasings without a term they could group (said at least twice) are placed in the
//! provider's space, heaviest first; each joins the closest group of its language placed before it, when the
//! cosine reaches the threshold, else leads a group of its own. So the words' groups are kept whole, paraphrases
//! with no shared word come together, and sentences said too rarely to make a topic by their words join the
//! topic they mean.
//!
//! A group's centre in the space is fixed when it first leads (no drift as members join, so chains of
//! almost-alike sentences do not wander off their topic). Cost: texts at most [`super::Options::embedding_texts`],
//! compared with the leaders of their language only.

use std::cmp::Reverse;

use tutti_ai::embed::dot;

use super::Phrase;
use super::terms::Term;

/// A model beside the local miner. Both answers are checked before use; a failure leaves the local result.
pub trait Model {
    /// `texts` in the provider's space, one unit-length vector each, in order: `Ok(None)` when no provider is
    /// routed for embeddings; `Err` says why the routed one gave none.
    fn embed(&mut self, texts: &[String]) -> Result<Option<Embedded>, String>;
    /// Names for `topics` in their language and in English: `Ok(None)` when no model is routed for naming.
    fn label(&mut self, topics: &[ToLabel]) -> Result<Option<Labels>, String>;
}

/// Vectors, and `<provider>/<model>`.
pub struct Embedded {
    pub vectors: Vec<Vec<f32>>,
    pub method: String,
}

/// A topic to be named: its most said sentences.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToLabel {
    pub id: String,
    pub language: String,
    pub kind: super::Kind,
    pub examples: Vec<String>,
}

/// A model's names: (topic id, label in the topic's language, label in English), and `<provider>/<model>`.
pub struct Labels {
    pub names: Vec<(String, String, String)>,
    pub method: String,
}

/// No model: everything local.
pub struct Offline;

impl Model for Offline {
    fn embed(&mut self, _: &[String]) -> Result<Option<Embedded>, String> {
        Ok(None)
    }

    fn label(&mut self, _: &[ToLabel]) -> Result<Option<Labels>, String> {
        Ok(None)
    }
}

/// Phrasings of one group placed in the space.
const PER_GROUP: usize = 8;

/// One thing placed: a group of the words, or a phrasing they left out.
struct Unit {
    group: Option<usize>,
    phrase: usize,
    language: usize,
    weight: usize,
    /// Its texts: a range of the embedded ones, with how often each was said.
    texts: std::ops::Range<usize>,
}

/// Joins `groups` (and the `leftovers`, phrasings in none) in the space of `model`, per language. Returns the
/// model's `<provider>/<model>` when it placed them, `None` when no provider is routed, `Err` with why when it
/// failed (nothing is changed then).
pub(super) fn join(
    groups: &mut Vec<Vec<usize>>,
    heads: &mut Vec<Option<Term>>,
    leftovers: &[usize],
    phrases: &[Phrase],
    model: &mut dyn Model,
    threshold: f32,
    budget: usize,
) -> Result<Option<String>, String> {
    let said = |p: usize| phrases[p].said.len();
    let mut order: Vec<usize> = (0..groups.len()).filter(|&g| !groups[g].is_empty()).collect();
    let weight = |g: usize| groups[g].iter().map(|&p| said(p)).sum::<usize>();
    order.sort_by_key(|&g| (Reverse(weight(g)), g));
    let mut texts: Vec<String> = Vec::new();
    let mut text_weights: Vec<f32> = Vec::new();
    let mut units: Vec<Unit> = Vec::new();
    for g in order {
        let mut top = groups[g].clone();
        top.sort_by_key(|&p| (Reverse(said(p)), p));
        top.truncate(PER_GROUP);
        if texts.len() + top.len() > budget {
            break;
        }
        let start = texts.len();
        for &p in &top {
            texts.push(phrases[p].display.clone());
            text_weights.push(said(p) as f32);
        }
        let language = phrases[top[0]].language;
        units.push(Unit { group: Some(g), phrase: top[0], language, weight: weight(g), texts: start..texts.len() });
    }
    let mut loose: Vec<usize> = leftovers.iter().copied().filter(|&p| said(p) >= 2).collect();
    loose.sort_by_key(|&p| (Reverse(said(p)), p));
    for p in loose.into_iter().take(budget.saturating_sub(texts.len())) {
        texts.push(phrases[p].display.clone());
        text_weights.push(said(p) as f32);
        units.push(Unit {
            group: None,
            phrase: p,
            language: phrases[p].language,
            weight: said(p),
            texts: texts.len() - 1..texts.len(),
        });
    }
    if texts.is_empty() {
        return Ok(None);
    }
    let Some(embedded) = model.embed(&texts)? else { return Ok(None) };
    check(&embedded.vectors, texts.len())?;

    let centres: Vec<Vec<f32>> = units
        .iter()
        .map(|u| {
            let mut c = vec![0f32; embedded.vectors[0].len()];
            for i in u.texts.clone() {
                for (x, v) in c.iter_mut().zip(&embedded.vectors[i]) {
                    *x += text_weights[i] * v;
                }
            }
            tutti_ai::embed::unit(c)
        })
        .collect();
    let mut by_weight: Vec<usize> = (0..units.len()).collect();
    by_weight.sort_by_key(|&u| (Reverse(units[u].weight), u));
    // Leaders per language: (unit, the group it leads).
    let mut leaders: Vec<Vec<(usize, usize)>> = vec![Vec::new(); super::LANGUAGES.len()];
    for u in by_weight {
        let unit = &units[u];
        let best = leaders[unit.language]
            .iter()
            .map(|&(l, g)| (dot(&centres[u], &centres[l]), g))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        match (best, unit.group) {
            (Some((score, into)), Some(g)) if score >= threshold => {
                let moved = std::mem::take(&mut groups[g]);
                groups[into].extend(moved);
                heads[g] = None;
            }
            (Some((score, into)), None) if score >= threshold => groups[into].push(unit.phrase),
            (_, Some(g)) => leaders[unit.language].push((u, g)),
            (_, None) => {
                groups.push(vec![unit.phrase]);
                heads.push(None);
                leaders[unit.language].push((u, groups.len() - 1));
            }
        }
    }
    Ok(Some(embedded.method))
}

/// A provider's answer is usable: one vector per text, all of one length, finite.
fn check(vectors: &[Vec<f32>], texts: usize) -> Result<(), String> {
    if vectors.len() != texts {
        return Err(format!("the provider gave {} vectors for {texts} texts", vectors.len()));
    }
    let dimensions = vectors[0].len();
    if dimensions == 0 || vectors.iter().any(|v| v.len() != dimensions) {
        return Err("the provider's vectors are empty or of different lengths".into());
    }
    if vectors.iter().flatten().any(|x| !x.is_finite()) {
        return Err("the provider's vectors hold a number that is not finite".into());
    }
    Ok(())
}
