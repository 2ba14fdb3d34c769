//! The fixed words of questions in English, Vietnamese and Chinese: rankings, grains, people, comparisons,
//! negation, and the events people name in their own words. Measures and dimensions bring their own words from
//! the metrics layer. Vietnamese words are written without tone marks, as questions are matched after folding.

use jiff::civil::Date;

/// Words that ask for the most (a ranking, high first).
pub const MOST: &[&str] = &[
    "top",
    "best",
    "most",
    "highest",
    "largest",
    "biggest",
    "leading",
    "greatest",
    "which",
    "what are the",
    "nhat",
    "nao",
    "dan dau",
    "cao nhat",
    "nhieu nhat",
    "lon nhat",
    "最",
    "哪个",
    "哪些",
    "哪家",
    "哪款",
    "排名",
    "排行",
    "前",
];

/// Words that ask for the least (a ranking, low first).
pub const LEAST: &[&str] = &[
    "least",
    "worst",
    "lowest",
    "fewest",
    "bottom",
    "smallest",
    "slowest",
    "it nhat",
    "thap nhat",
    "kem nhat",
    "cham nhat",
    "te nhat",
    "nho nhat",
    "最少",
    "最差",
    "最低",
    "垫底",
    "最小",
    "卖得最差",
    "最慢",
];

/// Words that say "split by" a dimension that follows them.
pub const BY: &[&str] = &["by", "per", "for each", "across", "theo", "moi", "tung", "按", "按照", "每个", "各", "分"];

/// Grains: (grain, words).
pub const GRAINS: &[(&str, &[&str])] = &[
    (
        "day",
        &[
            "by day",
            "per day",
            "each day",
            "daily",
            "day by day",
            "every day",
            "theo ngay",
            "moi ngay",
            "hang ngay",
            "tung ngay",
            "moi ngay",
            "每天",
            "每日",
            "按天",
            "按日",
            "逐日",
            "日均",
            "每一天",
        ],
    ),
    (
        "week",
        &[
            "by week",
            "per week",
            "each week",
            "weekly",
            "week by week",
            "theo tuan",
            "moi tuan",
            "hang tuan",
            "tung tuan",
            "每周",
            "按周",
            "每星期",
            "逐周",
        ],
    ),
    (
        "month",
        &[
            "by month",
            "per month",
            "each month",
            "monthly",
            "month by month",
            "theo thang",
            "moi thang",
            "hang thang",
            "tung thang",
            "每月",
            "按月",
            "逐月",
            "每个月",
        ],
    ),
];

/// Words that ask how many people.
pub const PEOPLE: &[&str] = &[
    "how many people",
    "how many users",
    "how many customers",
    "how many profiles",
    "how many visitors",
    "how many shoppers",
    "how many buyers",
    "number of people",
    "number of users",
    "number of customers",
    "bao nhieu nguoi",
    "bao nhieu khach",
    "bao nhieu nguoi dung",
    "so nguoi",
    "so khach",
    "bao nhieu ban",
    "多少人",
    "多少用户",
    "多少客户",
    "多少顾客",
    "多少位",
    "人数",
    "几个人",
    "多少个用户",
];

/// Words that compare two periods.
pub const COMPARE: &[&str] = &[
    "compare",
    "compared",
    "versus",
    "vs",
    "than",
    "against",
    "change from",
    "so voi",
    "so sanh",
    "hon",
    "相比",
    "对比",
    "比较",
    "比",
    "同比",
    "环比",
    "和上",
];

/// Words that turn the events after them into ones not done.
pub const NOT: &[&str] = &[
    "but not",
    "and not",
    "but did not",
    "but didn't",
    "and did not",
    "and didn't",
    "without",
    "but never",
    "did not",
    "didn't",
    "never",
    "not",
    "nhung khong",
    "ma khong",
    "nhung chua",
    "ma chua",
    "khong",
    "chua",
    "但没有",
    "但没",
    "却没有",
    "但是没有",
    "而没有",
    "但未",
    "没有",
    "没",
    "未",
];

/// Words that name a segment.
pub const SEGMENT: &[&str] =
    &["segment", "audience", "phan khuc", "nhom khach", "tep khach", "分群", "人群", "细分", "群组", "受众"];

/// Words that name a flow.
pub const FLOW: &[&str] = &["flow", "journey", "campaign flow", "luong", "hanh trinh", "流程", "旅程"];

