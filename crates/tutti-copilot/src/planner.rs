//! The local planner: a goal's reading made into a plan, every gap filled with a stated assumption (in the
//! goal's language), or a plain refusal when the goal is outside the shapes it covers. No model, no network.

use tutti_ai::text::Language;
use tutti_core::money::Money;

use crate::plan::{Audience, Brief, ChannelBudget, Condition, Plan, Schedule, Shape};
use crate::read::{self, Reading, words};

/// What the planner knows of this installation.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// Trait names profiles have (to find the one holding lifetime value).
    pub traits: Vec<String>,
    /// The price of a message per channel (`email`, `zalo`, `sms`), from the connectors' `price`.
    pub prices: Vec<(String, Money)>,
    /// The event that counts as an order (the metrics layer's first order event).
    pub order_event: String,
    /// The event that counts as signing up.
    pub signup_event: String,
    /// The event that puts something in a cart.
    pub cart_event: String,
}

impl Context {
    /// Segment's e-commerce spec names, no prices, no traits known.
    pub fn standard() -> Context {
        Context {
            traits: Vec::new(),
            prices: Vec::new(),
            order_event: "Order Completed".into(),
            signup_event: "Signed Up".into(),
            cart_event: "Product Added".into(),
        }
    }
}

/// Why a goal was not planned, in its language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Sentences in the goal's language.
fn say(language: Language, en: String, vi: String, zh: String) -> String {
    match language {
        Language::Vi => vi,
        Language::Zh => zh,
        _ => en,
    }
}

/// Money as the goal's language writes it: Vietnamese groups thousands with `.` and marks decimals with `,`.
fn written(money: &Money, lang: Language) -> String {
    let shown = money.to_string();
    match lang {
        Language::Vi => shown
            .chars()
            .map(|c| match c {
                ',' => '.',
                '.' => ',',
                c => c,
            })
            .collect(),
        _ => shown,
    }
}

/// The default holdout: a tenth of the audience gets nothing, so the report can say what the plan added.
pub const HOLDOUT: f64 = 0.1;
/// Days without an order after which a customer counts as lapsed.
pub const LAPSED_DAYS: u32 = 90;
/// How long a plan runs when the goal says not.
pub const DEFAULT_DAYS: u32 = 14;

/// Makes a plan (version 1, `proposed`) of a goal, as `id`, with the local reader.
pub fn plan(id: &str, goal: &str, cx: &Context) -> Result<Plan, Refusal> {
    plan_reading(id, goal, read::read(goal), cx)
}

