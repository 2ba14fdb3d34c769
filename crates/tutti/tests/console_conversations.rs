//! The console's Conversations page: empty before any import, then the topics of imported calls with their
//! weekly bars, win rate, what customers said and the reply that wins, every value escaped; only signed-in
//! people see it.

mod common;

use common::browser::{get, signed_in};
use common::{ADMIN_TOKEN, Server};
use tutti_conversations::synth::{self, Shape};

#[test]
fn topics_are_shown_with_their_trend_and_winning_reply_escaped() {
    let server = Server::start();
    let (viewer, _) = signed_in(&server, "an@shop.vn", "viewer");
    let page = get(&server, "/conversations", &[]);
    assert_eq!(page.location.as_deref(), Some("/sign-in"), "signed-in people only");
    let page = get(&server, "/conversations", &[("Cookie", &viewer)]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("No topics yet"), "{}", page.body);

    let shape = Shape { conversations: 1_500, turns: 8, seed: 9, start: 1_790_000_000_000, weeks: 6, noise: 0 };
    let (mut conversations, _) = synth::generate(&shape);
    // A hostile question, asked often enough to be a topic of its own: shown as text, never as markup.
    for c in conversations.iter_mut().take(40) {
        c.turns.push(tutti_conversations::Turn {
            speaker: "Customer".into(),
            role: tutti_conversations::Role::Customer,
            at: None,
            text: "Is the <script>alert(1)</script> widget safe?".into(),
        });
    }
    let (status, summary) =
        common::import_conversations(&server, ADMIN_TOKEN, &common::conversation_lines(&conversations));
    assert_eq!(status, 200, "{summary}");

    let page = get(&server, "/conversations", &[("Cookie", &viewer)]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("1500 conversations"), "{}", page.body);
    assert!(page.body.contains("ntegrat"), "the integration question: {}", page.body);
    assert!(page.body.contains("class=\"trend\""), "weeks drawn as bars");
    assert!(page.body.contains("Reply that wins"), "{}", page.body);
    assert!(page.body.contains("gói năm"), "the Vietnamese price topic's winning reply: {}", page.body);
    assert!(!page.body.contains("<script>alert(1)"), "escaped");
    assert!(page.body.contains("Is the &#60;script&#62;alert(1)"), "{}", page.body);

    let vi = get(&server, "/conversations", &[("Cookie", &viewer), ("Accept-Language", "vi")]);
    assert!(vi.body.contains("<h1>Hội thoại</h1>") && vi.body.contains("Câu trả lời hiệu quả"), "{}", vi.body);
    let zh = get(&server, "/conversations", &[("Cookie", &viewer), ("Accept-Language", "zh-CN")]);
    assert!(zh.body.contains("<h1>对话</h1>") && zh.body.contains("每周"), "{}", zh.body);
}
