//! Synthetic conversations with planted truth, for the miner's tests and benchmark: topics in three languages,
//! each said in several phrasings, raised in a known set of conversations; per topic a winning reply (the
//! conversation is more likely won after it), a neutral reply (no effect) and ordinary replies; chatter around
//! them. Each planted sentence is said with an opening and a tail drawn at random, and Vietnamese is sometimes typed
//! without marks. Written by the engineer who wrote the miner: it shows the miner finds what is planted the way people
//! phrase it here, not that it reads every way people talk.

use std::collections::BTreeSet;

use tutti_core::time::Millis;

use crate::model::{Conversation, Outcome, Role, Turn};

/// One planted topic.
pub struct Planted {
    pub id: &'static str,
    pub language: &'static str,
    pub objection: bool,
    /// How the customer says it.
    pub phrasings: &'static [&'static str],
    /// The reply that wins, in its variants.
    pub winning: &'static [&'static str],
    /// A reply with no effect on the outcome.
    pub neutral: &'static [&'static str],
    /// Other replies, no effect either.
    pub ordinary: &'static [&'static str],
}

/// The planted topics: four per language.
pub const TOPICS: &[Planted] = &[
    Planted {
        id: "en-security",
        language: "en",
        objection: true,
        phrasings: &[
            "I'm worried about data security.",
            "Data security is a big concern for our legal team.",
            "We are concerned about the security of our customer data.",
            "Honestly the data security part worries me.",
            "Our CTO is worried about security, where is the data stored?",
        ],
        winning: &[
            "All data is encrypted and stored in Singapore, and I can send you our ISO 27001 certificate today.",
            "Everything is encrypted at rest and hosted in Singapore; I'll email the ISO 27001 certificate today.",
        ],
        neutral: &["I understand, that matters to everyone.", "I understand, that matters to all our clients."],
        ordinary: &["Let me ask our engineers and come back to you.", "Most of our customers asked the same."],
    },
    Planted {
        id: "en-price",
        language: "en",
        objection: true,
        phrasings: &[
            "It's too expensive for a team our size.",
            "The price is too high for us right now.",
            "Honestly the price is more than we can afford.",
            "Your price is too high compared to what we pay today.",
            "That's too expensive for our budget this year.",
        ],
        winning: &[
            "We can start you on the annual plan with two months free and monthly billing.",
            "If you take the annual plan you get two months free, billed monthly.",
        ],
        neutral: &["I hear you, pricing is always a discussion.", "I hear you, pricing is always a topic."],
        ordinary: &["Let me check with my manager.", "Our price includes support and training."],
    },
    Planted {
        id: "en-integration",
        language: "en",
        objection: false,
        phrasings: &[
            "Does it integrate with Salesforce?",
            "Can your product integrate with our CRM?",
            "How does the Salesforce integration work?",
            "Is there an integration with HubSpot or Salesforce?",
        ],
        winning: &[
            "Yes, the Salesforce connector syncs contacts both ways and takes ten minutes to set up.",
            "Yes, our Salesforce connector syncs both ways and is set up in about ten minutes.",
        ],
        neutral: &["Good question, many teams use a CRM.", "Good question, most teams use a CRM these days."],
        ordinary: &["I'll send you the documentation.", "Our partners can help with that."],
    },
    Planted {
        id: "en-onboarding",
        language: "en",
        objection: false,
        phrasings: &[
            "How long does onboarding take?",
            "How long is onboarding for a team of thirty?",
            "What does the onboarding process look like?",
            "When could onboarding start if we sign this month?",
        ],
        winning: &[
            "Onboarding takes two weeks with a dedicated specialist who trains your team on site.",
            "It's two weeks, with a dedicated specialist training your team on site.",
        ],
        neutral: &["It depends on the team, every company is different.", "It depends, every company is different."],
        ordinary: &["I'll share the onboarding plan by email.", "We have videos for that as well."],
    },
    Planted {
        id: "vi-price",
        language: "vi",
        objection: true,
        phrasings: &[
            "Giá bên em hơi cao so với bên khác.",
            "Giá này đắt quá em ạ.",
            "Anh thấy giá hơi cao, chưa có ngân sách.",
            "Chi phí cao quá, để anh suy nghĩ thêm.",
            "Giá cao quá so với ngân sách của bên anh.",
        ],
        winning: &[
            "Dạ nếu anh đăng ký gói năm thì được tặng thêm hai tháng và thanh toán theo tháng ạ.",
            "Dạ gói năm được tặng hai tháng, anh vẫn thanh toán theo tháng được ạ.",
        ],
        neutral: &["Dạ em hiểu, chi phí ai cũng quan tâm ạ.", "Dạ em hiểu ạ, khách nào cũng quan tâm chi phí."],
        ordinary: &["Dạ để em hỏi lại quản lý ạ.", "Dạ giá đã bao gồm hỗ trợ rồi anh."],
    },
    Planted {
        id: "vi-warranty",
        language: "vi",
        objection: false,
        phrasings: &[
            "Bảo hành bao lâu vậy em?",
            "Sản phẩm được bảo hành mấy năm?",
            "Chính sách bảo hành bên em thế nào?",
            "Bảo hành có mất phí không em?",
        ],
        winning: &[
            "Dạ bảo hành chính hãng 24 tháng, lỗi là đổi mới trong 30 ngày đầu ạ.",
            "Dạ máy bảo hành 24 tháng chính hãng, 30 ngày đầu lỗi đổi mới luôn ạ.",
        ],
        neutral: &["Dạ bên em có bảo hành như các bên khác ạ.", "Dạ cũng như các bên khác thôi ạ."],
        ordinary: &["Dạ em gửi anh chính sách qua Zalo ạ.", "Dạ anh giữ hóa đơn giúp em nhé."],
    },
    Planted {
        id: "vi-delivery",
        language: "vi",
        objection: false,
        phrasings: &[
            "Bao lâu thì giao hàng tới Đà Nẵng?",
            "Giao hàng mất mấy ngày em?",
            "Bên em có giao hàng tận nơi không?",
            "Giao hàng ra tỉnh thì bao lâu em?",
        ],
        winning: &[
            "Dạ nội thành giao trong ngày, các tỉnh hai đến ba ngày và miễn phí vận chuyển ạ.",
            "Dạ giao trong ngày nội thành, tỉnh thì hai ba ngày, miễn phí vận chuyển ạ.",
        ],
        neutral: &["Dạ tùy khu vực anh ạ.", "Dạ cái này tùy khu vực ạ."],
        ordinary: &["Dạ em kiểm tra rồi báo anh nhé.", "Dạ bên em giao qua nhiều đơn vị ạ."],
    },
    Planted {
        id: "vi-instalments",
        language: "vi",
        objection: false,
        phrasings: &[
            "Có hỗ trợ trả góp không em?",
            "Trả góp 0% được không em?",
            "Mua trả góp thì thủ tục thế nào?",
            "Anh muốn trả góp qua thẻ tín dụng được không?",
        ],
        winning: &[
            "Dạ có trả góp 0% qua thẻ tín dụng 6 tháng, duyệt trong 15 phút ạ.",
            "Dạ trả góp 0% 6 tháng qua thẻ tín dụng, 15 phút là duyệt xong ạ.",
        ],
        neutral: &["Dạ nhiều khách cũng hỏi vậy ạ.", "Dạ khách bên em cũng hay hỏi ạ."],
        ordinary: &["Dạ em gửi anh danh sách ngân hàng ạ.", "Dạ anh mang theo căn cước nhé."],
    },
    Planted {
        id: "zh-price",
        language: "zh",
        objection: true,
        phrasings: &[
            "价格太贵了。",
            "你们的价格比别家贵不少。",
            "这个价格超出我们的预算了。",
            "太贵了，我们再考虑一下。",
        ],
        winning: &["签年度合同可以送两个月，而且可以按月付款。", "年度合同送两个月，还是按月付款。"],
        neutral: &["理解，很多客户都关心价格。", "理解，客户都会关心价格。"],
        ordinary: &["我跟经理申请一下。", "我们的价格包含培训。"],
    },
    Planted {
        id: "zh-security",
        language: "zh",
        objection: true,
        phrasings: &[
            "我们担心数据安全。",
            "数据安全怎么保证，我们有点担心。",
            "客户数据放在你们那里，我担心安全问题。",
            "老板最担心的是数据安全。",
        ],
        winning: &[
            "所有数据都加密存储在国内机房，今天就可以把等保三级证书发给您。",
            "数据全部加密存在国内机房，等保三级证书今天发您。",
        ],
        neutral: &["明白，大家都很重视这个。", "明白，这个大家都很重视。"],
        ordinary: &["我问一下技术同事再回复您。", "很多客户也问过。"],
    },
    Planted {
        id: "zh-invoice",
        language: "zh",
        objection: false,
        phrasings: &["可以开发票吗？", "发票怎么开？", "能开增值税专用发票吗？", "发票什么时候能寄到？"],
        winning: &[
            "可以开增值税专用发票，付款后三个工作日内寄出，也可以开电子发票。",
            "专票可以开，付款后三个工作日寄出，电子发票当天就有。",
        ],
        neutral: &["这个没问题的。", "这个问题不大。"],
        ordinary: &["我让财务联系您。", "发票信息发我一下。"],
    },
    Planted {
        id: "zh-aftersales",
        language: "zh",
        objection: false,
        phrasings: &["售后服务怎么样？", "坏了售后怎么处理？", "售后多久能响应？", "有没有上门售后？"],
        winning: &[
            "售后两小时响应，二十四小时内工程师上门，三年免费保修。",
            "两小时响应，二十四小时工程师上门，免费保修三年。",
        ],
        neutral: &["售后这块您放心。", "这块您放心就好。"],
        ordinary: &["我发您售后电话。", "售后是我们自己的团队。"],
    },
];

