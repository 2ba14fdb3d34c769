//! Golden scripts: for each topic, the rep replies that followed it, grouped by meaning, each with the win rate
//! of the conversations where it was the reply and its lift over the topic's other conversations, with a 95%
//! interval (Newcombe's, from Wilson intervals). A reply is a winner only when its interval is above zero and it
//! was given in enough conversations; the ranking is by the interval's lower end, so a reply tried twice and
//! won twice does not outrank one tried two hundred times.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tutti_analytics::stats::{difference, wilson};

use super::cluster::{self, Item, Thresholds};
use super::terms::{self, Term};
use super::{Kind, Mined, Topic};
use crate::model::{Conversation, Outcome, Role};

/// How replies are grouped and when one is reported.
#[derive(Debug, Clone)]
pub struct Options {
    pub thresholds: Thresholds,
    /// A reply group is shown when given in at least this many conversations.
    pub min_conversations: usize,
    /// Replies shown per topic.
    pub per_topic: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options { thresholds: Thresholds { join: 0.35, merge: 0.5 }, min_conversations: 10, per_topic: 5 }
    }
}

/// One way reps answered a topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Script {
    /// Its most used wording.
    pub reply: String,
    /// Other wordings of it, most used first.
    pub variants: Vec<String>,
    pub conversations: u64,
    /// Of those, won and ended (won or lost).
    pub won: u64,
    pub decided: u64,
    pub win_rate: f64,
    /// Its win rate minus that of the topic's other conversations, with the 95% interval.
    pub lift: f64,
    pub lift_low: f64,
    pub lift_high: f64,
    /// The interval is above zero.
    pub winner: bool,
}

/// A topic's replies, best first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicScripts {
    pub topic: String,
    pub label: String,
    pub label_en: String,
    pub language: String,
    pub kind: Kind,
    pub conversations: u64,
    pub scripts: Vec<Script>,
}

/// The first two sentences of the first rep turn after `turn`: a reply is judged by how it opens.
fn reply_after(conversation: &Conversation, turn: usize) -> Option<String> {
    let reply = conversation.turns.iter().skip(turn + 1).find(|t| t.role == Role::Rep)?;
    let nfc = tutti_ai::text::nfc(&reply.text);
    let opening: Vec<&str> = super::units::sentences(&nfc).take(2).collect();
    let mut text = opening.join(" ");
    if text.len() > 400 {
        let mut end = 400;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    (!text.is_empty()).then_some(text)
}

/// The golden scripts of every topic mined from `conversations` (the same slice, in the same order).
pub fn scripts(conversations: &[Conversation], mined: &Mined, options: &Options) -> Vec<TopicScripts> {
    mined.topics.iter().map(|topic| of_topic(conversations, topic, options)).collect()
}

fn of_topic(conversations: &[Conversation], topic: &Topic, options: &Options) -> TopicScripts {
    // Each conversation once: the reply to the first time it raised the topic.
    let mut replies: Vec<(u32, String)> = Vec::new();
    for &(c, t) in &topic.raised {
        if replies.last().is_some_and(|(last, _)| *last == c) {
            continue;
        }
        if let Some(reply) = reply_after(&conversations[c as usize], t as usize) {
            replies.push((c, reply));
        }
    }
    // Distinct wordings, then groups of them.
    let mut wording: HashMap<String, usize> = HashMap::new();
    let mut texts: Vec<(String, Vec<u32>)> = Vec::new();
    for (c, reply) in replies {
        let key = reply.to_lowercase();
        let n = *wording.entry(key).or_insert_with(|| {
            texts.push((reply.clone(), Vec::new()));
            texts.len() - 1
        });
        texts[n].1.push(c);
    }
    let term_lists: Vec<Vec<Term>> = texts
        .iter()
        .map(|(text, _)| {
            let mut out = Vec::new();
            terms::terms(&text.to_lowercase(), &mut out);
            out
        })
        .collect();
    let items: Vec<Item<'_>> =
        term_lists.iter().zip(&texts).map(|(t, (_, cs))| Item { terms: t, weight: cs.len() as u32 }).collect();
    let groups = cluster::group(&items, options.thresholds);
    let mut members: Vec<Vec<usize>> = Vec::new();
    for (w, g) in groups.iter().enumerate() {
        if let Some(g) = *g {
            while members.len() <= g {
                members.push(Vec::new());
            }
            members[g].push(w);
        }
    }

    let outcome = |c: u32| conversations[c as usize].outcome;
    let mut topic_conversations: Vec<u32> = topic.raised.iter().map(|(c, _)| *c).collect();
    topic_conversations.dedup();
    let mut scripts: Vec<Script> = Vec::new();
    for group in members {
        let mut in_group: Vec<u32> = group.iter().flat_map(|&w| texts[w].1.iter().copied()).collect();
        in_group.sort_unstable();
        in_group.dedup();
        if in_group.len() < options.min_conversations {
            continue;
        }
        let tally = |cs: &mut dyn Iterator<Item = u32>| {
            let (mut won, mut decided) = (0u64, 0u64);
            for c in cs {
                match outcome(c) {
                    Outcome::Won => (won, decided) = (won + 1, decided + 1),
                    Outcome::Lost => decided += 1,
                    Outcome::Open => {}
                }
            }
            wilson(won, decided)
        };
        let rate = tally(&mut in_group.iter().copied());
        let rest = tally(&mut topic_conversations.iter().copied().filter(|c| in_group.binary_search(c).is_err()));
        let lift = difference(&rate, &rest);
        let mut wordings = group.clone();
        wordings.sort_by(|&a, &b| texts[b].1.len().cmp(&texts[a].1.len()).then(a.cmp(&b)));
        scripts.push(Script {
            reply: texts[wordings[0]].0.clone(),
            variants: wordings.iter().skip(1).take(3).map(|&w| texts[w].0.clone()).collect(),
            conversations: in_group.len() as u64,
            won: rate.successes,
            decided: rate.trials,
            win_rate: rate.rate,
            lift: lift.difference,
            lift_low: lift.low,
            lift_high: lift.high,
            winner: lift.low > 0.0,
        });
    }
    scripts.sort_by(|a, b| b.lift_low.total_cmp(&a.lift_low).then(b.lift.total_cmp(&a.lift)));
    scripts.truncate(options.per_topic);
    TopicScripts {
        topic: topic.id.clone(),
        label: topic.label.clone(),
        label_en: topic.label_en.clone(),
        language: topic.language.clone(),
        kind: topic.kind,
        conversations: topic.conversations,
        scripts,
    }
}
