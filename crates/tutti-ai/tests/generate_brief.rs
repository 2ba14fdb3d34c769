//! Copy written from the brief with no model configured: the kind of message follows the step's prompt and the
//! event, an earlier complaint turns any message into an apology in every language, required lines go before
//! the sign-off in the message's register, and an SMS keeps its offer and its country's rules.

use std::sync::Arc;

use serde_json::{Value, json};
use tutti_ai::generate::kind::Kind;
use tutti_ai::generate::{self, Generated, GenerationPolicy, Level, Stats};
use tutti_ai::provider::Task;
use tutti_ai::provider::local::Local;
use tutti_ai::provider::route::Router;
use tutti_ai::review::Gate;

const NOW: i64 = 1_795_000_000_000;
const DAY: i64 = 86_400_000;

fn ts(ms: i64) -> String {
    tutti_core::time::format_timestamp(ms)
}

fn write(traits: Value, event: Value, request: Value, history: Value, category: &str) -> Generated {
    let input = json!({
        "request": request, "category": category, "history": history,
        "profile": {"id": "77", "traits": traits, "identities": [], "event_counts": {"Order Completed": 2},
                    "last_seen": ts(NOW - DAY)},
        "event": event,
        "run": {"id": "77-1", "flow": "copy", "version": 1, "step": "copy", "steps": {}, "last_event": null},
    });
    run(&input, &GenerationPolicy::default())
}

/// Generates with the local provider, which answers at once.
fn run(input: &Value, policy: &GenerationPolicy) -> Generated {
    let router = Router::local_only(Local::new().with(Task::Generate, Arc::new(generate::local_skill)));
    let (gate, stats) = (Gate::builtin(), Stats::default());
    let fut = generate::generate_with(input, &router, &gate, &stats, policy, NOW);
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(g) => g.unwrap_or_else(|e| panic!("{e}")),
        std::task::Poll::Pending => panic!("the local provider answers at once"),
    }
}

fn track(event: &str, properties: Value) -> Value {
    json!({"type": "track", "event": event, "properties": properties, "timestamp": ts(NOW)})
}

#[test]
fn a_thank_you_after_a_purchase_is_a_thank_you_in_subject_and_body() {
    let ask = json!({"prompt": "Thank them for their order", "channel": "email"});
    let cases = [
        (json!({"first_name": "Sam"}), "latex mattress", "Thank", "waiting"),
        (json!({"name": "王伟", "gender": "male", "language": "zh"}), "乳胶床垫", "感谢", "在等"),
        (
            json!({"name": "Lê Thị Hoa", "gender": "female", "language": "vi"}),
            "chứng chỉ quỹ VCBF",
            "Cảm ơn",
            "đang chờ",
        ),
    ];
    for (traits, item, thanks, waiting) in cases {
        let g = write(traits, track("Order Completed", json!({"item": item})), ask.clone(), json!([]), "transactional");
        let subject = g.subject.clone().unwrap_or_default();
        assert_eq!(g.context.kind, Kind::ThankYou);
        assert!(subject.contains(thanks) && !subject.contains(waiting), "{subject}");
        assert!(g.body.contains(thanks) && g.body.contains(item) && !g.body.contains(waiting), "{}", g.body);
        assert!(g.context.levels.contains(&Level::Intent) && g.context.levels.contains(&Level::Attributes));
        assert!(g.passed && g.first_pass, "{g:?}");
    }
    // Vietnamese buys a fund certificate ("mua"), it does not book one ("đặt").
    let g = write(
        json!({"name": "Lê Thị Hoa", "gender": "female", "language": "vi"}),
        track("Order Completed", json!({"item": "chứng chỉ quỹ VCBF"})),
        ask.clone(),
        json!([]),
        "transactional",
    );
    assert!(g.body.contains("đã mua chứng chỉ quỹ") && !g.body.contains("đặt chứng chỉ"), "{}", g.body);
    // The prompt decides over the event: the same cart event, asked for a thank-you, is one.
    let g = write(
        json!({"first_name": "Sam"}),
        track("Cart Abandoned", json!({"item": "shoes"})),
        ask,
        json!([]),
        "promotional",
    );
    assert_eq!(g.context.kind, Kind::ThankYou);
    assert!(!g.body.contains("shoes is") && !g.subject.unwrap_or_default().contains("waiting"), "{}", g.body);
}

