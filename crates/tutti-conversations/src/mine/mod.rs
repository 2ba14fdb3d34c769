//! Mining conversations: customers' sentences read as questions and objections, grouped into topics found in
//! the data (per language), counted in conversations and turns, week by week, with the win rate of the
//! conversations that raised each; and the rep replies that followed each topic, ranked by their lift in win
//! rate ([`scripts`]).
//!
//! Topics come from the data: any group of alike sentences raised in enough conversations is one. The shipped
//! objection taxonomy ([`tutti_ai::topics`]) only names them in English and joins groups of one language that are
//! the same known objection worded apart ("too expensive" and "the price is too high").

pub mod cluster;
pub mod glossary;
pub mod labels;
pub mod scripts;
pub mod space;
pub mod terms;
pub mod units;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use tutti_ai::text::{self, Language};
use tutti_ai::topics::TopicTaxonomy;
use tutti_analytics::stats::{Rate, wilson};

use crate::model::{Conversation, Outcome, Role};
use cluster::{Item, Thresholds};
use terms::Term;
pub use units::Kind;

/// How the miner decides.
#[derive(Debug, Clone)]
pub struct Options {
    pub thresholds: Thresholds,
    /// A group of sentences is a topic when raised in at least this many conversations.
    pub min_conversations: usize,
    /// Example sentences kept per topic.
    pub examples: usize,
    /// With a provider's embeddings: the cosine to a group's centre that joins it ([`space`]). Spaces differ by
    /// model: a model whose unrelated sentences sit close needs a higher one.
    pub embedding_threshold: f32,
    /// With a provider's embeddings: the most sentences embedded per mining.
    pub embedding_texts: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            thresholds: Thresholds { join: 0.35, merge: 0.5 },
            min_conversations: 5,
            examples: 3,
            embedding_threshold: 0.8,
            embedding_texts: 4_000,
        }
    }
}

/// Conversations raising a topic in one week (weeks begin on Monday, UTC).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Week {
    pub week: String,
    pub conversations: u64,
}

/// A topic found in the data.
#[derive(Debug, Clone, Serialize)]
pub struct Topic {
    /// Stable while the topic's most said phrasing stays the same: a rename or merge is kept by it.
    pub id: String,
    /// In the conversations' language.
    pub label: String,
    pub label_en: String,
    pub language: String,
    pub kind: Kind,
    pub conversations: u64,
    pub turns: u64,
    /// Won among the conversations raising it that were won or lost (open ones are not counted).
    pub win_rate: Rate,
    pub trend: Vec<Week>,
    pub examples: Vec<String>,
    /// The shipped taxonomy's topic it is, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taxonomy: Option<String>,
    /// Where it was raised: (conversation, turn), by index into the mined conversations, in order.
    #[serde(skip)]
    pub raised: Vec<(u32, u32)>,
    /// The centre of its sentences' terms, for reading new text against it.
    #[serde(skip)]
    pub centre: Vec<(Term, f32)>,
}

/// What a mining run found.
#[derive(Debug, Clone, Serialize)]
pub struct Mined {
    pub conversations: usize,
    pub turns: usize,
    /// Customer sentences read as questions or objections.
    pub sentences: usize,
    /// Of those, in no topic (said too rarely, or alone).
    pub unassigned: usize,
    pub topics: Vec<Topic>,
    /// What grouped the sentences: `local` (their words), or a provider's `<provider>/<model>` embeddings too.
    pub grouped_by: String,
    /// Why a configured model was not used, when it was not.
    pub notes: Vec<String>,
}

/// One distinct sentence (lower case), where it was said, and what it does.
struct Phrase {
    display: String,
    language: usize,
    kinds: [u32; 2],
    said: Vec<(u32, u32)>,
    terms: Vec<Term>,
}

const LANGUAGES: [&str; 4] = ["en", "vi", "zh", "other"];

fn language_index(language: Language) -> usize {
    match language {
        Language::En => 0,
        Language::Vi => 1,
        Language::Zh => 2,
        _ => 3,
    }
}