/// Events named in people's own words, by Segment's spec names: (event, words).
pub const EVENTS: &[(&str, &[&str])] = &[
    (
        "Order Completed",
        &[
            "ordered",
            "order",
            "bought",
            "buy",
            "purchased",
            "purchase",
            "made a purchase",
            "placed an order",
            "completed an order",
            "mua hang",
            "da mua",
            "dat hang",
            "mua",
            "购买",
            "下单",
            "下了单",
            "买了",
            "买过",
            "完成订单",
        ],
    ),
    (
        "Product Added",
        &[
            "added to cart",
            "added a product",
            "add to cart",
            "them vao gio",
            "bo vao gio",
            "them gio hang",
            "加入购物车",
            "加购",
            "加了购物车",
        ],
    ),
    (
        "Product Viewed",
        &[
            "viewed a product",
            "viewed products",
            "looked at a product",
            "xem san pham",
            "浏览商品",
            "看了商品",
            "浏览了商品",
        ],
    ),
    (
        "Checkout Started",
        &["started checkout", "began checkout", "started a checkout", "bat dau thanh toan", "开始结账", "开始结算"],
    ),
    ("Signed Up", &["signed up", "registered", "sign up", "dang ky", "注册"]),
    ("Email Opened", &["opened an email", "opened the email", "opened email", "mo email", "打开邮件", "打开了邮件"]),
    (
        "Email Link Clicked",
        &[
            "clicked an email",
            "clicked a link",
            "clicked the email",
            "nhap vao email",
            "bam vao email",
            "点击邮件",
            "点了邮件",
        ],
    ),
];

/// Words that ask for a total or a count.
pub const HOW_MUCH: &[&str] = &["how much", "how many", "total", "bao nhieu", "tong", "多少", "总", "几"];

/// The months in English, January first.
pub const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A range of local dates in words of `lang`, with the time zone.
pub fn date_range(lang: &str, from: Date, to: Date, zone: &str) -> String {
    let en_month = |d: Date| MONTHS[(d.month() - 1) as usize];
    match lang {
        "vi" if from == to => format!("ngày {}/{}/{} ({zone})", from.day(), from.month(), from.year()),
        "vi" => format!(
            "từ {}/{}/{} đến {}/{}/{} ({zone})",
            from.day(),
            from.month(),
            from.year(),
            to.day(),
            to.month(),
            to.year()
        ),
        "zh" if from == to => format!("{}年{}月{}日（{zone}）", from.year(), from.month(), from.day()),
        "zh" => format!(
            "{}年{}月{}日至{}年{}月{}日（{zone}）",
            from.year(),
            from.month(),
            from.day(),
            to.year(),
            to.month(),
            to.day()
        ),
        _ if from == to => format!("{} {} {} in {zone}", from.day(), en_month(from), from.year()),
        _ if from.year() == to.year() && from.month() == to.month() => {
            format!("{} to {} {} {} in {zone}", from.day(), to.day(), en_month(to), to.year())
        }
        _ => format!(
            "{} {} {} to {} {} {} in {zone}",
            from.day(),
            en_month(from),
            from.year(),
            to.day(),
            en_month(to),
            to.year()
        ),
    }
}

/// Measure words that carry their own grain: daily, weekly or monthly active people.
pub const IMPLIED_GRAIN: &[(&str, &[&str])] = &[
    ("day", &["dau", "daily active", "日活", "日活跃"]),
    ("week", &["wau", "weekly active", "周活", "周活跃"]),
    ("month", &["mau", "monthly active", "月活", "月活跃"]),
];

/// Questions about the future: Tutti counts what happened and does not forecast.
pub const FUTURE: &[&str] = &[
    "next year",
    "next month",
    "next week",
    "next quarter",
    "forecast",
    "predict",
    "will be",
    "will we",
    "going to be",
    "nam sau",
    "thang sau",
    "tuan sau",
    "nam toi",
    "thang toi",
    "tuan toi",
    "du bao",
    "du doan",
    "se la",
    "se co",
    "明年",
    "下个月",
    "下月",
    "下周",
    "下季度",
    "预测",
    "预计",
    "会是",
    "会有",
    "未来",
];

/// Questions asking why: Tutti counts what happened; it cannot say why.
pub const WHY: &[&str] = &["why", "reason", "tai sao", "vi sao", "ly do", "nguyen nhan", "为什么", "为何", "原因"];

/// Questions asking for people's contact details: answers are about groups of people.
pub const PERSONAL: &[&str] = &[
    "email address",
    "email addresses",
    "phone number",
    "phone numbers",
    "contact details",
    "home address",
    "so dien thoai",
    "dia chi email",
    "dia chi nha",
    "thong tin lien he",
    "手机号",
    "电话号码",
    "邮箱地址",
    "联系方式",
    "家庭住址",
    "身份证",
];