/// Makes a plan of a goal from a reading of it (the local reader's, or a model's through the typed tool).
pub fn plan_reading(id: &str, goal: &str, r: Reading, cx: &Context) -> Result<Plan, Refusal> {
    let lang = r.language;
    let mut assumptions = Vec::new();
    let shape = match r.shapes.iter().find(|s| **s != Shape::Promote).or(r.shapes.first()) {
        Some(s) => *s,
        // An audience with nothing to do for it is a promotion to that audience.
        None if r.vip || r.city.is_some() || r.repeat.is_some() => Shape::Promote,
        None => return Err(refusal(lang)),
    };
    let currency = match &r.budget {
        Some((m, _)) => m.currency.clone(),
        None => read::language_currency(lang).to_owned(),
    };
    if let Some((m, false)) = &r.budget {
        assumptions.push(say(
            lang,
            format!("the budget is in {} (the goal wrote no currency)", m.currency),
            format!("ngân sách tính bằng {} (mục tiêu không ghi đơn vị tiền)", m.currency),
            format!("预算以 {} 计（目标未写币种）", m.currency),
        ));
    }
    let mut conditions = base_conditions(shape, cx, lang, &mut assumptions);
    modifiers(&r, cx, &currency, lang, &mut conditions, &mut assumptions);
    let channels = if r.channels.is_empty() {
        assumptions.push(say(
            lang,
            "channel: email (the goal named none)".into(),
            "kênh: email (mục tiêu không nêu kênh)".into(),
            "渠道：邮件（目标未指定渠道）".into(),
        ));
        vec!["email".to_owned()]
    } else {
        r.channels.clone()
    };
    let reach: Vec<String> = channels
        .iter()
        .filter_map(|c| words::CHANNELS.iter().find(|w| w.name == c))
        .map(|w| w.trait_name.to_owned())
        .collect();
    assumptions.push(say(
        lang,
        format!("only customers who can be reached: with {}", reach.join(" or ")),
        format!("chỉ khách liên lạc được: có {}", reach.join(" hoặc ")),
        format!("只包括能联系到的客户：有 {}", reach.join(" 或 ")),
    ));
    conditions.push(Condition::Reachable { traits: reach });
    let days = r.days.unwrap_or_else(|| {
        assumptions.push(say(
            lang,
            format!("runs for {DEFAULT_DAYS} days (the goal named no timeframe)"),
            format!("chạy trong {DEFAULT_DAYS} ngày (mục tiêu không nêu thời gian)"),
            format!("运行 {DEFAULT_DAYS} 天（目标未写时间）"),
        ));
        DEFAULT_DAYS
    });
    let holdout = if r.no_holdout { 0.0 } else { r.holdout.unwrap_or(HOLDOUT) };
    if holdout > 0.0 {
        let pct = (holdout * 100.0).round();
        assumptions.push(say(
            lang,
            format!("{pct}% of the audience is kept as a control and gets nothing, to measure what the plan adds"),
            format!("{pct}% khách được giữ làm nhóm đối chứng, không nhận gì, để đo hiệu quả của kế hoạch"),
            format!("{pct}% 的受众作为对照组不发送，用来衡量计划带来的增量"),
        ));
    }
    let goal_event = cx.order_event.clone();
    assumptions.push(say(
        lang,
        format!("success = {goal_event} within the {days} days; a customer who reaches it gets nothing more"),
        format!("thành công = {goal_event} trong {days} ngày; khách đã đạt thì không nhận thêm tin"),
        format!("成功 = {days} 天内出现 {goal_event}；达成的客户不再收到消息"),
    ));
    assumptions.push(say(
        lang,
        "each customer gets the copy in their own language (trait `language`), checked by the review gate".into(),
        "mỗi khách nhận nội dung bằng ngôn ngữ của họ (thuộc tính `language`), đã qua kiểm duyệt".into(),
        "每位客户收到其自己语言的文案（属性 `language`），并经过审核".into(),
    ));
    assumptions.push(say(
        lang,
        "messages respect consent and the quiet hours in force; those met by quiet hours wait".into(),
        "tin nhắn tuân theo sự đồng ý và giờ yên lặng đang áp dụng; tin rơi vào giờ yên lặng sẽ chờ".into(),
        "消息遵守用户同意和现行的免打扰时段；遇到免打扰时段的消息会等待".into(),
    ));
    let briefs = briefs(shape, &channels, days);
    let budget = r.budget.map(|(m, _)| m);
    if budget.is_none() {
        assumptions.push(say(
            lang,
            "no budget: messages are charged at the connectors' prices, without a limit".into(),
            "không có ngân sách: tin nhắn tính theo giá của connector, không giới hạn".into(),
            "无预算：消息按连接器价格计费，不设上限".into(),
        ));
    }
    let flow = format!("plan-{id}");
    Ok(Plan {
        id: id.to_owned(),
        version: 1,
        goal: goal.to_owned(),
        language: lang.code().to_owned(),
        shape,
        assumptions,
        audience: Audience { segment: format!("{flow}-audience"), conditions },
        holdout,
        channels,
        briefs,
        schedule: Schedule { days, quiet_hours: "defer".into(), starts_at: None, ends_at: None },
        budget,
        budget_split: Vec::new(),
        goal_event,
        flow,
        status: "proposed".into(),
    })
}

/// The refusal of a goal outside the shapes, in its language (what a model that found it so gets said too).
pub fn refuse(goal: &str) -> Refusal {
    refusal(read::read(goal).language)
}

