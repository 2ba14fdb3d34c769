//! The local generator's phrases: per language, a greeting, a sign-off, and for each kind of message its
//! subjects and sentences. Placeholders: `{a}` how the person is addressed, `{p}` how the copy says "you"
//! after the greeting (Vietnamese repeats the honorific), `{i}` the item, `{d}` days, `{o}` the offer, `{l}`
//! the link. A sentence is used only when every placeholder it has is known.

use super::kind::Kind;

/// One kind of message in one language.
pub(super) struct Lines {
    /// Subjects by variant, with no item.
    pub subjects: [&'static str; 2],
    /// A subject naming the item (used by the first variant when there is an item), or "".
    pub subject_item: &'static str,
    /// The point of the message: naming the item, and without one.
    pub main_item: &'static str,
    pub main: &'static str,
    /// A second sentence, or "".
    pub more: &'static str,
}

pub(super) struct Phrases {
    /// Greetings by variant; the first is used for someone with no name.
    pub hello: [&'static str; 2],
    /// An SMS's greeting.
    pub hello_sms: &'static str,
    pub offer: &'static str,
    /// The offer on a first order (a welcome).
    pub offer_first: &'static str,
    pub link: &'static str,
    pub sign_off: &'static str,
    /// The sign-off of an apology, where a cheerful one would jar (Chinese "祝您生活愉快！").
    pub sign_off_apology: &'static str,
    /// How an SMS says how to refuse further messages: with the brand's short code, and by replying.
    pub opt_out_code: &'static str,
    pub opt_out_reply: &'static str,
    /// What joins the sentences of an SMS.
    pub joiner: &'static str,
    pub apology: Lines,
    pub thank_you: Lines,
    pub cart: Lines,
    pub win_back: Lines,
    pub replenishment: Lines,
    pub announcement: Lines,
    pub onboarding: Lines,
    pub reminder: Lines,
    pub renewal: Lines,
    pub recommendation: Lines,
    pub update: Lines,
}

impl Phrases {
    pub fn lines(&self, kind: Kind) -> &Lines {
        match kind {
            Kind::Apology => &self.apology,
            Kind::ThankYou => &self.thank_you,
            Kind::AbandonedCart => &self.cart,
            Kind::WinBack => &self.win_back,
            Kind::Replenishment => &self.replenishment,
            Kind::Announcement => &self.announcement,
            Kind::Onboarding => &self.onboarding,
            Kind::Reminder => &self.reminder,
            Kind::Renewal => &self.renewal,
            Kind::Recommendation => &self.recommendation,
            Kind::Update => &self.update,
        }
    }
}

pub(super) const EN: Phrases = Phrases {
    hello: ["Hi {a},", "Hello {a},"],
    hello_sms: "Hi {a},",
    offer: "Enjoy {o} your next order.",
    offer_first: "Enjoy {o} your first order.",
    link: "See more: {l}",
    sign_off: "Best regards,",
    sign_off_apology: "Best regards,",
    opt_out_code: "Text STOP to {c} to opt out.",
    opt_out_reply: "Reply STOP to opt out.",
    joiner: " ",
    apology: Lines {
        subjects: ["{a}, we're sorry", "We owe you an apology, {a}"],
        subject_item: "",
        main_item: "We're sorry about your recent experience, and we're putting it right.",
        main: "We're sorry about your recent experience, and we're putting it right.",
        more: "Our support team will contact you today.",
    },
    thank_you: Lines {
        subjects: ["Thank you, {a}", "Thanks for your order, {a}"],
        subject_item: "Thank you for ordering the {i}, {a}",
        main_item: "Thank you for ordering the {i}.",
        main: "Thank you for your order.",
        more: "If anything isn't right, just reply to this email.",
    },
    cart: Lines {
        subjects: ["{a}, you left something in your cart", "Still thinking it over, {a}?"],
        subject_item: "{a}, your {i} is still in your cart",
        main_item: "Your {i} is still waiting in your cart.",
        main: "Your cart is still waiting for you.",
        more: "You can finish your order whenever you're ready.",
    },
    win_back: Lines {
        subjects: ["We've missed you, {a}", "It's been a while, {a}"],
        subject_item: "",
        main_item: "It's been a while since we last saw you, and we've missed you.",
        main: "It's been a while since we last saw you, and we've missed you.",
        more: "Come and see what's new since your last visit.",
    },
    replenishment: Lines {
        subjects: ["{a}, time to restock?", "Running low, {a}?"],
        subject_item: "{a}, time to restock {i}?",
        main_item: "Running low on {i}? It may be time to restock.",
        main: "Running low on your favourites? It may be time to restock.",
        more: "It has been {d} days since your last order.",
    },
    announcement: Lines {
        subjects: ["{a}, something new for you", "News for you, {a}"],
        subject_item: "New: {i}",
        main_item: "The {i} is here, and you're among the first to hear about it.",
        main: "We have something new to share with you.",
        more: "",
    },
    onboarding: Lines {
        subjects: ["Welcome, {a}", "Welcome aboard, {a}"],
        subject_item: "",
        main_item: "Welcome aboard! We're glad to have you with us.",
        main: "Welcome aboard! We're glad to have you with us.",
        more: "If you need a hand getting started, just reply to this email.",
    },
    reminder: Lines {
        subjects: ["A friendly reminder, {a}", "Just a reminder, {a}"],
        subject_item: "Reminder: {i}",
        main_item: "Just a friendly reminder about the {i}.",
        main: "Just a friendly reminder from us.",
        more: "",
    },
    renewal: Lines {
        subjects: ["{a}, time to renew", "A reminder to renew, {a}"],
        subject_item: "{a}, your {i} expires soon",
        main_item: "Your {i} expires soon.",
        main: "Something of yours expires soon.",
        more: "Renew in time to keep everything as it is.",
    },
    recommendation: Lines {
        subjects: ["Picked for you, {a}", "You might like this, {a}"],
        subject_item: "{a}, still thinking about the {i}?",
        main_item: "The {i} might be just what you're looking for.",
        main: "We've picked a few things we think you'll like.",
        more: "",
    },
    update: Lines {
        subjects: ["Thank you, {a}", "A note of thanks, {a}"],
        subject_item: "",
        main_item: "Thank you for being with us.",
        main: "Thank you for being with us.",
        more: "",
    },
};

pub(super) const VI: Phrases = Phrases {
    hello: ["Chào {a},", "Xin chào {a},"],
    hello_sms: "Chào {a},",
    offer: "Ưu đãi {o} cho đơn tiếp theo của {p}.",
    offer_first: "Ưu đãi {o} cho đơn đầu tiên của {p}.",
    link: "Xem chi tiết: {l}",
    sign_off: "Trân trọng,",
    sign_off_apology: "Trân trọng,",
    opt_out_code: "Từ chối: soạn TC gửi {c}",
    opt_out_reply: "Từ chối nhận tin: trả lời TC.",
    joiner: " ",
    apology: Lines {
        subjects: ["{a}, chúng tôi thành thật xin lỗi", "Lời xin lỗi gửi {a}"],
        subject_item: "",
        main_item: "Chúng tôi rất tiếc về trải nghiệm vừa qua của {p} và đang khắc phục ngay.",
        main: "Chúng tôi rất tiếc về trải nghiệm vừa qua của {p} và đang khắc phục ngay.",
        more: "Bộ phận chăm sóc khách hàng sẽ liên hệ với {p} trong hôm nay.",
    },
    thank_you: Lines {
        subjects: ["Cảm ơn {a}", "Lời cảm ơn gửi {a}"],
        subject_item: "Cảm ơn {a} đã mua {i}",
        main_item: "Cảm ơn {p} đã mua {i}.",
        main: "Cảm ơn {p} đã đặt hàng.",
        more: "Nếu có điều gì chưa ổn, {p} chỉ cần trả lời email này.",
    },
    cart: Lines {
        subjects: ["Giỏ hàng của {a} vẫn đang chờ", "{a} còn quên gì trong giỏ hàng không?"],
        subject_item: "{i} vẫn đang chờ {a}",
        main_item: "{i} vẫn đang chờ trong giỏ hàng của {p}.",
        main: "Giỏ hàng của {p} vẫn đang chờ.",
        more: "{p} có thể hoàn tất đơn hàng bất cứ lúc nào.",
    },
    win_back: Lines {
        subjects: ["Lâu rồi không gặp {a}", "Chúng tôi nhớ {a}"],
        subject_item: "",
        main_item: "Đã lâu rồi {p} chưa ghé thăm, chúng tôi rất nhớ {p}.",
        main: "Đã lâu rồi {p} chưa ghé thăm, chúng tôi rất nhớ {p}.",
        more: "Mời {p} xem những điều mới từ lần ghé trước.",
    },
    replenishment: Lines {
        subjects: ["Đến lúc bổ sung rồi, {a}", "{a} sắp dùng hết chưa?"],
        subject_item: "Đến lúc bổ sung {i} rồi, {a}",
        main_item: "{i} của {p} có lẽ sắp hết, đã đến lúc bổ sung.",
        main: "Có lẽ đã đến lúc {p} bổ sung những món quen dùng.",
        more: "Đã {d} ngày kể từ đơn hàng gần nhất của {p}.",
    },
    announcement: Lines {
        subjects: ["Tin mới dành cho {a}", "Điều mới dành riêng cho {a}"],
        subject_item: "Mới: {i}",
        main_item: "{i} vừa ra mắt, và {p} là một trong những người đầu tiên được biết.",
        main: "Chúng tôi có điều mới muốn chia sẻ với {p}.",
        more: "",
    },
    onboarding: Lines {
        subjects: ["Chào mừng {a}", "Chào mừng {a} đến với chúng tôi"],
        subject_item: "",
        main_item: "Chúng tôi rất vui được đồng hành cùng {p}.",
        main: "Chúng tôi rất vui được đồng hành cùng {p}.",
        more: "Nếu cần hỗ trợ để bắt đầu, {p} cứ trả lời email này.",
    },
    reminder: Lines {
        subjects: ["Lời nhắc dành cho {a}", "Nhắc nhẹ {a}"],
        subject_item: "Nhắc {a}: {i}",
        main_item: "Chúng tôi xin nhắc {p} về {i}.",
        main: "Chúng tôi gửi {p} lời nhắc nhỏ này.",
        more: "",
    },
    renewal: Lines {
        subjects: ["Nhắc {a} gia hạn", "Đến lúc gia hạn rồi, {a}"],
        subject_item: "{i} của {a} sắp hết hạn",
        main_item: "{i} của {p} sắp hết hạn.",
        main: "Dịch vụ của {p} sắp hết hạn.",
        more: "{p} gia hạn kịp thời để giữ nguyên mọi quyền lợi nhé.",
    },
    recommendation: Lines {
        subjects: ["Dành riêng cho {a}", "Gợi ý cho {a}"],
        subject_item: "{a} còn quan tâm đến {i} không?",
        main_item: "{i} có thể là lựa chọn {p} đang tìm.",
        main: "Chúng tôi đã chọn vài món có thể {p} sẽ thích.",
        more: "",
    },
    update: Lines {
        subjects: ["Lời cảm ơn gửi {a}", "Đôi lời cảm ơn gửi {a}"],
        subject_item: "",
        main_item: "Cảm ơn {p} đã đồng hành cùng chúng tôi.",
        main: "Cảm ơn {p} đã đồng hành cùng chúng tôi.",
        more: "",
    },
};

pub(super) const ZH: Phrases = Phrases {
    hello: ["{a}，您好！", "亲爱的{a}："],
    hello_sms: "{a}，",
    offer: "下次下单可享{o}。",
    offer_first: "首单可享{o}。",
    link: "详情：{l}",
    sign_off: "祝您生活愉快！",
    sign_off_apology: "再次向您致歉。",
    opt_out_code: "回T退订",
    opt_out_reply: "回T退订",
    joiner: "",
    apology: Lines {
        subjects: ["{a}，我们向您致歉", "致{a}的一封道歉信"],
        subject_item: "",
        main_item: "对于您最近的不愉快体验，我们深表歉意，正在尽快为您处理。",
        main: "对于您最近的不愉快体验，我们深表歉意，正在尽快为您处理。",
        more: "客服团队今天会与您联系。",
    },
    thank_you: Lines {
        subjects: ["{a}，感谢您的订购", "感谢{a}的信任"],
        subject_item: "{a}，感谢您购买{i}",
        main_item: "感谢您购买{i}。",
        main: "感谢您的订购。",
        more: "如有任何问题，直接回复本邮件即可。",
    },
    cart: Lines {
        subjects: ["{a}，您的购物车还在等您", "{a}，还在考虑吗？"],
        subject_item: "{a}，您购物车里的{i}还在",
        main_item: "您的购物车里还有{i}。",
        main: "您的购物车还在等您。",
        more: "随时可以完成下单。",
    },
    win_back: Lines {
        subjects: ["{a}，好久不见", "{a}，我们很想念您"],
        subject_item: "",
        main_item: "好久不见，我们很想念您。",
        main: "好久不见，我们很想念您。",
        more: "来看看您上次光临之后的新变化吧。",
    },
    replenishment: Lines {
        subjects: ["{a}，该补货了吗？", "{a}，常用的快用完了吗？"],
        subject_item: "{a}，该补充{i}了吗？",
        main_item: "您的{i}可能快用完了，是时候补货了。",
        main: "您常用的商品可能快用完了，是时候补货了。",
        more: "距离您上次下单已有{d}天。",
    },
    announcement: Lines {
        subjects: ["{a}，有新消息与您分享", "{a}的专属新消息"],
        subject_item: "全新推出：{i}",
        main_item: "{i}现已推出，您是最先知道的人之一。",
        main: "我们有新消息想与您分享。",
        more: "",
    },
    onboarding: Lines {
        subjects: ["{a}，欢迎您", "欢迎{a}加入"],
        subject_item: "",
        main_item: "欢迎加入！很高兴与您同行。",
        main: "欢迎加入！很高兴与您同行。",
        more: "如需帮助，直接回复本邮件即可。",
    },
    reminder: Lines {
        subjects: ["{a}，温馨提醒", "给{a}的温馨提醒"],
        subject_item: "温馨提醒：{i}",
        main_item: "温馨提醒您留意{i}。",
        main: "这是一条给您的温馨提醒。",
        more: "",
    },
    renewal: Lines {
        subjects: ["{a}，续期提醒", "{a}，温馨提醒：即将到期"],
        subject_item: "{a}，您的{i}即将到期",
        main_item: "您的{i}即将到期。",
        main: "您的服务即将到期。",
        more: "及时续期即可保留全部权益。",
    },
    recommendation: Lines {
        subjects: ["{a}的专属推荐", "{a}，为您精选"],
        subject_item: "{a}，还在关注{i}吗？",
        main_item: "{i}或许正是您想要的。",
        main: "我们为您精选了几款好物。",
        more: "",
    },
    update: Lines {
        subjects: ["{a}，感谢一路相伴", "致{a}的一封感谢信"],
        subject_item: "",
        main_item: "感谢您一直以来的支持。",
        main: "感谢您一直以来的支持。",
        more: "",
    },
};