#[test]
fn a_plural_item_agrees_and_a_nameless_subject_has_no_stray_there() {
    let ask = json!({"prompt": "Bring them back to their cart", "brief": {"offer": "10%"}});
    let g = write(json!({}), track("Cart Abandoned", json!({"item": "coffee beans"})), ask, json!([]), "promotional");
    let subject = g.subject.unwrap_or_default();
    assert!(subject.contains("coffee beans are") || !subject.contains("coffee beans is"), "{subject}");
    assert!(!subject.to_lowercase().starts_with("there"), "{subject}");
    assert!(
        g.body.contains("coffee beans are still waiting") && g.body.contains("10% off your next order"),
        "{}",
        g.body
    );
}

#[test]
fn an_earlier_complaint_makes_any_message_an_apology_in_every_language() {
    let ask = json!({"prompt": "Recommend something they might like", "brief": {"offer": "15%"}});
    let viewed = |item: &str| track("Product Viewed", json!({"item": item}));
    // Complaints not worded as complaints, sent days before the message, with no complaint word in them.
    let cases = [
        (
            json!({"name": "Trần Thị Mai", "gender": "female", "language": "vi"}),
            "máy hút bụi",
            "Đơn hàng đặt từ tuần trước vẫn chưa nhận được, em gọi ba lần mà không ai nghe máy",
            "rất tiếc",
        ),
        (
            json!({"name": "欧阳婷", "gender": "female", "language": "zh"}),
            "吸尘器",
            "上周下的单到现在还没收到，打了三次电话都没人接",
            "歉意",
        ),
        (
            json!({"first_name": "Sam"}),
            "vacuum cleaner",
            "Still waiting for my order, no one answered my calls",
            "sorry",
        ),
    ];
    for (traits, item, said, sorry) in cases {
        let history = json!([
            {"type": "track", "event": "Page Viewed", "timestamp": ts(NOW - DAY), "properties": {}},
            {"type": "track", "event": "Support Message", "timestamp": ts(NOW - 3 * DAY), "properties": {"text": said}},
        ]);
        let g = write(traits.clone(), viewed(item), ask.clone(), history, "promotional");
        assert_eq!(g.context.kind, Kind::Apology, "{said}");
        let recent = g.context.recent_complaint.clone().expect("the earlier complaint is found");
        assert_eq!((recent.event.as_str(), recent.days_ago), ("Support Message", 3));
        assert!(g.context.levels.contains(&Level::Emotion));
        let why = g.explanation.clone().unwrap_or_default();
        assert!(why.contains("apology") && why.contains("Support Message"), "the copy says why: {why}");
        assert!(g.body.contains(sorry), "{}", g.body);
        assert!(!g.body.contains("生活愉快"), "no cheerful sign-off on an apology: {}", g.body);
        assert!(
            !g.body.to_lowercase().contains(item) && !g.body.contains("15") && !g.body.contains("9折"),
            "nothing sold: {}",
            g.body
        );
        // The same words three weeks ago are history: the message is what the brief asked for.
        let old = json!([{"type": "track", "event": "Support Message", "timestamp": ts(NOW - 21 * DAY),
                          "properties": {"text": said}}]);
        let g = write(traits, viewed(item), ask.clone(), old, "promotional");
        assert_eq!(g.context.kind, Kind::Recommendation, "{said}");
        assert!(g.body.to_lowercase().contains(item), "{}", g.body);
    }
    // A low rating or a complaint event with no text counts too.
    let rated = json!([{"type": "track", "event": "Survey Answered", "timestamp": ts(NOW - 2 * DAY), "properties": {"csat": 1}}]);
    assert_eq!(
        write(json!({"first_name": "Al"}), viewed("kettle"), ask.clone(), rated, "promotional").context.kind,
        Kind::Apology
    );
    let filed = json!([{"type": "track", "event": "Khiếu nại", "timestamp": ts(NOW - 2 * DAY), "properties": {}}]);
    assert_eq!(
        write(json!({"first_name": "Al"}), viewed("kettle"), ask, filed, "promotional").context.kind,
        Kind::Apology
    );
}

#[test]
fn a_vietnamese_name_that_is_also_a_word_of_address_keeps_two_words() {
    let ask = json!({"prompt": "Bring them back to their cart"});
    let cart = track("Cart Abandoned", json!({"item": "sữa rửa mặt"}));
    let g =
        write(json!({"name": "Bùi Ngọc Anh", "language": "vi"}), cart.clone(), ask.clone(), json!([]), "promotional");
    assert_eq!(g.context.address, "Ngọc Anh");
    let g = write(json!({"name": "Trần Văn Minh", "language": "vi"}), cart, ask, json!([]), "promotional");
    assert_eq!(g.context.address, "Minh");
}

