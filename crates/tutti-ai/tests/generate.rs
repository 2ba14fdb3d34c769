//! The `generate` step's work with no model configured: personalised, reviewed copy in Vietnamese, Chinese and
//! English from the local provider, and the pass rates counted per flow.

use std::sync::Arc;

use serde_json::{Value, json};
use tutti_ai::generate::{self, Stats};
use tutti_ai::provider::Task;
use tutti_ai::provider::local::Local;
use tutti_ai::provider::route::Router;
use tutti_ai::review::Gate;
use tutti_ai::text::Language;

const NOW: i64 = 1_795_000_000_000;
const DAY: i64 = 86_400_000;

fn ts(ms: i64) -> String {
    tutti_core::time::format_timestamp(ms)
}

fn router() -> Router {
    Router::local_only(Local::new().with(Task::Generate, Arc::new(generate::local_skill)))
}

fn input(traits: Value, event: Value, request: Value) -> Value {
    json!({
        "request": request,
        "profile": {"id": "4711", "traits": traits, "identities": [{"type": "user_id", "value": "cus_8842"}, {"type": "email", "value": "lan@example.vn"}],
                    "event_counts": {"Product Viewed": 12, "Cart Abandoned": 2}, "last_seen": ts(NOW - 2 * DAY)},
        "event": event,
        "run": {"id": "4711-1", "flow": "cart-recovery", "version": 1, "step": "copy", "steps": {}, "last_event": null},
    })
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("the local provider answers at once"),
    }
}

#[test]
fn each_language_gets_its_own_personalised_reviewed_copy() {
    let gate = Gate::builtin();
    let stats = Stats::default();
    let cart = |item: &str| json!({"type": "track", "event": "Cart Abandoned", "properties": {"item": item}});
    let ask = json!({"prompt": "Bring them back to their cart", "channel": "email", "variants": 3, "brief": {"offer": "10%"}});
    let cases = [
        (
            json!({"name": "Nguyễn Văn Minh", "gender": "male", "language": "vi"}),
            cart("Áo dài lụa"),
            Language::Vi,
            "anh Minh",
            "Áo dài lụa",
        ),
        (
            json!({"name": "Trần Thị Lan", "gender": "female", "language": "vi"}),
            cart("Nón lá"),
            Language::Vi,
            "chị Lan",
            "Nón lá",
        ),
        (json!({"name": "王伟", "gender": "male", "language": "zh"}), cart("茶具"), Language::Zh, "王先生", "茶具"),
        (json!({"name": "李娜", "gender": "female", "locale": "zh-CN"}), cart("丝巾"), Language::Zh, "李女士", "丝巾"),
        (json!({"first_name": "Emma", "language": "en"}), cart("the linen shirt"), Language::En, "Emma", "linen shirt"),
    ];
    for (traits, event, language, address, item) in cases {
        let g = block_on(generate::generate(&input(traits.clone(), event, ask.clone()), &router(), &gate, &stats, NOW))
            .unwrap_or_else(|e| panic!("{traits}: {e}"));
        assert!(g.passed && g.local && g.provider == "local", "{traits}: {g:?}");
        assert_eq!(g.language, language, "{traits}");
        assert_eq!(g.context.address, address);
        assert!(g.body.contains(address) && g.body.contains(item), "{traits}: {}", g.body);
        // A subject starts with a capital: "Anh Minh ơi, ...".
        let subject = g.subject.clone().unwrap_or_default();
        assert!(subject.to_lowercase().contains(&address.to_lowercase()), "{subject}");
        assert!(!subject.starts_with(char::is_lowercase), "{subject}");
        assert!(!g.body.contains("cus_8842") && !g.body.contains("4711"), "no ids in copy");
        assert_eq!(g.variants, 3);
    }
    let counts = stats.snapshot()["cart-recovery"];
    assert_eq!((counts.messages, counts.final_pass), (5, 5));
}

#[test]
fn someone_who_just_complained_is_apologised_to_not_sold_to() {
    let gate = Gate::builtin();
    let stats = Stats::default();
    let ask = json!({"prompt": "Follow up", "brief": {"offer": "20%"}});
    for (traits, text, apology) in [
        (
            json!({"name": "Phạm Thu Hà", "gender": "female", "language": "vi"}),
            "Đơn hàng bị hỏng, tôi muốn hoàn tiền",
            "rất tiếc",
        ),
        (json!({"name": "张伟", "gender": "male", "language": "zh"}), "收到的商品坏了，我要退款", "歉意"),
        (json!({"first_name": "Sam"}), "My order arrived broken and I want a refund", "sorry"),
    ] {
        let event = json!({"type": "track", "event": "Ticket Created", "properties": {"text": text}});
        let g =
            block_on(generate::generate(&input(traits, event, ask.clone()), &router(), &gate, &stats, NOW)).unwrap();
        assert!(g.context.sentiment.complaint, "{text}");
        assert!(g.body.contains(apology), "{}", g.body);
        assert!(!g.body.contains("20%"), "no offer to an unhappy customer: {}", g.body);
    }
}