fn refusal(lang: Language) -> Refusal {
    Refusal(say(
        lang,
        "The local planner covers these goals: win back lapsed customers, nurture new sign-ups, promote to an \
         audience (VIPs, a city, repeat buyers), re-engage cart abandoners, announce to everyone, upsell after a \
         purchase. This goal is none of them; say which, or configure a model for the copilot."
            .into(),
        "Bộ lập kế hoạch cục bộ làm được: kéo lại khách lâu không mua, chăm sóc khách mới đăng ký, quảng bá cho một \
         nhóm (VIP, một thành phố, khách mua nhiều lần), nhắc khách bỏ giỏ hàng, thông báo cho mọi người, bán thêm \
         sau khi mua. Mục tiêu này không thuộc loại nào; hãy nói rõ, hoặc cấu hình một mô hình cho copilot."
            .into(),
        "本地规划器支持这些目标：召回流失客户、培育新注册用户、向某类受众推广（VIP、某城市、复购客户）、挽回弃购、\
         通知所有人、购买后追加销售。这个目标不属于其中任何一种；请说明是哪一种，或为 copilot 配置模型。"
            .into(),
    ))
}

/// The audience each shape starts from.
fn base_conditions(shape: Shape, cx: &Context, lang: Language, assumptions: &mut Vec<String>) -> Vec<Condition> {
    let order = &cx.order_event;
    match shape {
        Shape::WinBack => {
            assumptions.push(say(
                lang,
                format!("lapsed = no {order} in {LAPSED_DAYS} days, after at least one"),
                format!("lâu không mua = không có {order} trong {LAPSED_DAYS} ngày, đã từng mua"),
                format!("流失 = {LAPSED_DAYS} 天内没有 {order}（之前购买过）"),
            ));
            vec![Condition::LastPerformed { event: order.clone(), days: LAPSED_DAYS }]
        }
        Shape::Nurture => {
            let signup = &cx.signup_event;
            assumptions.push(say(
                lang,
                format!("new sign-ups = {signup} in the last 30 days, no {order} yet"),
                format!("khách mới đăng ký = {signup} trong 30 ngày qua, chưa có {order}"),
                format!("新注册用户 = 最近 30 天内 {signup}，尚无 {order}"),
            ));
            vec![
                Condition::Performed { event: signup.clone(), times: 1, days: Some(30) },
                Condition::NotPerformed { event: order.clone(), days: None },
            ]
        }
        Shape::CartRecovery => {
            let cart = &cx.cart_event;
            assumptions.push(say(
                lang,
                format!("cart abandoners = {cart} in the last 7 days, no {order} since"),
                format!("khách bỏ giỏ hàng = {cart} trong 7 ngày qua, chưa có {order}"),
                format!("弃购用户 = 最近 7 天内 {cart}，之后没有 {order}"),
            ));
            vec![
                Condition::Performed { event: cart.clone(), times: 1, days: Some(7) },
                Condition::NotPerformed { event: order.clone(), days: Some(7) },
            ]
        }
        Shape::Upsell => {
            assumptions.push(say(
                lang,
                format!("recent buyers = {order} in the last 30 days"),
                format!("khách vừa mua = {order} trong 30 ngày qua"),
                format!("最近购买的客户 = 最近 30 天内有 {order}"),
            ));
            vec![Condition::Performed { event: order.clone(), times: 1, days: Some(30) }]
        }
        Shape::Announce => {
            assumptions.push(say(
                lang,
                "everyone = every customer who can be reached on the channels".into(),
                "mọi người = mọi khách liên lạc được qua các kênh".into(),
                "所有人 = 所有能通过这些渠道联系到的客户".into(),
            ));
            Vec::new()
        }
        Shape::Promote => Vec::new(),
    }
}