/// The language a conversation's customer speaks, from the first of their words.
fn language_of(c: &Conversation) -> usize {
    let mut sample = String::new();
    for t in c.turns.iter().filter(|t| t.role == Role::Customer) {
        sample.push_str(&t.text);
        sample.push(' ');
        if sample.len() > 600 {
            break;
        }
    }
    language_index(text::detect(&sample))
}

/// The language of one sentence: Chinese when it has Han characters, Vietnamese when it has its marks or its
/// function words, English when it reads as English; otherwise the conversation's (Vietnamese typed without marks in a Vietnamese call).
fn language_of_sentence(lower: &str, conversation: usize) -> usize {
    if lower.chars().any(text::is_han) {
        2
    } else if text::has_diacritics(lower) || terms::reads_as_unmarked_vietnamese(lower) {
        1
    } else if text::detect(lower) == Language::En {
        0
    } else if conversation == 2 {
        3
    } else {
        conversation
    }
}

/// Mines `conversations` locally. `progress` is told how many conversations have been read.
pub fn mine(conversations: &[Conversation], options: &Options, progress: &mut dyn FnMut(usize)) -> Mined {
    mine_with(conversations, options, &mut space::Offline, progress)
}

/// Mines `conversations`, grouping also in the space of `model`'s embeddings when it has them ([`space`]).
pub fn mine_with(
    conversations: &[Conversation],
    options: &Options,
    model: &mut dyn space::Model,
    progress: &mut dyn FnMut(usize),
) -> Mined {
    let mut phrases: Vec<Phrase> = Vec::new();
    let mut index: HashMap<(usize, String), usize> = HashMap::new();
    let mut turns = 0usize;
    let mut sentences = 0usize;
    // How often each word is said outside questions and objections, per language: a word said as much in small
    // talk as in objections heads no topic.
    let mut background: Vec<HashMap<Term, u32>> = vec![HashMap::new(); LANGUAGES.len()];
    let mut background_sentences = [0u32; LANGUAGES.len()];
    let mut scratch = Vec::new();
    for (c, conversation) in conversations.iter().enumerate() {
        let language = language_of(conversation);
        turns += conversation.turns.len();
        for (t, turn) in conversation.turns.iter().enumerate() {
            if turn.role != Role::Customer {
                continue;
            }
            let nfc = text::nfc(&turn.text);
            for sentence in units::sentences(&nfc) {
                let lower = sentence.to_lowercase();
                let kind = units::kind(&lower);
                if kind == Kind::Other {
                    terms::terms(&lower, &mut scratch);
                    for t in scratch.iter().filter(|t| t.can_head()) {
                        *background[language].entry(*t).or_default() += 1;
                    }
                    background_sentences[language] += 1;
                    continue;
                }
                sentences += 1;
                let language = language_of_sentence(&lower, language);
                let n = *index.entry((language, lower)).or_insert_with_key(|(_, lower)| {
                    let mut found = Vec::new();
                    terms::terms(lower, &mut found);
                    phrases.push(Phrase {
                        display: sentence.to_owned(),
                        language,
                        kinds: [0, 0],
                        said: Vec::new(),
                        terms: found,
                    });
                    phrases.len() - 1
                });
                let p = &mut phrases[n];
                p.kinds[usize::from(kind == Kind::Question)] += 1;
                if p.said.last() != Some(&(c as u32, t as u32)) {
                    p.said.push((c as u32, t as u32));
                }
            }
        }
        if c % 256 == 255 {
            progress(c + 1);
        }
    }
    progress(conversations.len());
    drop(index);

    // Group each language's phrasings apart: words of different languages are different terms anyway.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut heads: Vec<Option<Term>> = Vec::new();
    let mut leftovers: Vec<usize> = Vec::new();
    for language in 0..LANGUAGES.len() {
        let mine: Vec<usize> = (0..phrases.len()).filter(|&p| phrases[p].language == language).collect();
        let items: Vec<Item<'_>> =
            mine.iter().map(|&p| Item { terms: &phrases[p].terms, weight: phrases[p].said.len() as u32 }).collect();
        let assigned = cluster::group(&items, options.thresholds);
        let first = groups.len();
        for (k, g) in assigned.into_iter().enumerate() {
            match g {
                Some(g) => {
                    while groups.len() <= first + g {
                        groups.push(Vec::new());
                    }
                    groups[first + g].push(mine[k]);
                }
                None => leftovers.push(mine[k]),
            }
        }
        let background = Background { df: &background[language], sentences: background_sentences[language] };
        heads.extend(merge_by_head(&mut groups[first..], &phrases, &background));
    }

    let mut grouped_by = "local".to_owned();
    let mut notes = Vec::new();
    let (threshold, budget) = (options.embedding_threshold, options.embedding_texts);
    match space::join(&mut groups, &mut heads, &leftovers, &phrases, model, threshold, budget) {
        Ok(Some(method)) => grouped_by = format!("local+{method}"),
        Ok(None) => {}
        Err(why) => notes.push(format!("sentences were grouped by their words alone: {why}")),
    }

    // Known objections worded apart, in one language, are one topic.
    let taxonomy = TopicTaxonomy::builtin();
    let known: Vec<Option<String>> = groups.iter().map(|g| known_topic(taxonomy, &phrases, g)).collect();
    let mut merged: BTreeMap<(usize, String), usize> = BTreeMap::new();
    let mut keep: Vec<bool> = vec![true; groups.len()];
    for g in 0..groups.len() {
        let Some(topic) = &known[g] else { continue };
        let Some(language) = groups[g].first().map(|&p| phrases[p].language) else { continue };
        match merged.get(&(language, topic.clone())).copied() {
            // The larger absorbs the smaller, so the topic keeps the head (and so the id) of most of its sentences.
            Some(into) => {
                let weight = |g: &Vec<usize>| g.iter().map(|&p| phrases[p].said.len()).sum::<usize>();
                let (big, small) = if weight(&groups[g]) > weight(&groups[into]) { (g, into) } else { (into, g) };
                let moved = std::mem::take(&mut groups[small]);
                groups[big].extend(moved);
                keep[small] = false;
                merged.insert((language, topic.clone()), big);
            }
            None => {
                merged.insert((language, topic.clone()), g);
            }
        }
    }

    let weeks = all_weeks(conversations);
    let mut topics: Vec<Topic> = Vec::new();
    let mut assigned_sentences = 0usize;
    for (g, members) in groups.iter().enumerate() {
        if !keep[g] || members.is_empty() {
            continue;
        }
        let mut raised: Vec<(u32, u32)> = members.iter().flat_map(|&p| phrases[p].said.iter().copied()).collect();
        raised.sort_unstable();
        raised.dedup();
        let mut in_conversations: Vec<u32> = raised.iter().map(|(c, _)| *c).collect();
        in_conversations.dedup();
        if in_conversations.len() < options.min_conversations {
            continue;
        }
        assigned_sentences += members.iter().map(|&p| phrases[p].kinds.iter().sum::<u32>() as usize).sum::<usize>();
        let identity = Identity { known: known[g].as_deref(), head: heads[g] };
        topics.push(topic(conversations, &phrases, members, raised, identity, &weeks, options));
    }
    topics.sort_by(|a, b| b.conversations.cmp(&a.conversations).then(a.id.cmp(&b.id)));
    Mined {
        conversations: conversations.len(),
        turns,
        sentences,
        unassigned: sentences - assigned_sentences,
        topics,
        grouped_by,
        notes,
    }
}

