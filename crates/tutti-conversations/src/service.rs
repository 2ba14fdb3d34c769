//! What the CLI and the API do with conversations: import them into the store, mine them (with people's topic
//! edits laid over the result) and keep the result, and answer the best replies for a customer's words.

use std::io::BufRead;

use serde::{Deserialize, Serialize};
use tutti_core::time::Millis;

use crate::import::{self, Format, JsonLines, Rejected};
use crate::mine::space::Model;
use crate::mine::{self, Kind, Mined, Topic, scripts};
use crate::store::{Changes, ConversationStore, Result};

/// What an import did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub changes: Changes,
    /// Lines or files not imported, with why (at most [`REJECTED_SHOWN`] listed; `rejected_count` has them all).
    pub rejected: Vec<Rejected>,
    pub rejected_count: u64,
}

/// Rejections listed in a summary; a file of a million bad lines still answers in a page.
pub const REJECTED_SHOWN: usize = 100;

impl ImportSummary {
    fn reject(&mut self, r: Rejected) {
        self.rejected_count += 1;
        if self.rejected.len() < REJECTED_SHOWN {
            self.rejected.push(r);
        }
    }

    /// Another import's summary added to this one (several files imported as one), the listed rejections still
    /// bounded.
    pub fn absorb(&mut self, other: ImportSummary) {
        self.changes.add(other.changes);
        let unlisted = other.rejected_count - other.rejected.len() as u64;
        for r in other.rejected {
            self.reject(r);
        }
        self.rejected_count += unlisted;
    }
}

/// Imports JSON lines, 500 conversations a transaction. `progress` is told the bytes read so far.
pub fn import_lines(
    store: &ConversationStore,
    input: impl BufRead,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportSummary> {
    let mut reader = JsonLines::new(input);
    let mut summary = ImportSummary::default();
    while let Some(chunk) = reader.next_chunk(500) {
        summary.changes.add(store.put(&chunk.conversations)?);
        for r in chunk.rejected {
            summary.reject(r);
        }
        progress(reader.bytes_read());
    }
    Ok(summary)
}

/// Imports one transcript (text, WebVTT or SRT); a file with a problem is rejected whole, with the reason.
pub fn import_transcript(
    store: &ConversationStore,
    format: Format,
    bytes: &[u8],
    options: &import::transcript::Options,
) -> Result<ImportSummary> {
    let mut summary = ImportSummary::default();
    match import::transcript::read(format, bytes, options) {
        Ok(conversation) => summary.changes = store.put(std::slice::from_ref(&conversation))?,
        Err(reason) => summary.reject(Rejected { line: 0, id: Some(options.id.clone()), reason }),
    }
    Ok(summary)
}

/// A mining run as it is kept and shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub mined_at: Millis,
    pub conversations: usize,
    pub turns: usize,
    pub sentences: usize,
    pub unassigned: usize,
    pub topics: Vec<TopicView>,
    pub scripts: Vec<scripts::TopicScripts>,
    /// Each topic's centre, for reading new text against (`suggest`).
    #[serde(default)]
    pub centres: Vec<(String, Vec<(u64, f32)>)>,
    /// What grouped the sentences: `local` (their words), or `local+<provider>/<model>` (a provider's
    /// embeddings too).
    #[serde(default = "local")]
    pub grouped_by: String,
    /// What named the topics (people's names aside): `local`, or the model's `<provider>/<model>`.
    #[serde(default = "local")]
    pub labelled_by: String,
    /// Why a configured model was not used, where it was not.
    #[serde(default)]
    pub notes: Vec<String>,
}

fn local() -> String {
    "local".to_owned()
}

/// A topic as the CLI's `--format json` and the API print it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopicView {
    pub id: String,
    pub label: String,
    pub label_en: String,
    pub language: String,
    pub kind: Kind,
    pub conversations: u64,
    pub turns: u64,
    /// Won among the conversations raising it that ended won or lost; `null` when none has ended.
    pub win_rate: Option<f64>,
    pub win_rate_interval: Option<[f64; 2]>,
    pub trend: Vec<mine::Week>,
    pub examples: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxonomy: Option<String>,
}

impl From<&Topic> for TopicView {
    fn from(t: &Topic) -> TopicView {
        let decided = t.win_rate.trials > 0;
        TopicView {
            id: t.id.clone(),
            label: t.label.clone(),
            label_en: t.label_en.clone(),
            language: t.language.clone(),
            kind: t.kind,
            conversations: t.conversations,
            turns: t.turns,
            win_rate: decided.then_some(t.win_rate.rate),
            win_rate_interval: decided.then_some([t.win_rate.low, t.win_rate.high]),
            trend: t.trend.clone(),
            examples: t.examples.clone(),
            taxonomy: t.taxonomy.clone(),
        }
    }
}

/// The name of the kept report in the store.
const REPORT: &str = "mined";

