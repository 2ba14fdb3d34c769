//! What kind of message a `generate` step writes: read from its brief (the `prompt`, in any of the three
//! languages), else from the triggering event, else from the predicted need. A recent complaint overrides them
//! all: whoever just complained gets an apology and nothing sold.

use serde::{Deserialize, Serialize};

/// The kinds of message the local generator writes, and a model is told it is writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Apology,
    ThankYou,
    AbandonedCart,
    WinBack,
    Replenishment,
    Announcement,
    Onboarding,
    Reminder,
    /// Something of theirs expires or is due for renewal (a membership, a subscription, a warranty).
    Renewal,
    Recommendation,
    /// Nothing said what it is: a short note of thanks for being a customer.
    Update,
}

impl Kind {
    /// Whether an offer belongs in it (an apology never sells).
    pub fn may_offer(self) -> bool {
        !matches!(self, Kind::Apology)
    }
}

/// Words of a brief that name a kind, in the order they are tried: an apology or a thank-you named in the
/// brief wins over the event ("thank them for their order" after `Order Completed`, not the cart subject).
/// Matched on the lower-cased brief where a word starts (Chinese has no spaces; stems such as "remind" catch
/// "reminder", and "due" is not found in "reduce").
const BRIEF_WORDS: &[(Kind, &[&str])] = &[
    (Kind::Apology, &["apolog", "sorry", "xin lỗi", "thành thật", "道歉", "致歉", "抱歉"]),
    (Kind::ThankYou, &["thank", "grateful", "cảm ơn", "cám ơn", "tri ân", "感谢", "谢谢", "致谢", "多谢"]),
    (
        Kind::AbandonedCart,
        &["cart", "basket", "checkout", "giỏ hàng", "giỏ", "thanh toán dở", "购物车", "未付款", "未支付", "结账"],
    ),
    (
        Kind::WinBack,
        &[
            "win back",
            "win-back",
            "winback",
            "lapsed",
            "miss you",
            "missed you",
            "come back",
            "inactive",
            "quay lại",
            "quay trở lại",
            "lâu rồi",
            "挽回",
            "召回",
            "回来",
            "好久不见",
            "想念",
            "沉睡",
        ],
    ),
    (Kind::Renewal, &["expir", "renew", "lapse soon", "hết hạn", "gia hạn", "đáo hạn", "到期", "续费", "续期", "过期"]),
    (
        Kind::Replenishment,
        &[
            "restock",
            "replenish",
            "refill",
            "running low",
            "run out",
            "reorder",
            "re-order",
            "bổ sung",
            "sắp dùng hết",
            "mua lại",
            "đặt lại",
            "补货",
            "复购",
            "快用完",
            "回购",
            "续购",
        ],
    ),
    (
        Kind::Onboarding,
        &[
            "welcome",
            "onboard",
            "get started",
            "getting started",
            "new customer",
            "signed up",
            "chào mừng",
            "làm quen",
            "bắt đầu sử dụng",
            "khách hàng mới",
            "欢迎",
            "新用户",
            "新客",
            "入门",
            "注册",
        ],
    ),
    (
        Kind::Reminder,
        &["remind", "due", "deadline", "appointment", "nhắc", "lịch hẹn", "sắp đến hạn", "提醒", "预约", "别忘"],
    ),
    (
        Kind::Announcement,
        &[
            "announce",
            "launch",
            "new arrival",
            "new collection",
            "just landed",
            "introduc",
            "sale",
            "ra mắt",
            "giới thiệu",
            "sản phẩm mới",
            "bộ sưu tập mới",
            "hàng mới",
            "khuyến mãi",
            "上新",
            "新品",
            "发布",
            "介绍",
            "推出",
            "新款",
            "促销",
            "活动",
        ],
    ),
    (
        Kind::Recommendation,
        &["recommend", "suggest", "you might like", "picked", "gợi ý", "đề xuất", "có thể thích", "推荐", "猜你喜欢"],
    ),
];

/// Event names that say the person is unhappy, whatever the event carries.
const COMPLAINT_EVENTS: &[&str] = &[
    "complaint",
    "refund requested",
    "return requested",
    "ticket escalated",
    "dispute",
    "chargeback",
    "negative review",
    "khiếu nại",
    "phàn nàn",
    "投诉",
    "差评",
    "退款申请",
];

