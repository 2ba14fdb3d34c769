//! Conversations mined with a model configured, through the real binary: `[connectors.ai]` routes `embed` and
//! `label` to the OpenAI stand-in (which enforces OpenAI's documented request formats for "Create embeddings"
//! and "Create chat completion" with `response_format: json_schema`). The provider's embeddings find a topic
//! whose wordings share no word; the model's names replace the local ones where they fit; every call is on the
//! audit log without the customers' words; and with the provider down, the words alone group, and the mining
//! says why.

mod common;

use std::sync::Arc;

use common::{ADMIN_TOKEN, Server};
use serde_json::{Value, json};
use tutti_connectors::testing::{Reply, Vendors};
use tutti_conversations::Conversation;
use tutti_conversations::mine::space::{Embedded, Labels, Model, ToLabel};

/// Security worded four ways that share no word the miner keeps: 3 conversations each, under the 5 a topic
/// needs, so the words alone find no topic.
const SECURITY: [&str; 4] = [
    "Can hackers break into the system?",
    "Is our customer list safe from thieves?",
    "Who else can read our private records?",
    "Does anything leak when staff download files?",
];
const ONBOARDING: [&str; 3] =
    ["How long does onboarding take?", "Who runs the onboarding sessions?", "Is onboarding included for free?"];
const ONE_OFF: [&str; 6] = [
    "Where did you park the van?",
    "Which colour matches our logo?",
    "When does the Hanoi office open?",
    "Are pets allowed at the venue?",
    "What brand of coffee do you serve?",
    "Which trains reach the airport?",
];

fn conversation(n: usize, question: &str) -> Conversation {
    serde_json::from_value(json!({
        "id": format!("c{n}"),
        "started_at": "2026-11-02T09:00:00Z",
        "channel": "call",
        "outcome": if n.is_multiple_of(2) { "won" } else { "lost" },
        "customer": {"email": format!("buyer{n}@example.com")},
        "turns": [
            {"speaker": "Rep", "role": "rep", "text": "Good morning, thanks for taking the call."},
            {"speaker": "Customer", "role": "customer", "text": format!("Morning. {question}")},
            {"speaker": "Rep", "role": "rep", "text": "Good question, let me explain."},
        ]
    }))
    .unwrap()
}

fn conversations() -> Vec<Conversation> {
    let mut all = Vec::new();
    for (phrasings, times) in [(&SECURITY[..], 3), (&ONBOARDING[..], 4), (&ONE_OFF[..], 1)] {
        for p in phrasings {
            for _ in 0..times {
                all.push(conversation(all.len(), p));
            }
        }
    }
    all
}

/// The stand-in's embedding model: one dimension for security, whatever the words, and a hash of the text
/// spread over the rest.
fn concept(text: &str) -> Vec<f32> {
    let lower = text.to_lowercase();
    let mut v = vec![0f32; 34];
    v[0] = ["hacker", "safe", "thie", "private", "leak"].iter().filter(|w| lower.contains(*w)).count() as f32;
    for k in 0..4 {
        let h = tutti_core::hash::Fnv1a::seeded(k).write(lower.as_bytes()).finish();
        v[1 + (h % 33) as usize] += if h >> 63 == 1 { 0.2 } else { -0.2 };
    }
    v
}

/// The same space in the test, to know which topics the server will ask to have named.
struct SameSpace(Vec<ToLabel>);

impl Model for SameSpace {
    fn embed(&mut self, texts: &[String]) -> Result<Option<Embedded>, String> {
        let vectors = texts.iter().map(|t| tutti_ai::embed::unit(concept(t))).collect();
        Ok(Some(Embedded { vectors, method: "test".into() }))
    }

    fn label(&mut self, topics: &[ToLabel]) -> Result<Option<Labels>, String> {
        self.0 = topics.to_vec();
        Ok(None)
    }
}