/// Words said outside questions and objections, in one language.
struct Background<'a> {
    df: &'a HashMap<Term, u32>,
    sentences: u32,
}

/// Groups of one language that share their head word are one topic: "how long does onboarding take" and "what
/// does the onboarding process look like" share only "onboarding", too little for likeness, but it is the word
/// both are about. A group's head is the word most said across the language's questions and objections among
/// those in at least half of the group's sentences and said at least as often, relatively, there as in small talk.
/// Returns each group's head (`None` for a group without one, or merged into another).
fn merge_by_head(groups: &mut [Vec<usize>], phrases: &[Phrase], background: &Background<'_>) -> Vec<Option<Term>> {
    let mut df: HashMap<Term, u64> = HashMap::new();
    let mut units = 0u64;
    for p in groups.iter().flatten() {
        let said = phrases[*p].said.len() as u64;
        units += said;
        for t in phrases[*p].terms.iter().filter(|t| t.can_head()) {
            *df.entry(*t).or_default() += said;
        }
    }
    let topical = |t: &Term| {
        let here = df.get(t).copied().unwrap_or(0) as f64 / units.max(1) as f64;
        let there = background.df.get(t).copied().unwrap_or(0) as f64 / f64::from(background.sentences.max(1));
        here >= there
    };
    let mut by_head: HashMap<Term, usize> = HashMap::new();
    let mut heads = vec![None; groups.len()];
    for g in 0..groups.len() {
        let total: u64 = groups[g].iter().map(|&p| phrases[p].said.len() as u64).sum();
        let mut coverage: HashMap<Term, u64> = HashMap::new();
        for &p in &groups[g] {
            for t in phrases[p].terms.iter().filter(|t| t.can_head()) {
                *coverage.entry(*t).or_default() += phrases[p].said.len() as u64;
            }
        }
        let head = coverage
            .into_iter()
            .filter(|(t, covered)| covered * 2 >= total && topical(t))
            .map(|(t, _)| (df.get(&t).copied().unwrap_or(0), std::cmp::Reverse(t)))
            .max()
            .map(|(_, std::cmp::Reverse(t))| t);
        let Some(head) = head else { continue };
        match by_head.get(&head) {
            Some(&into) => {
                let moved = std::mem::take(&mut groups[g]);
                groups[into].extend(moved);
            }
            None => {
                by_head.insert(head, g);
                heads[g] = Some(head);
            }
        }
    }
    heads
}