#[test]
fn required_lines_go_before_the_sign_off_in_the_messages_register() {
    // A Vietnamese fund message to "anh": the risk warning is added before "Trân trọng" and does not switch to
    // "quý khách".
    let ask =
        json!({"prompt": "Giới thiệu quỹ mới", "packs": ["general", "finance"], "brief": {"item": "quỹ đầu tư VCBF"}});
    let g = write(
        json!({"name": "Ngô Văn Nam", "gender": "male", "language": "vi"}),
        track("Page Viewed", json!({})),
        ask,
        json!([]),
        "promotional",
    );
    assert!(g.passed, "{g:?}");
    let warning = g.body.find("Đầu tư có rủi ro").expect("the risk warning is added");
    let sign_off = g.body.find("Trân trọng").expect("a sign-off");
    assert!(warning < sign_off, "{}", g.body);
    assert!(g.body.contains("anh") && !g.body.contains("quý khách"), "{}", g.body);
    // A Chinese vitamin product: the supplement line is required although no "保健品" appears.
    let ask = json!({"prompt": "推荐新品", "packs": ["general", "health"], "brief": {"item": "维生素C泡腾片"}});
    let g = write(
        json!({"name": "李娜", "gender": "female", "language": "zh"}),
        track("Page Viewed", json!({})),
        ask,
        json!([]),
        "promotional",
    );
    assert!(g.passed && !g.first_pass, "the line is added by revision: {g:?}");
    let line = g.body.find("不能代替药物").expect("the supplement line");
    assert!(line < g.body.find("祝您生活愉快").expect("a sign-off"), "{}", g.body);
    // The AI-use disclosure goes before the sign-off too.
    let input = json!({"request": {"prompt": "Thank them", "channel": "email"}, "category": "transactional",
                       "profile": {"traits": {"first_name": "Sam"}}, "event": track("Order Completed", json!({})),
                       "run": {"flow": "f"}});
    let mut policy = GenerationPolicy::default();
    policy.disclosure.insert("email".into(), generate::Disclose::Always);
    let g = run(&input, &policy);
    assert!(g.body.find("help of AI").unwrap() < g.body.find("Best regards").unwrap(), "{}", g.body);
}

#[test]
fn an_sms_keeps_its_offer_and_its_countrys_rules_in_one_part() {
    let brief = json!({"offer": "10%", "link": "https://acme.vn/c", "brand": "Acme", "opt_out_code": "8079"});
    let ask = json!({"prompt": "Bring them back to their cart", "channel": "sms", "brief": brief});
    let cart = |item: &str| track("Cart Abandoned", json!({"item": item}));
    // Vietnam: [QC] first, the refusal line, the offer and the link; folded to fit one GSM-7 part.
    let g = write(
        json!({"name": "Trần Thị Lan", "gender": "female", "language": "vi"}),
        cart("Nón lá"),
        ask.clone(),
        json!([]),
        "promotional",
    );
    assert!(g.passed && g.first_pass, "{g:?}");
    assert!(
        g.body.starts_with("[QC]")
            && g.body.contains("8079")
            && g.body.contains("10%")
            && g.body.contains("https://acme.vn/c"),
        "{}",
        g.body
    );
    assert_eq!(tutti_ai::sms::segments(&g.body).parts, 1, "{}", g.body);
    // China: the signature in 【】 first, 回T退订, the offer as 9折.
    let g = write(
        json!({"name": "王伟", "gender": "male", "language": "zh"}),
        cart("茶具"),
        ask.clone(),
        json!([]),
        "promotional",
    );
    assert!(g.passed && g.first_pass, "{g:?}");
    assert!(g.body.starts_with("【Acme】") && g.body.contains("回T退订") && g.body.contains("9折"), "{}", g.body);
    assert_eq!(tutti_ai::sms::segments(&g.body).parts, 1, "{}", g.body);
    // English: the offer and the link survive, with the STOP line of a promotion.
    let g = write(json!({"first_name": "Sam"}), cart("running shoes"), ask, json!([]), "promotional");
    assert!(
        g.passed && g.body.contains("10% off") && g.body.contains("https://acme.vn/c") && g.body.contains("STOP"),
        "{}",
        g.body
    );
    assert!(g.body.contains("shoes are"), "{}", g.body);
    // A receipt is not advertising: no QC marker.
    let ask = json!({"prompt": "Thank them for their order", "channel": "sms"});
    let g = write(
        json!({"name": "Trần Thị Lan", "gender": "female", "language": "vi"}),
        track("Order Completed", json!({"item": "Nón lá"})),
        ask,
        json!([]),
        "transactional",
    );
    assert!(g.passed && !g.body.contains("QC"), "{}", g.body);
}
