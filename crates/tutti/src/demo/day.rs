//! The demo's day: the stories of `examples/` (their flows, policies and events, built into the binary so the
//! demo runs anywhere) and synthetic shoppers around them.
//!
//! Each story's people are its own: their ids and emails are marked with the story (`lan` of S5 is
//! `lan-s5`, `lan+s5@example.vn`), so a complaint in S2 does not silence S5's reminder to a different Lan.
//! The synthetic shoppers browse, some abandon carts and some of those buy, in Vietnamese, Chinese and English,
//! spread over the day; the same seed makes the same day.

use serde_json::{Value, json};
use tutti_core::Millis;
use tutti_core::time::parse_timestamp;

/// A story: its name, its definition files and its events (JSON lines, `//` comments allowed).
pub(crate) struct Story {
    pub name: &'static str,
    pub title: &'static str,
    pub files: &'static [(&'static str, &'static str)],
    pub events: &'static str,
    /// Identify calls placed before the first event (S5's people and their time zones).
    pub profiles: &'static str,
}

macro_rules! example {
    ($dir:literal, $file:literal) => {
        ($file, include_str!(concat!("../../../../examples/", $dir, "/", $file)))
    };
}

pub(crate) const STORIES: [Story; 6] = [
    Story {
        name: "s1",
        title: "S1 a lead reads the pricing page",
        files: &[example!("s1-pricing", "hot-lead-pricing.yaml")],
        events: include_str!("../../../../examples/s1-pricing/events.jsonl"),
        profiles: "",
    },
    Story {
        name: "s2",
        title: "S2 a complaint stops a promotion",
        files: &[
            example!("s2-complaint", "complaint-suppression.yaml"),
            example!("s2-complaint", "receipt.yaml"),
            example!("s2-complaint", "winback-promo.yaml"),
        ],
        events: include_str!("../../../../examples/s2-complaint/events.jsonl"),
        profiles: "",
    },
    Story {
        name: "s3",
        title: "S3 sales objections reach the content board",
        files: &[example!("s3-objection", "objection-to-content-task.yaml")],
        events: include_str!("../../../../examples/s3-objection/events.jsonl"),
        profiles: "",
    },
    Story {
        name: "s4",
        title: "S4 a post goes viral: ads are told",
        files: &[example!("s4-viral-content", "organic-reach-alert.yaml")],
        events: include_str!("../../../../examples/s4-viral-content/events.jsonl"),
        profiles: "",
    },
    Story {
        name: "s5",
        title: "S5 abandoned carts, reminded in their language",
        files: &[
            example!("s5-abandoned-cart", "abandoned-cart.yaml"),
            example!("s5-abandoned-cart", "promo-cap.yaml"),
            example!("s5-abandoned-cart", "quiet-hours.yaml"),
        ],
        events: include_str!("../../../../examples/s5-abandoned-cart/events.jsonl"),
        profiles: include_str!("../../../../examples/s5-abandoned-cart/profiles.jsonl"),
    },
    Story {
        name: "s6",
        title: "S6 thank-you copy written by the AI layer, approved by a person",
        files: &[example!("s6-personal-copy", "personal-thanks.yaml")],
        events: include_str!("../../../../examples/s6-personal-copy/events.jsonl"),
        profiles: "",
    },
];

/// What the stories' flows post to stand in for an email service (`webhook.post` to this URL).
pub(crate) const EXAMPLE_RECEIVER: &str = "http://127.0.0.1:9400";

/// One call of the day, at its time.
pub(crate) struct Call {
    pub at: Millis,
    pub story: &'static str,
    pub body: Value,
}

fn lines(text: &str) -> impl Iterator<Item = Value> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .filter_map(|l| serde_json::from_str(l).ok())
}

/// Marks a story's person as its own: ids get `-<story>`, emails `+<story>` before the `@`.
fn own(mut call: Value, story: &str) -> Value {
    for key in ["userId", "anonymousId", "previousId"] {
        if let Some(id) = call[key].as_str() {
            call[key] = json!(format!("{id}-{story}"));
        }
    }
    if let Some(email) = call["traits"]["email"].as_str()
        && let Some((name, domain)) = email.split_once('@')
    {
        call["traits"]["email"] = json!(format!("{name}+{story}@{domain}"));
    }
    call
}

/// The stories' calls, marked as their own, at their times; profiles just before the story's first event.
pub(crate) fn story_calls() -> Vec<Call> {
    let mut calls = Vec::new();
    for story in &STORIES {
        let events: Vec<Value> = lines(story.events).collect();
        let first = events.iter().filter_map(|e| e["timestamp"].as_str().and_then(parse_timestamp)).min();
        for profile in lines(story.profiles) {
            let mut call = own(profile, story.name);
            call["type"] = json!("identify");
            calls.push(Call { at: first.unwrap_or(0) - 60_000, story: story.name, body: call });
        }
        for event in events {
            let Some(at) = event["timestamp"].as_str().and_then(parse_timestamp) else { continue };
            calls.push(Call { at, story: story.name, body: own(event, story.name) });
        }
    }
    calls
}