/// What customers and reps say that is no topic.
pub const CUSTOMER_CHATTER: [&[&str]; 3] = [
    &[
        "Hi, thanks for calling.",
        "Yes, that's right.",
        "Okay.",
        "We're a team of about forty people.",
        "Sounds good.",
        "Let me share my screen.",
        "Can you hear me?",
        "Right, go on.",
        "We mostly sell online.",
    ],
    &[
        "Dạ vâng.",
        "Alo, em nghe rõ không?",
        "Công ty anh có khoảng 50 nhân viên.",
        "Ừ, được rồi.",
        "Cảm ơn em nhé.",
        "Anh đang ở văn phòng.",
        "Ok em.",
        "Bên anh bán hàng online là chủ yếu.",
    ],
    &["好的。", "喂，听得到吗？", "我们公司有三十个人。", "明白了。", "谢谢。", "我们主要做线上。", "嗯，你继续说。"],
];
const REP_CHATTER: [&[&str]; 3] = [
    &["Let me note that down.", "Great, thanks for the context.", "Sure, one moment.", "Perfect."],
    &["Dạ em ghi nhận ạ.", "Dạ vâng anh.", "Dạ em cảm ơn anh ạ.", "Dạ anh chờ em chút ạ."],
    &["好的，我记一下。", "明白。", "好的，稍等。", "谢谢您。"],
];

