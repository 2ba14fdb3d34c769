//! The local tagger on the evaluation set shipped with it: at least 80% on tone and on purpose. The
//! evaluation set is read here and nowhere else; the tagger never sees it while training.

use tutti_ai::tagger::{LocalTagger, evaluate, read_examples};

const EVALUATION_SET: &str = include_str!("../data/creatives/eval.jsonl");
/// Creatives in styles the training set had few of (guides, pain openers, number-citing value claims,
/// testimonials), written after the tagger and measured before it was changed for them.
const HELD_OUT: &str = include_str!("../data/creatives/heldout.jsonl");

#[test]
fn the_evaluation_set_is_big_enough_and_apart_from_the_training_set() {
    let eval = read_examples(EVALUATION_SET).unwrap();
    let train = read_examples(tutti_ai::tagger::TRAINING_SET).unwrap();
    assert!(eval.len() >= 300, "{} evaluation creatives", eval.len());
    for lang in ["vi", "zh", "en"] {
        let n = eval.iter().filter(|e| e.language == lang).count();
        assert!(n >= 80, "{n} evaluation creatives in {lang}");
    }
    for e in &eval {
        assert!(
            !train.iter().any(|t| t.headline == e.headline || (!t.body.is_empty() && t.body == e.body)),
            "{} also appears in the training set",
            e.id
        );
    }
}

#[test]
fn tone_and_purpose_reach_80_percent() {
    let tagger = LocalTagger::new_default();
    let eval = read_examples(EVALUATION_SET).unwrap();
    let result = evaluate(&tagger, &eval);
    for (name, per) in &result.by_trait {
        let line: Vec<String> =
            per.iter().map(|(l, (c, t))| format!("{l} {:.1}% ({c}/{t})", 100.0 * *c as f64 / *t as f64)).collect();
        eprintln!("{name:<10} all {:.1}%  {}", 100.0 * result.accuracy(name, None).unwrap(), line.join("  "));
    }
    // Overall, and in each language on its own: a tagger good in English only would not do.
    for name in ["tone", "purpose"] {
        for language in [None, Some("vi"), Some("zh"), Some("en")] {
            let accuracy = result.accuracy(name, language).unwrap();
            assert!(accuracy >= 0.80, "{name} {language:?}: {:.1}%", accuracy * 100.0);
        }
    }
    assert!(result.accuracy("language", None).unwrap() >= 0.99);
    // Confidence is worth reading: the surest tags are right more often than the least sure.
    let rate = |(c, t): (usize, usize)| c as f64 / t.max(1) as f64;
    let (least, most) = (result.by_confidence[0], result.by_confidence[4]);
    assert!(most.1 >= 100 && rate(most) >= 0.9, "confidence 0.9 and over: {most:?}");
    assert!(rate(most) > rate(least) + 0.1, "{least:?} vs {most:?}");
}

#[test]
fn the_held_out_creatives_in_another_style_are_apart_and_above_their_floors() {
    let held_out = read_examples(HELD_OUT).unwrap();
    let train = read_examples(tutti_ai::tagger::TRAINING_SET).unwrap();
    for e in &held_out {
        assert!(
            !train.iter().any(|t| t.headline == e.headline || t.body == e.body),
            "{} also appears in the training set",
            e.id
        );
    }
    let result = evaluate(&LocalTagger::new_default(), &held_out);
    for name in ["tone", "purpose", "structure", "offer"] {
        let line: Vec<String> = [None, Some("vi"), Some("zh"), Some("en")]
            .iter()
            .map(|l| format!("{}: {:.1}%", l.unwrap_or("all"), 100.0 * result.accuracy(name, *l).unwrap()))
            .collect();
        eprintln!("{name:<10} {}", line.join("  "));
        // Floors under what is reached, against regressions; the design's target is 90% overall and 85% in
        // every language (`cargo xtask copy` prints the figures).
        assert!(result.accuracy(name, None).unwrap() >= 0.85, "{name}: {}", line.join("  "));
        for language in ["vi", "zh", "en"] {
            assert!(result.accuracy(name, Some(language)).unwrap() >= 0.80, "{name}: {}", line.join("  "));
        }
    }
}