/// VIPs, a city, repeat buyers: what narrows any shape's audience.
fn modifiers(
    r: &Reading,
    cx: &Context,
    currency: &str,
    lang: Language,
    conditions: &mut Vec<Condition>,
    assumptions: &mut Vec<String>,
) {
    if r.vip {
        let found = words::VALUE_TRAITS.iter().find(|t| cx.traits.iter().any(|k| k == *t));
        let trait_name = found.copied().unwrap_or(words::VALUE_TRAITS[0]).to_owned();
        let at_least = words::vip_threshold(currency);
        let shown = written(&Money::new((at_least * 1e6) as i64, currency), lang);
        assumptions.push(say(
            lang,
            format!("VIP = lifetime value (trait `{trait_name}`) at least {shown}"),
            format!("VIP = giá trị vòng đời (thuộc tính `{trait_name}`) từ {shown}"),
            format!("VIP = 客户终身价值（属性 `{trait_name}`）不低于 {shown}"),
        ));
        if found.is_none() {
            assumptions.push(say(
                lang,
                format!("no profile has a lifetime value trait yet; `{trait_name}` is read"),
                format!("chưa hồ sơ nào có thuộc tính giá trị vòng đời; dùng `{trait_name}`"),
                format!("尚无客户档案有终身价值属性；使用 `{trait_name}`"),
            ));
        }
        conditions.push(Condition::TraitAtLeast { name: "VIP".into(), trait_name, at_least });
    }
    if let Some(city) = &r.city {
        let values = words::city_values(city);
        assumptions.push(say(
            lang,
            format!("{city} = city trait {}", values.join(", ")),
            format!("{city} = thuộc tính city là {}", values.join(", ")),
            format!("{city} = city 属性为 {}", values.join("、")),
        ));
        conditions.push(Condition::TraitIn { name: city.clone(), trait_name: "city".into(), values });
    }
    if let Some(times) = r.repeat {
        let order = &cx.order_event;
        assumptions.push(say(
            lang,
            format!("repeat buyers = {order} at least {times} times"),
            format!("khách mua nhiều lần = {order} ít nhất {times} lần"),
            format!("复购客户 = {order} 至少 {times} 次"),
        ));
        conditions.push(Condition::Performed { event: order.clone(), times, days: None });
    }
}

/// What each channel's message is asked to say, and on which day it goes.
fn briefs(shape: Shape, channels: &[String], days: u32) -> Vec<Brief> {
    let what = match shape {
        Shape::WinBack => {
            "We miss them: invite them back with what is new since their last order, and a reason to come back now."
        }
        Shape::Nurture => "Welcome them, show what the shop is best at, and help them to a first order.",
        Shape::Promote => "Tell them about the offer that fits them, why it is for them, and until when.",
        Shape::CartRecovery => "Remind them of what they left in their cart, and make it easy to finish the order.",
        Shape::Announce => "Announce the news plainly: what it is, why it matters to them, what to do.",
        Shape::Upsell => "Thank them for their recent order and suggest what goes with it.",
    };
    // Spread over the first half of the timeframe, leaving the rest for the goal to happen.
    let gap = if channels.len() > 1 { (days / 2 / (channels.len() as u32 - 1).max(1)).max(1) } else { 0 };
    channels
        .iter()
        .enumerate()
        .map(|(i, channel)| Brief { channel: channel.clone(), prompt: what.to_owned(), day: gap * i as u32 })
        .collect()
}

impl Plan {
    /// The plan as approved at `now`: it starts then and ends `days` later.
    pub fn starting(mut self, now: tutti_core::time::Millis) -> Plan {
        let days = i64::from(self.schedule.days);
        self.schedule.starts_at = Some(tutti_core::time::format_timestamp(now));
        self.schedule.ends_at = Some(tutti_core::time::format_timestamp(now + days * 86_400_000));
        self
    }

    /// Splits the budget across the channels from the price table and who can be reached on each: `reach`
    /// gives, per channel, how many of the audience can be reached there. The treated share is `1 - holdout`.
    pub fn split_budget(&mut self, reach: &[(String, u64)], prices: &[(String, Money)]) {
        let treated = 1.0 - self.holdout;
        self.budget_split = self
            .channels
            .iter()
            .map(|channel| {
                let reachable = reach.iter().find(|(c, _)| c == channel).map_or(0, |(_, n)| *n);
                let messages = (reachable as f64 * treated).round() as u64;
                let price = prices.iter().find(|(c, _)| c == channel).map(|(_, p)| p.clone());
                let cost = price.as_ref().map(|p| Money::new(p.micros.saturating_mul(messages as i64), &p.currency));
                ChannelBudget { channel: channel.clone(), price, messages, cost }
            })
            .collect();
    }

    /// The estimated cost: the sum of the channels' costs, per currency (one entry when all agree).
    pub fn cost_estimate(&self) -> Vec<Money> {
        let mut out: Vec<Money> = Vec::new();
        for cost in self.budget_split.iter().filter_map(|c| c.cost.as_ref()) {
            match out.iter_mut().find(|m| m.currency == cost.currency) {
                Some(m) => m.micros = m.micros.saturating_add(cost.micros),
                None => out.push(cost.clone()),
            }
        }
        if out.is_empty() {
            let currency = self.budget.as_ref().map_or("VND", |b| b.currency.as_str());
            out.push(Money::new(0, currency));
        }
        out
    }
}