fn get(server: &Server, path: &str) -> Value {
    let (status, body) = server.request("GET", path, Some(ADMIN_TOKEN));
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

#[test]
fn a_providers_embeddings_and_names_mine_what_the_words_miss() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    vendors.embed_with(Arc::new(concept));
    let server = Server::start_with_models(
        &vendors,
        &["embed", "label"],
        &[
            ("TUTTI_CONNECTORS__AI__PROVIDERS__OPENAI__EMBEDDING_MODEL", "text-embedding-3-small"),
            ("TUTTI_CONNECTORS__AI__PROVIDERS__OPENAI__RETRIES", "0"),
        ],
    );
    let all = conversations();

    // The topics the server will find, and so ask to have named: security (in the provider's space) and
    // onboarding. The model names security well, and onboarding in the wrong script.
    let mut same = SameSpace(Vec::new());
    let mined = tutti_conversations::mine::mine_with(&all, &Default::default(), &mut same, &mut |_| {});
    tutti_conversations::mine::labels::name_topics(&mut { mined }, &mut same);
    assert_eq!(same.0.len(), 2, "{:?}", same.0);
    let id_of = |word: &str| same.0.iter().find(|t| t.examples.iter().any(|e| e.contains(word))).unwrap().id.clone();
    let (security, onboarding) = (id_of("hackers"), id_of("onboarding"));
    let names = json!({"labels": [
        {"id": security, "label": "Data security worries", "label_en": "Data security worries"},
        {"id": onboarding, "label": "入职时间", "label_en": "Onboarding time"},
    ]});
    vendors.reply([Reply::Text(names.to_string())]);

    let (status, summary) = common::import_conversations(&server, ADMIN_TOKEN, &common::conversation_lines(&all));
    assert_eq!((status, summary["changes"]["inserted"].as_u64()), (200, Some(all.len() as u64)), "{summary}");
    let mining = get(&server, "/api/v1/conversations/mining");
    assert_eq!(mining["grouped_by"], "local+openai/text-embedding-3-small", "{mining}");
    assert_eq!(mining["labelled_by"], "openai/gpt-4o-mini", "{mining}");
    assert_eq!(mining["notes"], json!(["1 topics kept their local names: the model's were missing or unfit"]));
    assert_eq!((mining["conversations"].as_u64(), mining["topics"].as_u64()), (Some(30), Some(2)), "{mining}");

    let topics = get(&server, "/api/v1/conversations/topics");
    let topic = |id: &str| topics.as_array().unwrap().iter().find(|t| t["id"] == id).cloned().unwrap();
    let found = topic(&security);
    assert_eq!((found["conversations"].as_u64(), found["turns"].as_u64()), (Some(12), Some(12)), "{found}");
    assert_eq!(
        (found["label"].as_str(), found["label_en"].as_str()),
        (Some("Data security worries"), Some("Data security worries"))
    );
    let kept = topic(&onboarding);
    assert_eq!(kept["conversations"], 12);
    assert_eq!(kept["label"], "How long does onboarding take?", "a name in the wrong script is not shown");

    // What the stand-in received: the groups' phrasings in OpenAI's embeddings form, and one chat request
    // whose answer had to follow the labels' schema.
    let sent = vendors.received("openai");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
    let embeddings: Vec<_> = sent.iter().filter(|r| r.path.ends_with("/v1/embeddings")).collect();
    assert_eq!(embeddings.len(), 1);
    assert_eq!(embeddings[0].body["model"], "text-embedding-3-small");
    let input: Vec<&str> = embeddings[0].body["input"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(SECURITY.iter().all(|s| input.contains(s)), "{input:?}");
    let chats: Vec<_> = sent.iter().filter(|r| r.path.ends_with("/chat/completions")).collect();
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].body["response_format"]["json_schema"]["name"], "topic_labels");
    assert!(chats[0].body["messages"][1]["content"].as_str().unwrap().contains("Can hackers break into the system?"));

    // The audit log: both calls, by whom and at what cost, the customers' words only as a hash.
    let audit = get(&server, "/api/v1/audit?kind=model_call");
    let records = audit["records"].as_array().unwrap();
    let tasks: Vec<&str> = records.iter().filter_map(|r| r["detail"]["task"].as_str()).collect();
    assert!(tasks.contains(&"embed") && tasks.contains(&"label"), "{tasks:?}");
    assert!(!audit.to_string().contains("hackers"), "customers' words are not on the audit log");

    // The provider down: one more conversation changes the data; the words alone group, and the mining says why.
    vendors.set_down("openai", true);
    let extra = common::conversation_lines(&[conversation(99, "Where is the nearest bank?")]);
    let (status, _) = common::import_conversations(&server, ADMIN_TOKEN, &extra);
    assert_eq!(status, 200);
    let mining = get(&server, "/api/v1/conversations/mining");
    assert_eq!((mining["grouped_by"].as_str(), mining["labelled_by"].as_str()), (Some("local"), Some("local")));
    let notes = mining["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().starts_with("sentences were grouped by their words alone")),
        "{notes:?}"
    );
    assert!(notes.iter().any(|n| n.as_str().unwrap().starts_with("topics were named locally")), "{notes:?}");
    let topics = get(&server, "/api/v1/conversations/topics");
    assert!(topics.as_array().unwrap().iter().all(|t| t["id"] != security.as_str()), "{topics}");
    drop(server);
    drop(runtime);
}
