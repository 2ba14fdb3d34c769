//! Story S10 through the real binary, with the example flows of `examples/s10-conversations` unchanged: a
//! thousand and a half calls imported through the API are mined at once; each topic raised in enough
//! conversations opens one card on the content board (Trello's stand-in); a second import's new counts become
//! comments on those cards, never new cards.

mod common;

use std::collections::BTreeSet;

use common::{ADMIN_TOKEN, Server, wait_until};
use serde_json::Value;
use tutti_connectors::testing::Vendors;
use tutti_conversations::synth::{self, Shape};

fn import(server: &Server, conversations: &[tutti_conversations::Conversation]) -> Value {
    let (status, summary) =
        common::import_conversations(server, ADMIN_TOKEN, &common::conversation_lines(conversations));
    assert_eq!(status, 200, "{summary}");
    summary
}

/// The topics the content board should have a card for: those raised in at least 20 conversations (the default
/// `task_threshold`).
fn counted(topics: &Value) -> BTreeSet<String> {
    topics
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["conversations"].as_u64().unwrap() >= 20)
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn s10_topics_from_calls_become_one_card_each_and_new_counts_comments() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let (server, _data) = common::start_story(&vendors, "s10-conversations", &[]);
    let shape = Shape { conversations: 1_500, turns: 8, seed: 21, start: 1_790_000_000_000, weeks: 6, noise: 0 };
    let (conversations, _) = synth::generate(&shape);
    let (first, second) = conversations.split_at(1_000);

    assert_eq!(import(&server, first)["changes"]["inserted"], 1_000);
    let wanted = counted(&server.admin("/api/v1/conversations/topics"));
    assert!(wanted.len() >= 10, "{wanted:?}");
    let cards = || -> Vec<Value> {
        vendors
            .received("trello")
            .into_iter()
            .filter(|r| r.status == 200 && r.path.ends_with("/cards"))
            .map(|r| r.body)
            .collect()
    };
    let comments = || {
        vendors
            .received("trello")
            .into_iter()
            .filter(|r| r.status == 200 && r.path.ends_with("/actions/comments"))
            .count()
    };
    wait_until("a card per topic", || cards().len() >= wanted.len());
    let opened = cards();
    let names: BTreeSet<&str> = opened.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!((opened.len(), comments()), (wanted.len(), 0), "one card per topic: {names:?}");
    assert!(names.contains("Customers objection: Price"), "{names:?}");
    assert!(opened.iter().all(|c| c["desc"].as_str().unwrap().contains("conversations")), "{opened:?}");
    let comments_before = comments();

    // More calls: the counts change, so each topic's card gets a comment; no card is opened twice.
    assert_eq!(import(&server, second)["changes"]["inserted"], 500);
    let now = counted(&server.admin("/api/v1/conversations/topics"));
    // More data may join two groups found apart before (the larger keeps its id), never rename a topic.
    assert!(
        now.is_subset(&wanted) && now.len() + 1 >= wanted.len(),
        "the same topics, by the same ids: {now:?} {wanted:?}"
    );
    wait_until("a comment per topic", || comments() >= comments_before + now.len());
    assert_eq!(cards().len(), opened.len(), "no new card");
    let latest = vendors.received("trello");
    let comment = latest.iter().rev().find(|r| r.path.ends_with("/actions/comments")).unwrap();
    assert!(comment.body["text"].as_str().unwrap().contains("Weekly:"), "{:?}", comment.body);
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
}
