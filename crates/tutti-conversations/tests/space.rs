//! Mining with a model beside the words: a provider's embeddings join what shares no word, and a model's
//! names replace the local ones only when they fit. The model here is a test's: a concept space (one dimension
//! per concept it knows, the rest a hash of the text), as a multilingual embedding model places a worry
//! however it is worded.

use serde_json::json;
use tutti_conversations::Conversation;
use tutti_conversations::mine::space::{Embedded, Labels, Model, ToLabel};
use tutti_conversations::mine::{self, Options, labels};

/// Security worded four ways that share no word the miner keeps.
const SECURITY: [&str; 4] = [
    "Can hackers break into the system?",
    "Is our customer list safe from thieves?",
    "Who else can read our private records?",
    "Does anything leak when staff download files?",
];
/// Onboarding worded three ways that share one word: the words alone find it.
const ONBOARDING: [&str; 3] =
    ["How long does onboarding take?", "Who runs the onboarding sessions?", "Is onboarding included for free?"];

fn conversation(n: usize, question: &str) -> Conversation {
    serde_json::from_value(json!({
        "id": format!("c{n}"),
        "started_at": "2026-11-02T09:00:00Z",
        "channel": "call",
        "outcome": if n.is_multiple_of(2) { "won" } else { "lost" },
        "turns": [
            {"speaker": "Rep", "role": "rep", "text": "Good morning, thanks for taking the call."},
            {"speaker": "Customer", "role": "customer", "text": format!("Morning. {question}")},
            {"speaker": "Rep", "role": "rep", "text": "Good question, let me explain."},
        ]
    }))
    .unwrap()
}

/// Questions asked once, about nothing the others are.
const ONE_OFF: [&str; 10] = [
    "Where did you park the van?",
    "Which colour matches our logo?",
    "When does the Hanoi office open?",
    "Are pets allowed at the venue?",
    "Who painted that mural downstairs?",
    "Is parking covered by the invoice?",
    "What brand of coffee do you serve?",
    "Can my nephew join the tour?",
    "Has the weather delayed shipping?",
    "Which trains reach the airport?",
];

/// Each security phrasing in 3 conversations (12 in all; 3 apiece is under the 5 a topic needs), each
/// onboarding one in 4, and ten one-off questions.
fn conversations() -> Vec<Conversation> {
    let mut all = Vec::new();
    for phrasing in SECURITY {
        for _ in 0..3 {
            all.push(conversation(all.len(), phrasing));
        }
    }
    for phrasing in ONBOARDING {
        for _ in 0..4 {
            all.push(conversation(all.len(), phrasing));
        }
    }
    for question in ONE_OFF {
        all.push(conversation(all.len(), question));
    }
    all
}

fn concept_vector(text: &str) -> Vec<f32> {
    let lower = text.to_lowercase();
    let security = ["hacker", "safe", "thie", "private", "leak", "secur"];
    let mut v = vec![0f32; 34];
    v[0] = security.iter().filter(|w| lower.contains(*w)).count() as f32;
    for k in 0..4 {
        let h = tutti_core::hash::Fnv1a::seeded(k).write(lower.as_bytes()).finish();
        v[1 + (h % 33) as usize] += if h >> 63 == 1 { 0.2 } else { -0.2 };
    }
    tutti_ai::embed::unit(v)
}

/// A model that embeds by concepts and names topics from a table, keeping what it was asked.
struct ConceptModel {
    down: bool,
    embedded: Vec<Vec<String>>,
    names: Vec<(String, String, String)>,
    asked: Vec<Vec<ToLabel>>,
}

impl Model for ConceptModel {
    fn embed(&mut self, texts: &[String]) -> Result<Option<Embedded>, String> {
        if self.down {
            return Err("the provider answered 503".into());
        }
        self.embedded.push(texts.to_vec());
        Ok(Some(Embedded {
            vectors: texts.iter().map(|t| concept_vector(t)).collect(),
            method: "test/concepts".into(),
        }))
    }

    fn label(&mut self, topics: &[ToLabel]) -> Result<Option<Labels>, String> {
        self.asked.push(topics.to_vec());
        Ok(Some(Labels { names: self.names.clone(), method: "test/namer".into() }))
    }
}

