//! The ideas a sentence names, in any of the three languages: money, certainty, a loss, an illness, its going
//! away, a comparison with everyone else, the staff's own work, another person's private details. A claim the
//! gate must catch is usually two of them together ("your capital" + "whatever the market does", "insomnia" +
//! "gone forever", "nobody anywhere" + "sells for less"), worded in ways no phrase list foresees; the meaning
//! classifier reads each idea, and each pair of ideas, as a feature of its own, so that it learns the pairing
//! from a few examples and not the wording.
//!
//! The cue lists (`data/review/concepts.txt`) are vocabulary, written from what regulators and style guides name (financial promotion rules
//! on guaranteed returns, advertising law on medical claims and absolute terms, data-protection guidance on
//! third-party details); docs/ai.md says which held-out batch was written after them. A Latin cue matches whole words; a Chinese cue
//! matches anywhere; a Vietnamese cue also matches text typed without its marks.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

use crate::text;

/// Each idea and its cues.
/// The ideas and their cues, as `crates/tutti-ai/data/review/concepts.txt` lists them.
const CONCEPTS_FILE: &str = include_str!("../../data/review/concepts.txt");

/// The ideas, in the file's order, each with its cues.
fn concepts() -> &'static [(String, Vec<String>)] {
    static READ: OnceLock<Vec<(String, Vec<String>)>> = OnceLock::new();
    READ.get_or_init(|| {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for line in CONCEPTS_FILE.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                out.push((name.to_owned(), Vec::new()));
            } else if let Some((_, cues)) = out.last_mut() {
                cues.extend(line.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
            }
        }
        out
    })
}

/// The number of ideas; each is a bit of [`ideas`]'s answer.
pub(super) fn count() -> usize {
    concepts().len()
}

/// The bits (as [`ideas`] sets them) of the named ideas.
pub(super) fn mask(names: &[&str]) -> u32 {
    concepts()
        .iter()
        .enumerate()
        .filter(|(_, (name, _))| names.contains(&name.as_str()))
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// An idea's name, for its feature.
pub(super) fn name(index: usize) -> &'static str {
    &concepts()[index].0
}

/// Every cue in one automaton: as written (lower case), and for Vietnamese also without its marks.
struct Matcher {
    cues: AhoCorasick,
    /// Each cue's idea, and whether it is a form without marks (counted only in text typed without them).
    meta: Vec<(usize, bool)>,
}

fn matcher() -> &'static Matcher {
    static BUILT: OnceLock<Matcher> = OnceLock::new();
    BUILT.get_or_init(|| {
        let mut cues = Vec::new();
        let mut meta = Vec::new();
        for (i, (_, list)) in concepts().iter().enumerate() {
            for cue in list {
                let cue = text::normalize(cue);
                if text::has_diacritics(&cue) {
                    cues.push(text::fold(&cue));
                    meta.push((i, true));
                }
                cues.push(cue);
                meta.push((i, false));
            }
        }
        // A DFA: one pass over the sentence, a table lookup per byte.
        let cues = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&cues)
            .expect("the concept cues compile");
        Matcher { cues, meta }
    })
}

/// The ideas a sentence names, one bit each (bit `i` for the `i`-th idea); `lower` is the sentence normalised
/// ([`text::normalize`]: NFC, lower case).
pub(super) fn ideas(lower: &str) -> u32 {
    let m = matcher();
    let unmarked = !text::has_diacritics(lower);
    let mut bits = 0u32;
    for hit in m.cues.find_overlapping_iter(lower) {
        let (idea, folded) = m.meta[hit.pattern().as_usize()];
        if (unmarked || !folded) && text::stands_alone(lower, hit.start(), hit.end()) {
            bits |= 1 << idea;
        }
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(sentence: &str) -> Vec<&'static str> {
        let bits = ideas(&text::normalize(sentence));
        (0..count()).filter(|i| bits & (1 << i) != 0).map(name).collect()
    }

    #[test]
    fn ideas_are_read_in_three_languages_and_without_marks() {
        assert!(named("Your capital stays whole whatever the market does.").contains(&"certainty"));
        assert!(named("Vốn của chị được giữ trọn vẹn").contains(&"money"));
        assert!(named("Von cua chi duoc giu tron ven").contains(&"certainty"));
        assert!(named("三个疗程痛风断根").contains(&"condition"));
        assert!(named("三个疗程痛风断根").contains(&"for_good"));
    }

    #[test]
    fn a_latin_cue_is_a_whole_word() {
        assert!(!named("Stop by every Sunday.").contains(&"top"));
        assert!(!named("Every item ships free.").contains(&"everyone_else"));
    }

    #[test]
    fn there_are_few_enough_ideas_for_the_bits() {
        assert!((1..=32).contains(&count()));
        assert!(concepts().iter().all(|(_, cues)| cues.len() >= 10));
    }
}
