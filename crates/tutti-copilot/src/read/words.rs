//! The words the local planner reads goals with, in Vietnamese, Chinese and English. Matching is on lower-cased
//! NFC text; Vietnamese phrases also match text typed without tone marks.

use crate::plan::Shape;

/// Phrases that name a goal's shape. A goal naming several takes the first shape in this order that it names,
/// except that `Promote` gives way to any other (a promotion to lapsed customers is a win-back); an upsell comes
/// before nurturing, since "khách mới mua" (who just bought) holds "khách mới" (new customer).
pub const SHAPES: &[(Shape, &[&str])] = &[
    (
        Shape::CartRecovery,
        &[
            "abandoned cart",
            "abandoned carts",
            "abandoned their cart",
            "abandoned their carts",
            "cart abandoners",
            "left in their cart",
            "left items in",
            "abandoned checkout",
            "abandoned checkouts",
            "bỏ giỏ hàng",
            "bỏ quên giỏ hàng",
            "giỏ hàng bị bỏ",
            "bỏ lại giỏ hàng",
            "chưa thanh toán giỏ hàng",
            "弃购",
            "放弃购物车",
            "购物车",
            "未付款",
            "加购未买",
        ],
    ),
    (
        Shape::WinBack,
        &[
            "lapsed",
            "inactive",
            "dormant",
            "churned",
            "win back",
            "win-back",
            "bring back",
            "reactivate",
            "re-activate",
            "haven't bought",
            "have not bought",
            "hasn't bought",
            "stopped buying",
            "lost customers",
            "come back",
            "lâu không mua",
            "lâu chưa mua",
            "không mua",
            "chưa quay lại",
            "ngủ đông",
            "kéo lại",
            "quay lại",
            "khách cũ",
            "không hoạt động",
            "khách rời bỏ",
            "mua lại",
            "流失",
            "沉睡",
            "召回",
            "挽回",
            "不活跃",
            "很久没买",
            "没有购买",
            "回流",
            "唤醒",
            "久未购买",
        ],
    ),
    (
        Shape::Upsell,
        &[
            "upsell",
            "up-sell",
            "cross-sell",
            "cross sell",
            "after a purchase",
            "after their purchase",
            "recent buyers",
            "just bought",
            "bought recently",
            "recently bought",
            "who bought last",
            "bán thêm",
            "bán chéo",
            "vừa mua",
            "mới mua",
            "sau khi mua",
            "đã mua gần đây",
            "追加销售",
            "交叉销售",
            "刚买",
            "最近购买",
            "购买后",
            "刚购买",
            "复购推荐",
        ],
    ),
    (
        Shape::Nurture,
        &[
            "new sign-up",
            "new sign-ups",
            "new signup",
            "new signups",
            "signed up",
            "new subscribers",
            "onboard",
            "welcome",
            "nurture",
            "first order",
            "first purchase",
            "mới đăng ký",
            "vừa đăng ký",
            "khách mới",
            "chào mừng",
            "nuôi dưỡng",
            "đơn đầu tiên",
            "mua lần đầu",
            "新注册",
            "刚注册",
            "新用户",
            "新客",
            "欢迎",
            "培育",
            "首单",
            "首次购买",
        ],
    ),
    (
        Shape::Announce,
        &[
            "everyone",
            "all customers",
            "all our customers",
            "all subscribers",
            "all users",
            "announce",
            "announcement",
            "let everybody know",
            "tell everyone",
            "tất cả khách hàng",
            "toàn bộ khách hàng",
            "mọi khách hàng",
            "tất cả mọi người",
            "thông báo",
            "công bố",
            "所有客户",
            "全部客户",
            "所有用户",
            "全体",
            "全部用户",
            "通知",
            "公告",
            "宣布",
        ],
    ),
    (
        Shape::Promote,
        &[
            "promote",
            "promotion",
            "sale",
            "offer",
            "discount",
            "push",
            "launch",
            "new collection",
            "quảng bá",
            "khuyến mãi",
            "giới thiệu",
            "ưu đãi",
            "giảm giá",
            "ra mắt",
            "bộ sưu tập mới",
            "推广",
            "促销",
            "优惠",
            "推荐",
            "折扣",
            "新品",
            "上新",
        ],
    ),
];