/// Words around a planted sentence, so no two conversations need say it the same way: an opening, and a tail
/// before the final mark.
const OPENINGS: [&[&str]; 3] = [
    &["", "", "Um, ", "To be honest, ", "Okay so ", "One more thing, ", "Sorry, "],
    &["", "", "Dạ ", "Mà ", "Thật ra ", "À em ơi, ", "Ừm, "],
    &["", "", "那个，", "其实", "嗯，", "对了，", "说实话，"],
];
const TAILS: [&[&str]; 3] = [
    &["", "", "", " for next quarter", " in our case", " to be fair", " honestly"],
    &["", "", "", " em ơi", " cho bên anh", " nha em", " vậy"],
    &["", "", "", "啊", "呀", "这边"],
];

/// A planted sentence said one way: an opening, the phrasing with a tail before its final mark, and for
/// Vietnamese one time in five typed without marks (as many type on phones).
fn said(dice: &mut Dice, lang: usize, phrasing: &str) -> String {
    let opening = dice.pick(OPENINGS[lang]);
    let tail = dice.pick(TAILS[lang]);
    let (body, mark) = match phrasing.char_indices().last() {
        Some((at, '.' | '?' | '。' | '？')) => (&phrasing[..at], &phrasing[at..]),
        _ => (phrasing, ""),
    };
    let body = if opening.is_empty() || lang == 2 {
        body.to_owned()
    } else {
        let mut chars = body.chars();
        chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
    };
    let text = format!("{opening}{body}{tail}{mark}");
    if lang == 1 && dice.chance(0.2) { tutti_ai::text::fold(&text) } else { text }
}