/// What names a topic from one mining to the next: the word it is about, else the known objection it is, else
/// (neither) its most said sentence. More conversations rarely change the first two, so a topic's id, and the
/// edits keyed by it, stay. (Whether a group is a known objection is a vote of its sentences that can tip
/// either way as they come in; its head word is steadier.)
#[derive(Clone, Copy)]
struct Identity<'a> {
    known: Option<&'a str>,
    head: Option<Term>,
}

/// The shipped taxonomy's topic of a group: the one most of its most said phrasings are.
fn known_topic(taxonomy: &TopicTaxonomy, phrases: &[Phrase], group: &[usize]) -> Option<String> {
    let mut top: Vec<usize> = group.to_vec();
    top.sort_by(|&a, &b| phrases[b].said.len().cmp(&phrases[a].said.len()).then(a.cmp(&b)));
    top.truncate(5);
    let mut votes: BTreeMap<String, usize> = BTreeMap::new();
    for &p in &top {
        if let Some(m) = taxonomy.classify(&phrases[p].display) {
            *votes.entry(m.topic.id.clone()).or_default() += 1;
        }
    }
    let (id, n) = votes.into_iter().max_by_key(|(_, n)| *n)?;
    (n * 2 > top.len()).then_some(id)
}

#[allow(clippy::too_many_arguments)]
fn topic(
    conversations: &[Conversation],
    phrases: &[Phrase],
    members: &[usize],
    raised: Vec<(u32, u32)>,
    identity: Identity<'_>,
    weeks: &[i64],
    options: &Options,
) -> Topic {
    let mut by_use: Vec<usize> = members.to_vec();
    by_use.sort_by(|&a, &b| phrases[b].said.len().cmp(&phrases[a].said.len()).then(a.cmp(&b)));
    let head = &phrases[by_use[0]];
    let language = LANGUAGES[head.language].to_owned();
    let questions: u32 = members.iter().map(|&p| phrases[p].kinds[1]).sum();
    let objections: u32 = members.iter().map(|&p| phrases[p].kinds[0]).sum();
    let kind = if objections >= questions { Kind::Objection } else { Kind::Question };
    let known = identity.known;
    let label = label_of(&head.display);
    let taxonomy = TopicTaxonomy::builtin();
    let known_label =
        known.and_then(|id| taxonomy.topics().iter().find(|t| t.id == id)).map(|t| t.label(Language::En).to_owned());
    let label_en = match (known_label, head.language) {
        (Some(l), _) => l,
        (None, 0) => label.clone(),
        (None, _) => {
            let said = by_use.iter().take(5).map(|&p| phrases[p].display.as_str());
            match glossary::english_name(said) {
                Some(name) => name.to_owned(),
                None => format!("({language}) {label}"),
            }
        }
    };
    let mut centre: HashMap<Term, f32> = HashMap::new();
    for &p in members {
        let n = phrases[p].terms.len().max(1) as f32;
        for t in &phrases[p].terms {
            *centre.entry(*t).or_default() += phrases[p].said.len() as f32 / n.sqrt();
        }
    }
    let norm = centre.values().map(|w| w * w).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    let mut centre: Vec<(Term, f32)> = centre.into_iter().map(|(t, w)| (t, w / norm)).collect();
    centre.sort_unstable_by_key(|(t, _)| *t);
    let mut key = tutti_core::hash::Fnv1a::new();
    key.write(language.as_bytes());
    match (identity.head, known) {
        (Some(term), _) => key.write(b"head:").write(&term.0.to_le_bytes()),
        (None, Some(id)) => key.write(b"known:").write(id.as_bytes()),
        (None, None) => key.write(b"said:").write(head.display.to_lowercase().as_bytes()),
    };
    let mut topic = Topic {
        id: format!("t{:012x}", key.finish() >> 16),
        label,
        label_en,
        language,
        kind,
        conversations: 0,
        turns: 0,
        win_rate: wilson(0, 0),
        trend: Vec::new(),
        examples: by_use.iter().take(options.examples).map(|&p| phrases[p].display.clone()).collect(),
        taxonomy: known.map(str::to_owned),
        raised,
        centre,
    };
    restat(&mut topic, conversations, weeks);
    topic
}