#[test]
fn predicted_need_and_behaviour_shape_the_copy() {
    let gate = Gate::builtin();
    let stats = Stats::default();
    let traits = json!({"first_name": "Ana", "last_order_at": ts(NOW - 33 * DAY), "reorder_days": 30});
    let event = json!({"type": "track", "event": "Product Viewed", "properties": {"product": "coffee beans"}});
    let g = block_on(generate::generate(
        &input(traits, event, json!({"prompt": "x", "channel": "sms"})),
        &router(),
        &gate,
        &stats,
        NOW,
    ))
    .unwrap();
    assert_eq!((g.context.need.as_deref(), g.context.need_days), (Some("replenish"), Some(33)));
    assert_eq!(g.context.top_events[0], ("Product Viewed".to_owned(), 12));
    assert!(g.subject.is_none() && g.body.contains("Ana") && g.body.contains("coffee beans"), "{g:?}");
}

#[test]
fn a_draft_that_breaks_a_pack_is_revised_or_reported() {
    let gate = Gate::builtin();
    let stats = Stats::default();
    // The brief carries a claim the finance pack forbids.
    let ask = json!({"prompt": "x", "packs": ["general", "finance"], "variants": 2, "revisions": 2,
                     "brief": {"offer": "guaranteed returns of 12% a year, risk-free"}});
    let event = json!({"type": "track", "event": "Product Viewed", "properties": {"product": "the Growth Fund"}});
    let g =
        block_on(generate::generate(&input(json!({"first_name": "Kim"}), event, ask), &router(), &gate, &stats, NOW))
            .unwrap();
    assert!(!g.first_pass, "the first draft breaks the finance pack");
    if g.passed {
        assert!(g.revisions > 0 && !g.body.to_lowercase().contains("guaranteed"), "{}", g.body);
    } else {
        assert!(g.violations.iter().any(|v| v.rule.starts_with("finance.")), "{:?}", g.violations);
    }
    let c = stats.snapshot()["cart-recovery"];
    assert_eq!((c.messages, c.first_pass), (1, 0));
    // Unknown packs and bad numbers are errors that name them.
    let bad = json!({"prompt": "x", "packs": ["finanse"]});
    let e = block_on(generate::generate(&input(json!({}), json!({}), bad), &router(), &gate, &stats, NOW)).unwrap_err();
    assert!(e.contains("finanse"), "{e}");
    let bad = json!({"prompt": "x", "variants": 50});
    let e = block_on(generate::generate(&input(json!({}), json!({}), bad), &router(), &gate, &stats, NOW)).unwrap_err();
    assert!(e.contains("`variants`"), "{e}");
}

#[test]
fn names_are_said_as_people_say_them() {
    let gate = Gate::builtin();
    let stats = Stats::default();
    let ask = json!({"prompt": "Remind them of their cart", "channel": "email"});
    let cart = |item: &str| json!({"type": "track", "event": "Cart Abandoned", "properties": {"item": item}});
    let address = |traits: Value, item: &str| {
        let g = block_on(generate::generate(&input(traits, cart(item), ask.clone()), &router(), &gate, &stats, NOW))
            .unwrap();
        (g.context.address.clone(), g.subject.clone().unwrap_or_default(), g.body.clone())
    };
    // A compound surname keeps both characters; a name in Latin letters is kept as written, with no honorific
    // made of its first letter.
    assert_eq!(address(json!({"name": "欧阳婷", "gender": "female", "language": "zh"}), "丝巾").0, "欧阳女士");
    assert_eq!(address(json!({"name": "司马光", "gender": "male", "language": "zh"}), "茶具").0, "司马先生");
    let (pinyin, subject, _) = address(json!({"name": "Wang Fang", "gender": "female", "language": "zh"}), "茶具");
    assert_eq!(pinyin, "Wang Fang");
    assert!(!subject.contains("W女士"), "{subject}");
    // Vietnamese with no gender known: the name alone; with no name, Quý khách, capitalised at the start.
    assert_eq!(address(json!({"name": "Nguyễn Văn Bình", "language": "vi"}), "Áo dài").0, "Bình");
    let (_, subject, _) = address(json!({"language": "vi"}), "Áo dài");
    assert!(subject.starts_with(char::is_uppercase), "{subject}");
    assert!(!subject.starts_with("quý"), "{subject}");
    // English with no name: no "there, ..." in a subject; a plural item agrees.
    let (_, subject, body) = address(json!({"language": "en"}), "coffee beans");
    assert!(!subject.starts_with("there") && !subject.contains(", there"), "{subject}");
    assert!(body.starts_with("Hi there,") || body.starts_with("Hello there,"), "{body}");
    assert!(!body.contains("coffee beans is"), "{body}");
}