/// Whether an event's name says the person complained ("Complaint Filed", "Refund Requested", "投诉").
pub fn names_a_complaint(event: &str) -> bool {
    let e = event.to_lowercase();
    COMPLAINT_EVENTS.iter().any(|w| e.contains(w))
}

/// The kind an event names by itself (Segment's e-commerce and lifecycle specs, and common support events).
pub fn of_event(event: &str) -> Option<Kind> {
    let e = event.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| e.contains(w));
    if names_a_complaint(event) {
        Some(Kind::Apology)
    } else if has(&["order completed", "order delivered", "payment completed", "purchase", "order placed"]) {
        Some(Kind::ThankYou)
    } else if has(&["cart abandoned", "checkout started", "cart viewed", "product added"]) {
        Some(Kind::AbandonedCart)
    } else if has(&["signed up", "account created", "registered", "trial started"]) {
        Some(Kind::Onboarding)
    } else if has(&["product viewed", "product list viewed", "products searched", "product clicked"]) {
        Some(Kind::Recommendation)
    } else if has(&["subscription expiring", "trial ending", "membership expiring", "expir"]) {
        Some(Kind::Renewal)
    } else if has(&["payment due", "appointment"]) {
        Some(Kind::Reminder)
    } else {
        None
    }
}

/// The kind of message: a recent complaint first, then the brief's words, the event, and the predicted need.
pub fn decide(prompt: &str, event: &str, need: Option<&str>, complained: bool) -> Kind {
    if complained {
        return Kind::Apology;
    }
    let brief = crate::text::normalize(prompt);
    let starts_a_word = |w: &str| {
        brief.match_indices(w).any(|(at, _)| !brief[..at].chars().next_back().is_some_and(crate::text::is_word_char))
    };
    if let Some((kind, _)) = BRIEF_WORDS.iter().find(|(_, words)| words.iter().any(|w| starts_a_word(w))) {
        return *kind;
    }
    // A product viewed is a weaker sign than a predicted need: someone due to restock who looks at a product
    // is reminded to restock.
    let from_event = of_event(event);
    if let Some(kind) = from_event.filter(|k| *k != Kind::Recommendation) {
        return kind;
    }
    match need {
        Some("replenish") => Kind::Replenishment,
        Some("win_back") => Kind::WinBack,
        _ => from_event.unwrap_or(Kind::Update),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_brief_decides_before_the_event() {
        assert_eq!(decide("Thank them for their order", "Cart Abandoned", None, false), Kind::ThankYou);
        assert_eq!(decide("Cảm ơn khách đã mua hàng", "Order Completed", None, false), Kind::ThankYou);
        assert_eq!(decide("感谢客户下单", "Order Completed", None, false), Kind::ThankYou);
        assert_eq!(decide("Bring them back to their cart", "Cart Abandoned", None, false), Kind::AbandonedCart);
        assert_eq!(decide("提醒会员卡即将到期", "Identify", None, false), Kind::Renewal);
        assert_eq!(decide("Nhắc thẻ thành viên sắp hết hạn", "Identify", None, false), Kind::Renewal);
        assert_eq!(decide("Remind them of the webinar", "Identify", None, false), Kind::Reminder);
        assert_eq!(decide("Replenishment reminder", "Identify", None, false), Kind::Replenishment);
        assert_eq!(decide("Giới thiệu bộ sưu tập mới", "Page Viewed", None, false), Kind::Announcement);
        assert_eq!(decide("Tell them we reduced prices", "Page Viewed", None, false), Kind::Update);
    }

    #[test]
    fn the_event_and_the_need_decide_when_the_brief_is_silent() {
        assert_eq!(decide("", "Order Completed", None, false), Kind::ThankYou);
        assert_eq!(decide("Write to them", "Signed Up", None, false), Kind::Onboarding);
        assert_eq!(decide("", "Page Viewed", Some("replenish"), false), Kind::Replenishment);
        assert_eq!(decide("", "Page Viewed", Some("win_back"), false), Kind::WinBack);
        assert_eq!(decide("", "Page Viewed", None, false), Kind::Update);
        assert_eq!(decide("", "Product Viewed", Some("replenish"), false), Kind::Replenishment);
        assert_eq!(decide("", "Product Viewed", None, false), Kind::Recommendation);
    }

    #[test]
    fn a_complaint_overrides_everything() {
        assert_eq!(decide("Announce the sale", "Order Completed", Some("replenish"), true), Kind::Apology);
    }
}