/// A small deterministic generator (SplitMix64), so a seed gives the same data everywhere.
pub struct Dice(u64);

impl Dice {
    pub fn new(seed: u64) -> Dice {
        Dice(seed)
    }

    pub fn roll(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.roll() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.roll() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[self.below(list.len())]
    }
}

/// What was planted: per topic, where it was raised.
pub struct Truth {
    /// Per topic of [`TOPICS`], (conversation, turn) by index, for each time it was raised.
    pub raised: Vec<BTreeSet<(u32, u32)>>,
}

/// Settings of a generated set.
pub struct Shape {
    pub conversations: usize,
    /// Turns per conversation, padded with chatter (at least the planted exchanges).
    pub turns: usize,
    pub seed: u64,
    /// When the first conversation starts; the rest spread over `weeks`.
    pub start: Millis,
    pub weeks: u32,
    /// Questions per conversation drawn from a large vocabulary, nearly all worded differently: for the
    /// benchmark, so grouping meets as many distinct sentences as real calls give it (0 in the tests).
    pub noise: usize,
}

/// Words the noise questions are made of: 30 × 40 × 40 × 100 ways to ask.
const NOISE_VERBS: [&str; 30] = [
    "change", "move", "export", "import", "share", "print", "delete", "rename", "copy", "sync", "archive", "merge",
    "split", "track", "tag", "filter", "sort", "lock", "unlock", "schedule", "resend", "reopen", "assign", "clone",
    "label", "pin", "hide", "restore", "download", "upload",
];
const NOISE_THINGS: [&str; 40] = [
    "invoice",
    "report",
    "dashboard",
    "folder",
    "ticket",
    "order",
    "receipt",
    "calendar",
    "contact",
    "campaign",
    "template",
    "signature",
    "voucher",
    "shipment",
    "parcel",
    "playlist",
    "album",
    "survey",
    "form",
    "catalog",
    "coupon",
    "badge",
    "bundle",
    "deck",
    "memo",
    "note",
    "draft",
    "quote",
    "booking",
    "itinerary",
    "roster",
    "ledger",
    "budget sheet",
    "price list",
    "brochure",
    "manual",
    "license",
    "warranty card",
    "gift card",
    "menu",
];
const NOISE_PLACES: [&str; 40] = [
    "Hanoi",
    "Da Nang",
    "Hue",
    "Can Tho",
    "Hai Phong",
    "Saigon",
    "Shanghai",
    "Beijing",
    "Shenzhen",
    "Chengdu",
    "London",
    "Berlin",
    "Paris",
    "Madrid",
    "Rome",
    "Lisbon",
    "Dublin",
    "Oslo",
    "Vienna",
    "Prague",
    "Warsaw",
    "Athens",
    "Cairo",
    "Lagos",
    "Nairobi",
    "Lima",
    "Quito",
    "Bogota",
    "Denver",
    "Austin",
    "Boston",
    "Miami",
    "Seattle",
    "Toronto",
    "Montreal",
    "Sydney",
    "Perth",
    "Auckland",
    "Manila",
    "Jakarta",
];

