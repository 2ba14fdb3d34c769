//! The miner on generated conversations with planted topics and planted winning replies: the planted topics are
//! found with their counts, none merged with another or with chatter; the planted winning reply ranks first for
//! its topic, and the planted neutral reply is not called a winner.

use std::collections::BTreeSet;

use tutti_conversations::mine::{self, scripts};
use tutti_conversations::synth::{self, Shape, TOPICS};

#[test]
fn planted_topics_are_found_counted_and_their_winning_replies_ranked_first() {
    let shape = Shape { conversations: 6_000, turns: 20, seed: 7, start: 1_790_000_000_000, weeks: 12, noise: 2 };
    let (conversations, truth) = synth::generate(&shape);
    let mined = mine::mine(&conversations, &mine::Options::default(), &mut |_| {});
    let found_turns: Vec<BTreeSet<(u32, u32)>> =
        mined.topics.iter().map(|t| t.raised.iter().copied().collect()).collect();

    let mut found = 0;
    let mut used = BTreeSet::new();
    let all_scripts = scripts::scripts(&conversations, &mined, &scripts::Options::default());
    let mut report = Vec::new();
    for (p, planted) in TOPICS.iter().enumerate() {
        let truth = &truth.raised[p];
        let planted_conversations: BTreeSet<u32> = truth.iter().map(|(c, _)| *c).collect();
        // The found topic that holds most of the planted one's sentences.
        let Some((best, overlap)) =
            found_turns.iter().enumerate().map(|(f, set)| (f, set.intersection(truth).count())).max_by_key(|(_, n)| *n)
        else {
            report.push(format!("{}: nothing found", planted.id));
            continue;
        };
        let count = mined.topics[best].conversations as usize;
        let within =
            (count as f64 - planted_conversations.len() as f64).abs() <= 0.1 * planted_conversations.len() as f64;
        // Not merged with another topic or with chatter: nine in ten of its sentences are the planted topic's.
        let pure = overlap as f64 >= 0.9 * found_turns[best].len() as f64;
        let alone = used.insert(best);
        report.push(format!(
            "{}: planted in {} conversations, found {:?} in {count} ({overlap} of its {} sentences planted) within={within} pure={pure} alone={alone}",
            planted.id,
            planted_conversations.len(),
            mined.topics[best].label,
            found_turns[best].len(),
        ));
        if !(within && pure && alone) {
            continue;
        }
        found += 1;
        // Named in English: the taxonomy's name of a known objection, else the glossary's subject.
        let label_en = &mined.topics[best].label_en;
        assert!(!label_en.starts_with('('), "{}: {label_en:?}", planted.id);
        let scripts = &all_scripts[best].scripts;
        let first = scripts.first().expect("replies were counted");
        let lower = |s: &str| s.to_lowercase();
        assert!(
            planted.winning.iter().any(|w| lower(w).starts_with(&lower(&first.reply))),
            "{}: the winning reply ranks first, not {:?}\n{scripts:#?}",
            planted.id,
            first.reply
        );
        assert!(first.winner, "{}: {first:?}", planted.id);
        for s in scripts {
            if planted.neutral.iter().any(|n| lower(n).starts_with(&lower(&s.reply))) {
                assert!(!s.winner, "{}: the neutral reply is no winner: {s:?}", planted.id);
            }
        }
    }
    for t in &mined.topics {
        report.push(format!(
            "  found {:?} ({}) {} conversations: {:?}",
            t.label, t.language, t.conversations, t.examples
        ));
    }
    let report = report.join("\n");
    assert!(found * 10 >= TOPICS.len() * 9, "{found} of {} planted topics found\n{report}", TOPICS.len());
    // Chatter is never a topic: every found topic of enough size is a planted one.
    assert!(
        mined.topics.len() <= TOPICS.len() + 2,
        "{} topics:\n{:#?}",
        mined.topics.len(),
        mined.topics.iter().map(|t| &t.label).collect::<Vec<_>>()
    );
    println!("{report}");

    // A topic keeps its id as conversations come in (tasks and people's edits are keyed by it): the first half
    // of the calls, mined alone, names each planted topic as the whole set does.
    let half = mine::mine(&conversations[..3_000], &mine::Options::default(), &mut |_| {});
    for (p, planted) in TOPICS.iter().enumerate() {
        let id_in = |mined: &mine::Mined| {
            mined
                .topics
                .iter()
                .max_by_key(|t| t.raised.iter().filter(|r| truth.raised[p].contains(r)).count())
                .map(|t| t.id.clone())
        };
        assert_eq!(id_in(&half), id_in(&mined), "{}", planted.id);
    }
}