/// A topic's counts, win rate and trend, from where it was raised.
fn restat(topic: &mut Topic, conversations: &[Conversation], weeks: &[i64]) {
    topic.raised.sort_unstable();
    topic.raised.dedup();
    let mut in_conversations: Vec<u32> = topic.raised.iter().map(|(c, _)| *c).collect();
    in_conversations.dedup();
    let (mut won, mut decided) = (0u64, 0u64);
    let mut per_week: HashMap<i64, u64> = HashMap::new();
    let first = weeks.first().copied().unwrap_or(i64::MIN);
    for &c in &in_conversations {
        let conversation = &conversations[c as usize];
        match conversation.outcome {
            Outcome::Won => (won, decided) = (won + 1, decided + 1),
            Outcome::Lost => decided += 1,
            Outcome::Open => {}
        }
        if let Some(at) = conversation.started_at {
            *per_week.entry(week_of(at).max(first)).or_default() += 1;
        }
    }
    topic.conversations = in_conversations.len() as u64;
    topic.turns = topic.raised.len() as u64;
    topic.win_rate = wilson(won, decided);
    topic.trend = weeks
        .iter()
        .map(|w| Week { week: day_text(*w), conversations: per_week.get(w).copied().unwrap_or(0) })
        .collect();
}

/// Where a topic was raised: (conversation, turn).
type Raised = (u32, u32);