/// Phrases for high-value customers.
pub const VIP: &[&str] = &[
    "vip",
    "vips",
    "high-value",
    "high value",
    "big spenders",
    "best customers",
    "top customers",
    "top spenders",
    "khách vip",
    "khách hàng vip",
    "khách hàng thân thiết",
    "chi tiêu nhiều",
    "chi tiêu cao",
    "khách sộp",
    "大客户",
    "高价值",
    "贵宾",
    "高消费",
    "忠实客户",
    "重要客户",
];

/// Phrases for "customers who bought N times" (the number read after or before them).
pub const REPEAT: &[&str] = &[
    "bought twice",
    "bought at least",
    "repeat customers",
    "repeat buyers",
    "ordered twice",
    "purchased twice",
    "mua hai lần",
    "mua 2 lần",
    "mua từ",
    "mua ít nhất",
    "mua lại nhiều lần",
    "khách mua nhiều lần",
    "购买过两次",
    "买过两次",
    "至少购买",
    "复购",
    "购买两次",
    "多次购买",
];

/// Channels: Tutti's channel name, the connector and operation, the trait that reaches a person, and its words.
pub struct Channel {
    pub name: &'static str,
    pub trait_name: &'static str,
    pub words: &'static [&'static str],
}

pub const CHANNELS: &[Channel] = &[
    Channel {
        name: "email",
        trait_name: "email",
        words: &["email", "e-mail", "emails", "newsletter", "mail", "thư điện tử", "thư", "邮件", "电子邮件", "邮箱"],
    },
    Channel { name: "zalo", trait_name: "zalo_id", words: &["zalo", "zns"] },
    Channel {
        name: "sms",
        trait_name: "phone",
        words: &["sms", "text message", "text messages", "texts", "tin nhắn", "nhắn tin", "短信", "手机短信"],
    },
];

/// Words that turn the holdout off.
pub const NO_HOLDOUT: &[&str] = &[
    "no holdout",
    "without a holdout",
    "no control",
    "without control",
    "everyone gets it",
    "không giữ nhóm đối chứng",
    "không có nhóm đối chứng",
    "không đối chứng",
    "不留对照组",
    "无对照组",
    "不要对照组",
];

/// Cities, each with how people write it (its name in the three languages, with and without tone marks).
pub const PLACES: &[(&str, &[&str])] = &[
    ("Hà Nội", &["hà nội", "ha noi", "hanoi", "河内"]),
    (
        "Hồ Chí Minh",
        &["hồ chí minh", "ho chi minh", "hcm", "tp.hcm", "tphcm", "sài gòn", "saigon", "sai gon", "胡志明", "西贡"],
    ),
    ("Đà Nẵng", &["đà nẵng", "da nang", "danang", "岘港"]),
    ("Hải Phòng", &["hải phòng", "hai phong", "haiphong", "海防"]),
    ("Cần Thơ", &["cần thơ", "can tho", "芹苴"]),
    ("Shanghai", &["shanghai", "上海"]),
    ("Beijing", &["beijing", "北京"]),
    ("Guangzhou", &["guangzhou", "广州"]),
    ("Shenzhen", &["shenzhen", "深圳"]),
    ("Singapore", &["singapore", "新加坡"]),
];

/// How each city is stored in `city` traits: its names as written, capitalised and not, with and without marks.
pub fn city_values(city: &str) -> Vec<String> {
    let Some((_, spellings)) = PLACES.iter().find(|(c, _)| *c == city) else { return vec![city.to_owned()] };
    let mut out = vec![city.to_owned()];
    for s in spellings.iter() {
        let titled: String = s
            .split(' ')
            .map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ");
        for v in [(*s).to_owned(), titled] {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    }
    out
}

/// Traits that hold a customer's lifetime value, in the order looked for.
pub const VALUE_TRAITS: &[&str] = &["ltv", "lifetime_value", "total_spent", "clv", "customer_value"];

/// The lifetime value from which a customer is a VIP, per currency, unless the goal says otherwise.
pub fn vip_threshold(currency: &str) -> f64 {
    match currency {
        "VND" => 10_000_000.0,
        "CNY" => 3_000.0,
        "JPY" => 60_000.0,
        _ => 500.0,
    }
}