/// Mines every stored conversation (grouping also in `model`'s space and letting it name the topics, when it
/// has a provider for either), lays people's edits over the topics (merges, labels, splits, and the labels of
/// split-off topics: a person's name beats a model's), works out the golden scripts, and keeps the result.
/// `progress` is told how many conversations have been read.
pub fn mine(
    store: &ConversationStore,
    options: &mine::Options,
    script_options: &scripts::Options,
    model: &mut dyn Model,
    now: Millis,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report> {
    let crate::store::ForMining { conversations, edits, generation } = store.for_mining()?;
    let total = conversations.len();
    let mut mined: Mined = mine::mine_with(&conversations, options, model, &mut |n| progress(n, total));
    let named = mine::labels::name_topics(&mut mined, model);
    let mut notes = std::mem::take(&mut mined.notes);
    notes.extend(named.notes);
    for edit in &edits {
        if let Some(into) = &edit.merged_into {
            mine::merge_topics(&mut mined, &conversations, &edit.topic, into);
        }
    }
    relabel(&mut mined, &edits);
    for edit in &edits {
        if let Some(word) = &edit.split_on {
            mine::split_topic(&mut mined, &conversations, &edit.topic, word);
        }
    }
    relabel(&mut mined, &edits);
    let scripts = scripts::scripts(&conversations, &mined, script_options);
    let report = Report {
        mined_at: now,
        conversations: mined.conversations,
        turns: mined.turns,
        sentences: mined.sentences,
        unassigned: mined.unassigned,
        topics: mined.topics.iter().map(TopicView::from).collect(),
        scripts,
        centres: mined
            .topics
            .iter()
            .map(|t| (t.id.clone(), t.centre.iter().map(|(term, w)| (term.0, *w)).collect()))
            .collect(),
        grouped_by: mined.grouped_by,
        labelled_by: named.method.unwrap_or_else(local),
        notes,
    };
    let body = serde_json::to_string(&report).map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?;
    // A mining that read the store before an import or an edit is answered but not kept: the next read mines
    // what is there now.
    store.put_snapshot(REPORT, &body, generation)?;
    Ok(report)
}

/// People's names for topics, laid over the mined ones.
fn relabel(mined: &mut Mined, edits: &[crate::store::TopicEdit]) {
    for edit in edits {
        if let Some(topic) = mined.topics.iter_mut().find(|t| t.id == edit.topic) {
            if let Some(label) = &edit.label {
                topic.label = label.clone();
            }
            if let Some(label) = &edit.label_en {
                topic.label_en = label.clone();
            }
        }
    }
}

/// The kept report, if conversations were mined since the last import or erasure that cleared it.
pub fn kept_report(store: &ConversationStore) -> Result<Option<Report>> {
    match store.snapshot(REPORT)? {
        Some(body) => Ok(serde_json::from_str(&body).ok()),
        None => Ok(None),
    }
}

/// A topic a customer's words raise, and the replies that win for it.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    /// The customer's sentence this answers.
    pub sentence: String,
    pub topic: TopicView,
    /// How close the sentence is to the topic (cosine, 0 to 1).
    pub score: f32,
    pub replies: Vec<scripts::Script>,
}