/// Splits off topic `from`'s sentences that hold `word` (a person's edit; in lower case, Vietnamese also without
/// marks) into a topic of their own, named after it. False when the topic is not in this run or no sentence, or
/// every sentence, holds the word.
pub fn split_topic(mined: &mut Mined, conversations: &[Conversation], from: &str, word: &str) -> bool {
    let Some(at) = mined.topics.iter().position(|t| t.id == from) else { return false };
    let word = text::normalize(word.trim());
    if word.is_empty() {
        return false;
    }
    let folded = text::fold(&word);
    let holds = |(c, t): &(u32, u32)| {
        let said = text::normalize(&conversations[*c as usize].turns[*t as usize].text);
        said.contains(&word) || text::fold(&said).contains(&folded)
    };
    let (with, without): (Vec<Raised>, Vec<Raised>) = mined.topics[at].raised.iter().partition(|r| holds(r));
    if with.is_empty() || without.is_empty() {
        return false;
    }
    let weeks = all_weeks(conversations);
    let source = &mut mined.topics[at];
    source.raised = without;
    source.examples.retain(|e| !text::normalize(e).contains(&word));
    restat(source, conversations, &weeks);
    let mut key = tutti_core::hash::Fnv1a::new();
    key.write(source.id.as_bytes()).write(b"split:").write(word.as_bytes());
    let examples: Vec<String> = with
        .iter()
        .filter_map(|(c, t)| {
            let nfc = text::nfc(&conversations[*c as usize].turns[*t as usize].text);
            units::sentences(&nfc)
                .find(|s| text::normalize(s).contains(&word) || text::fold(&text::normalize(s)).contains(&folded))
                .map(str::to_owned)
        })
        .fold(Vec::new(), |mut kept, s| {
            if kept.len() < 3 && !kept.contains(&s) {
                kept.push(s);
            }
            kept
        });
    let mut split = Topic {
        id: format!("t{:012x}", key.finish() >> 16),
        label: format!("{} · {word}", source.label),
        label_en: format!("{} · {word}", source.label_en),
        language: source.language.clone(),
        kind: source.kind,
        conversations: 0,
        turns: 0,
        win_rate: wilson(0, 0),
        trend: Vec::new(),
        examples,
        taxonomy: source.taxonomy.clone(),
        raised: with,
        centre: source.centre.clone(),
    };
    restat(&mut split, conversations, &weeks);
    mined.topics.push(split);
    mined.topics.sort_by(|a, b| b.conversations.cmp(&a.conversations).then(a.id.cmp(&b.id)));
    true
}

/// Merges topic `from` into topic `into` (a person's edit): one topic with both's sentences, counted again.
/// False when either is not in this run.
pub fn merge_topics(mined: &mut Mined, conversations: &[Conversation], from: &str, into: &str) -> bool {
    let (Some(a), Some(b)) =
        (mined.topics.iter().position(|t| t.id == from), mined.topics.iter().position(|t| t.id == into))
    else {
        return false;
    };
    if a == b {
        return false;
    }
    let gone = mined.topics.remove(a);
    let b = if a < b { b - 1 } else { b };
    let weeks = all_weeks(conversations);
    let target = &mut mined.topics[b];
    target.raised.extend(gone.raised);
    for e in gone.examples {
        if target.examples.len() < 6 && !target.examples.contains(&e) {
            target.examples.push(e);
        }
    }
    let mut centre: HashMap<Term, f32> = target.centre.iter().copied().collect();
    for (t, w) in gone.centre {
        *centre.entry(t).or_default() += w;
    }
    let norm = centre.values().map(|w| w * w).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    target.centre = centre.into_iter().map(|(t, w)| (t, w / norm)).collect();
    target.centre.sort_unstable_by_key(|(t, _)| *t);
    restat(target, conversations, &weeks);
    mined.topics.sort_by(|a, b| b.conversations.cmp(&a.conversations).then(a.id.cmp(&b.id)));
    true
}

/// A sentence as a label: without its final punctuation, capitalised.
fn label_of(sentence: &str) -> String {
    let trimmed = sentence.trim_end_matches(['.', '。', '!', '！', ';', '；', '…']).trim();
    let mut chars = trimmed.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

const DAY: i64 = 86_400_000;

/// The Monday (UTC, as days since 1970-01-01) of the week holding `at`.
fn week_of(at: i64) -> i64 {
    let day = at.div_euclid(DAY);
    // 1970-01-01 was a Thursday: three days after a Monday.
    day - (day + 3).rem_euclid(7)
}

/// Every week from the first conversation's to the last's, so trends have their quiet weeks.
fn all_weeks(conversations: &[Conversation]) -> Vec<i64> {
    let (first, last) = conversations
        .iter()
        .filter_map(|c| c.started_at)
        .fold((i64::MAX, i64::MIN), |(lo, hi), at| (lo.min(week_of(at)), hi.max(week_of(at))));
    if first > last {
        return Vec::new();
    }
    // At most two years of weeks: older conversations still count, in the first week shown.
    let first = first.max(last - 104 * 7);
    (0..=(last - first) / 7).map(|w| first + w * 7).collect()
}

fn day_text(day: i64) -> String {
    match jiff::Timestamp::from_millisecond(day * DAY) {
        Ok(ts) => ts.to_zoned(jiff::tz::TimeZone::UTC).date().to_string(),
        Err(_) => String::new(),
    }
}