const NAMES: [(&str, &str, &str, &str); 9] = [
    ("Nguyễn Thị Mai", "vi-VN", "Asia/Ho_Chi_Minh", "example.vn"),
    ("Trần Văn Hùng", "vi-VN", "Asia/Ho_Chi_Minh", "example.vn"),
    ("Lê Thu Hà", "vi-VN", "Asia/Ho_Chi_Minh", "example.vn"),
    ("Phạm Quốc Bảo", "vi-VN", "Asia/Ho_Chi_Minh", "example.vn"),
    ("王芳", "zh-CN", "Asia/Shanghai", "example.cn"),
    ("李强", "zh-CN", "Asia/Shanghai", "example.cn"),
    ("陈静", "zh-CN", "Asia/Shanghai", "example.cn"),
    ("Emma Clarke", "en-GB", "Europe/London", "example.com"),
    ("Daniel Lee", "en-SG", "Asia/Singapore", "example.com"),
];

const PRODUCTS: [&str; 6] = ["áo dài lụa", "bộ ấm trà", "nón lá", "茶具套装", "silk scarf", "cà phê phin"];

/// A small deterministic generator (a 64-bit linear congruential one): the same day every run.
struct Dice(u64);

impl Dice {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}

/// `people` synthetic shoppers over the day starting at `day`: each is identified (with a lifetime value from 50
/// to 2,000, so some thank-yous wait for a person), views a few products; about a third abandon a cart (the S5
/// flow's trigger), and half of those buy within hours.
pub(crate) fn shoppers(day: Millis, people: usize) -> Vec<Call> {
    let mut dice = Dice(20_261_206);
    let mut calls = Vec::new();
    for i in 0..people {
        let (name, locale, zone, domain) = NAMES[i % NAMES.len()];
        let user = format!("shopper-{i}");
        let email = format!("shopper{i}@{domain}");
        let context = json!({"locale": locale, "timezone": zone});
        let mut at = day + dice.next(20 * 3_600_000) as Millis;
        calls.push(Call {
            at,
            story: "shoppers",
            body: json!({"type": "identify", "userId": user, "context": context,
                         "traits": {"name": name, "email": email, "ltv": 50 * (1 + dice.next(40))}}),
        });
        for _ in 0..1 + dice.next(4) {
            at += 60_000 + dice.next(20 * 60_000) as Millis;
            let product = PRODUCTS[dice.next(PRODUCTS.len() as u64) as usize];
            calls.push(Call {
                at,
                story: "shoppers",
                body: json!({"type": "track", "userId": user, "event": "Product Viewed",
                             "properties": {"name": product, "price": 100_000 + 50_000 * dice.next(20)}, "context": context}),
            });
        }
        if dice.next(3) == 0 {
            let cart = format!("cart-{i}");
            at += 5 * 60_000;
            calls.push(Call {
                at,
                story: "shoppers",
                body: json!({"type": "track", "userId": user, "event": "Cart Abandoned",
                             "properties": {"cart_id": cart}, "context": context}),
            });
            if dice.next(2) == 0 {
                at += (30 + dice.next(300)) as Millis * 60_000;
                calls.push(Call {
                    at,
                    story: "shoppers",
                    body: json!({"type": "track", "userId": user, "event": "Order Completed",
                                 "properties": {"cart_id": cart, "order_id": format!("o-{i}")}, "context": context}),
                });
            }
        }
    }
    calls
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_story_plays_its_own_people_and_the_shoppers_are_the_same_each_day() {
        let calls = story_calls();
        for story in &STORIES {
            assert!(calls.iter().any(|c| c.story == story.name), "{} has events", story.name);
        }
        let lan_s5 = calls.iter().find(|c| c.story == "s5" && c.body["userId"] == "lan-s5").expect("S5's Lan");
        assert!(lan_s5.body["userId"].as_str().unwrap().ends_with("-s5"));
        let emails: Vec<&str> = calls.iter().filter_map(|c| c.body["traits"]["email"].as_str()).collect();
        assert!(emails.contains(&"lan+s2@example.vn") && emails.contains(&"lan+s6@example.vn"), "{emails:?}");
        let day = parse_timestamp("2026-11-22T00:00:00Z").unwrap();
        let (a, b) = (shoppers(day, 50), shoppers(day, 50));
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.at == y.at && x.body == y.body));
        assert!(a.iter().any(|c| c.body["event"] == "Cart Abandoned"));
    }
}