/// Conversations and what was planted in them. Each raises each topic of its language with probability 0.3, and
/// each topic raised gets the winning, the neutral or an ordinary reply, one time in three each. A conversation
/// that got a winning reply is won with probability 0.7, any other with 0.2 (of the rest, four in five are lost
/// and one stays open).
pub fn generate(shape: &Shape) -> (Vec<Conversation>, Truth) {
    let mut dice = Dice::new(shape.seed);
    let mut raised = vec![BTreeSet::new(); TOPICS.len()];
    let span = i64::from(shape.weeks.max(1)) * 7 * 86_400_000;
    let conversations = (0..shape.conversations)
        .map(|n| {
            let id = format!("conv-{n:06}");
            let language = ["en", "vi", "zh"][[0, 0, 1, 1, 2][dice.below(5)]];
            let lang = ["en", "vi", "zh"].iter().position(|l| *l == language).unwrap_or(0);
            let started_at = shape.start + (dice.roll() % span as u64) as i64;
            let mut turns = Vec::with_capacity(shape.turns);
            let say = |turns: &mut Vec<Turn>, role: Role, text: &str| {
                let speaker = if role == Role::Rep { "Agent" } else { "Customer" };
                let at = Some(started_at + turns.len() as i64 * 15_000);
                turns.push(Turn { speaker: speaker.into(), role, at, text: text.to_owned() });
            };
            let mut won_boost = false;
            say(&mut turns, Role::Rep, dice.pick(REP_CHATTER[lang]));
            say(&mut turns, Role::Customer, dice.pick(CUSTOMER_CHATTER[lang]));
            for (t, topic) in TOPICS.iter().enumerate().filter(|(_, t)| t.language == language) {
                if !dice.chance(0.3) {
                    continue;
                }
                raised[t].insert((n as u32, turns.len() as u32));
                let phrasing = dice.pick(topic.phrasings);
                let text = said(&mut dice, lang, phrasing);
                say(&mut turns, Role::Customer, &text);
                let reply = match dice.below(3) {
                    0 => {
                        won_boost = true;
                        dice.pick(topic.winning)
                    }
                    1 => dice.pick(topic.neutral),
                    _ => dice.pick(topic.ordinary),
                };
                say(&mut turns, Role::Rep, reply);
                if dice.chance(0.5) {
                    say(&mut turns, Role::Customer, dice.pick(CUSTOMER_CHATTER[lang]));
                }
            }
            for _ in 0..shape.noise {
                let question = format!(
                    "Can I {} the {} from {} after {} pm?",
                    dice.pick(&NOISE_VERBS),
                    dice.pick(&NOISE_THINGS),
                    dice.pick(&NOISE_PLACES),
                    1 + dice.below(100)
                );
                say(&mut turns, Role::Customer, &question);
                say(&mut turns, Role::Rep, dice.pick(REP_CHATTER[lang]));
            }
            while turns.len() < shape.turns {
                say(&mut turns, Role::Rep, dice.pick(REP_CHATTER[lang]));
                if turns.len() < shape.turns {
                    say(&mut turns, Role::Customer, dice.pick(CUSTOMER_CHATTER[lang]));
                }
            }
            let outcome = if dice.chance(if won_boost { 0.7 } else { 0.2 }) {
                Outcome::Won
            } else if dice.chance(0.8) {
                Outcome::Lost
            } else {
                Outcome::Open
            };
            let mut customer = std::collections::BTreeMap::new();
            customer.insert("email".to_owned(), format!("buyer{n}@example.com"));
            Conversation {
                id,
                started_at: Some(started_at),
                channel: "call".into(),
                outcome,
                value: None,
                currency: None,
                rep: Some("Agent".into()),
                customer,
                turns,
                extra: Default::default(),
            }
        })
        .collect();
    (conversations, Truth { raised })
}