fn model() -> ConceptModel {
    ConceptModel { down: false, embedded: Vec::new(), names: Vec::new(), asked: Vec::new() }
}

#[test]
fn the_providers_space_finds_a_topic_whose_wordings_share_no_word() {
    let all = conversations();
    let options = Options::default();

    let local = mine::mine(&all, &options, &mut |_| {});
    assert_eq!(local.grouped_by, "local");
    let security_alone = |m: &mine::Mined| {
        m.topics.iter().find(|t| t.examples.iter().any(|e| SECURITY.iter().any(|s| e.contains(&s[..12])))).cloned()
    };
    assert!(security_alone(&local).is_none(), "the words alone find no security topic: {:#?}", local.topics);
    let onboarding = local.topics.iter().find(|t| t.label.to_lowercase().contains("onboarding")).unwrap();
    assert_eq!(onboarding.conversations, 12);

    let mut with = model();
    let mined = mine::mine_with(&all, &options, &mut with, &mut |_| {});
    assert_eq!(mined.grouped_by, "local+test/concepts");
    assert!(mined.notes.is_empty(), "{:?}", mined.notes);
    let security = security_alone(&mined).expect("one security topic in the provider's space");
    assert_eq!(security.conversations, 12, "every wording, counted once per conversation");
    assert_eq!(security.turns, 12);
    let onboarding = mined.topics.iter().find(|t| t.label.to_lowercase().contains("onboarding")).unwrap();
    assert_eq!(onboarding.conversations, 12, "the words' topic stays whole and apart");
    assert_ne!(onboarding.id, security.id);
    assert_eq!(mined.topics.len(), 2, "the one-off questions join nothing: {:#?}", mined.topics);
    // One request, within the budget, carrying the groups' phrasings.
    assert_eq!(with.embedded.len(), 1);
    assert!(with.embedded[0].len() <= options.embedding_texts);
    assert!(SECURITY.iter().all(|s| with.embedded[0].iter().any(|t| t == s)));

    // The provider down: the words' topics, and why.
    let mut down = ConceptModel { down: true, ..model() };
    let fallback = mine::mine_with(&all, &options, &mut down, &mut |_| {});
    assert_eq!(fallback.grouped_by, "local");
    assert!(security_alone(&fallback).is_none());
    assert_eq!(fallback.notes.len(), 1);
    assert!(fallback.notes[0].contains("503"), "{:?}", fallback.notes);

    // A budget too small for any group embeds nothing and changes nothing.
    let tiny = Options { embedding_texts: 0, ..Options::default() };
    let mut unused = model();
    let same = mine::mine_with(&all, &tiny, &mut unused, &mut |_| {});
    assert!(unused.embedded.is_empty() && same.grouped_by == "local");
}

#[test]
fn a_models_names_replace_the_local_ones_only_when_they_fit() {
    let all = conversations();
    let mut mined = mine::mine(&all, &Options::default(), &mut |_| {});
    let id = mined.topics[0].id.clone();
    let local_label = mined.topics[0].label.clone();

    // A name in the wrong script is refused; the topic keeps its local one, and the report says so.
    let mut wrong = model();
    wrong.names = vec![(id.clone(), "入职需要多久".into(), "Onboarding time".into())];
    let named = labels::name_topics(&mut mined, &mut wrong);
    assert_eq!(named.method, None);
    assert_eq!(mined.topics[0].label, local_label);
    assert!(named.notes[0].contains("1 topics kept their local names"), "{:?}", named.notes);
    // What the model was asked: the topic's id, language, kind and examples.
    let asked = &wrong.asked[0][0];
    assert_eq!((asked.id.as_str(), asked.language.as_str()), (id.as_str(), "en"));
    assert_eq!(asked.examples, mined.topics[0].examples);

    let mut right = model();
    right.names = vec![(id.clone(), "\"Onboarding time\"".into(), "Onboarding time".into())];
    let named = labels::name_topics(&mut mined, &mut right);
    assert_eq!(named.method.as_deref(), Some("test/namer"));
    assert_eq!(
        (mined.topics[0].label.as_str(), mined.topics[0].label_en.as_str()),
        ("Onboarding time", "Onboarding time")
    );
}