/// For each question or objection in `text`, the topic it is closest to (in its language) and that topic's
/// replies, winners first. Sentences close to no topic get nothing.
pub fn suggest(report: &Report, text: &str) -> Vec<Suggestion> {
    let normal = tutti_ai::text::normalize(text);
    let language = match tutti_ai::text::detect(&normal) {
        tutti_ai::text::Language::En => "en",
        tutti_ai::text::Language::Vi => "vi",
        tutti_ai::text::Language::Zh => "zh",
        _ => "other",
    };
    let mut terms = Vec::new();
    let mut out: Vec<Suggestion> = Vec::new();
    for sentence in mine::units::sentences(&normal) {
        if mine::units::kind(sentence) == Kind::Other {
            continue;
        }
        mine::terms::terms(sentence, &mut terms);
        if terms.is_empty() {
            continue;
        }
        let weight = 1.0 / (terms.len() as f32).sqrt();
        let best = report
            .topics
            .iter()
            .zip(&report.centres)
            .filter(|(t, _)| t.language == language)
            .map(|(t, (_, centre))| {
                let dot: f32 = terms
                    .iter()
                    .filter_map(|term| centre.binary_search_by_key(&term.0, |(h, _)| *h).ok().map(|i| centre[i].1))
                    .sum();
                (t, dot * weight)
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((topic, score)) = best else { continue };
        if score < SUGGEST_THRESHOLD || out.iter().any(|s| s.topic.id == topic.id) {
            continue;
        }
        let replies =
            report.scripts.iter().find(|s| s.topic == topic.id).map(|s| s.scripts.clone()).unwrap_or_default();
        out.push(Suggestion { sentence: sentence.to_owned(), topic: topic.clone(), score, replies });
    }
    out
}

/// How close a sentence must be to a topic's centre to be answered with its replies.
const SUGGEST_THRESHOLD: f32 = 0.25;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mine::space::Offline;
    use crate::store::{CONVERSATIONS_FILE, TopicEdit};
    use crate::synth::{self, Shape};

    #[test]
    fn summaries_add_up_and_keep_their_list_bounded() {
        let many = |n: u64| {
            let mut s = ImportSummary::default();
            s.changes.inserted = n;
            for line in 0..n {
                s.reject(Rejected { line, id: None, reason: "bad".into() });
            }
            s
        };
        let mut total = many(60);
        total.absorb(many(150));
        assert_eq!((total.changes.inserted, total.rejected_count), (210, 210));
        assert_eq!(total.rejected.len(), REJECTED_SHOWN);
    }

    #[test]
    fn mined_edited_kept_and_suggested() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConversationStore::open(&dir.path().join(CONVERSATIONS_FILE)).unwrap();
        let (conversations, _) = synth::generate(&Shape {
            conversations: 1_500,
            turns: 12,
            seed: 3,
            start: 1_790_000_000_000,
            weeks: 6,
            noise: 0,
        });
        let lines: String = conversations.iter().map(|c| serde_json::to_string(c).unwrap() + "\n").collect();
        let bad = "{\"id\":\"broken\",\"turns\":[]}\nnot json\n";
        let summary = import_lines(&store, std::io::Cursor::new(format!("{lines}{bad}")), &mut |_| {}).unwrap();
        assert_eq!((summary.changes.inserted, summary.rejected_count), (1_500, 2));
        assert_eq!(summary.rejected[0].id.as_deref(), Some("broken"));
        let again = import_lines(&store, std::io::Cursor::new(lines), &mut |_| {}).unwrap();
        assert_eq!(again.changes.unchanged, 1_500, "importing again changes nothing");

        let report = mine(&store, &Default::default(), &Default::default(), &mut Offline, 0, &mut |_, _| {}).unwrap();
        let price =
            report.topics.iter().find(|t| t.language == "vi" && t.taxonomy.as_deref() == Some("price")).unwrap();
        let warranty = report.topics.iter().find(|t| t.examples.iter().any(|e| e.contains("bảo hành"))).unwrap();
        let (price_id, warranty_id, price_count, warranty_count) =
            (price.id.clone(), warranty.id.clone(), price.conversations, warranty.conversations);

        // Suggest: a customer's words in Vietnamese get the price topic's winning reply first.
        let got = suggest(&report, "Dạ mà giá bên em cao quá, anh chưa có ngân sách đâu");
        assert_eq!(got.len(), 1, "{got:#?}");
        assert_eq!(got[0].topic.id, price_id);
        assert!(got[0].replies[0].winner && got[0].replies[0].reply.contains("gói năm"), "{:#?}", got[0].replies);
        assert!(suggest(&report, "Dạ vâng, em cảm ơn.").is_empty(), "small talk raises no topic");

        // People's edits are kept on the next run: a label, and one topic merged into another.
        store
            .put_edit(&TopicEdit {
                topic: price_id.clone(),
                label: Some("Giá cao".into()),
                label_en: Some("Price too high".into()),
                merged_into: None,
                split_on: None,
                by: "mai".into(),
                at: 1,
            })
            .unwrap();
        store
            .put_edit(&TopicEdit {
                topic: warranty_id.clone(),
                label: None,
                label_en: None,
                merged_into: Some(price_id.clone()),
                split_on: None,
                by: "mai".into(),
                at: 2,
            })
            .unwrap();
        let report = mine(&store, &Default::default(), &Default::default(), &mut Offline, 1, &mut |_, _| {}).unwrap();
        let price = report.topics.iter().find(|t| t.id == price_id).unwrap();
        assert_eq!((price.label.as_str(), price.label_en.as_str()), ("Giá cao", "Price too high"));
        assert!(report.topics.iter().all(|t| t.id != warranty_id), "merged away");
        assert!(
            price.conversations > price_count.max(warranty_count)
                && price.conversations <= price_count + warranty_count
        );
        assert_eq!(kept_report(&store).unwrap().unwrap().mined_at, 1);

        // A split: the price topic's sentences about the budget become a topic of their own, kept too.
        let before = price.conversations;
        store
            .put_edit(&TopicEdit {
                topic: price_id.clone(),
                label: None,
                label_en: None,
                merged_into: None,
                split_on: Some("ngân sách".into()),
                by: "mai".into(),
                at: 3,
            })
            .unwrap();
        let report = mine(&store, &Default::default(), &Default::default(), &mut Offline, 2, &mut |_, _| {}).unwrap();
        let price = report.topics.iter().find(|t| t.id == price_id).unwrap();
        let budget = report.topics.iter().find(|t| t.label == "Giá cao · ngân sách").expect("the split-off topic");
        assert!(budget.conversations > 0 && price.conversations < before, "{} of {before}", price.conversations);
        assert!(
            budget
                .examples
                .iter()
                .all(|e| e.to_lowercase().contains("ngân sách") || e.to_lowercase().contains("ngan sach")),
            "{:?}",
            budget.examples
        );
        assert!(price.examples.iter().all(|e| !e.to_lowercase().contains("ngân sách")), "{:?}", price.examples);
    }
}
