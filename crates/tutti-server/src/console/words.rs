//! Every string the console shows, in English, Vietnamese and Chinese. A person's language is the one they
//! chose (the `tutti_lang` cookie), else the first of their browser's `Accept-Language` that Tutti speaks,
//! else English.

use axum::http::HeaderMap;

/// The languages the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Vi,
    Zh,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Vi, Lang::Zh];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Vi => "vi",
            Lang::Zh => "zh",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        let primary = code.trim().split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        Lang::ALL.into_iter().find(|l| l.code() == primary)
    }

    /// The person's choice, else their browser's first language Tutti speaks (by `q`), else English.
    pub fn of(headers: &HeaderMap) -> Lang {
        if let Some(lang) = crate::sessions::cookie(headers, "tutti_lang").and_then(Lang::parse) {
            return lang;
        }
        let accept = headers.get(axum::http::header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let mut offered: Vec<(f32, Lang)> = accept
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let lang = Lang::parse(pieces.next()?)?;
                let q =
                    pieces.find_map(|p| p.trim().strip_prefix("q=")).and_then(|q| q.parse::<f32>().ok()).unwrap_or(1.0);
                Some((q, lang))
            })
            .collect();
        // Stable: among equal weights the browser's order stands.
        offered.sort_by(|a, b| b.0.total_cmp(&a.0));
        offered.first().map_or(Lang::En, |(_, lang)| *lang)
    }

    pub fn words(self) -> &'static Words {
        match self {
            Lang::En => &EN,
            Lang::Vi => &VI,
            Lang::Zh => &ZH,
        }
    }
}

/// The console's strings in one language.
pub struct Words {
    pub sign_in: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub sign_in_failed: &'static str,
    pub too_many_attempts: &'static str,
    pub sign_out: &'static str,
    pub overview: &'static str,
    pub signed_in_as: &'static str,
    pub events_accepted: &'static str,
    pub events_processed: &'static str,
    pub processor_lag: &'static str,
    pub actions_queued: &'static str,
    pub actions_delivered: &'static str,
    pub actions_retried: &'static str,
    pub actions_dead: &'static str,
    pub actions_skipped: &'static str,
    pub approvals_waiting: &'static str,
    pub dead_letters: &'static str,
    pub deliveries_by_connector: &'static str,
    pub connector: &'static str,
    pub outcomes: [&'static str; 5],
    pub nothing_delivered: &'static str,
    pub updated: &'static str,
    pub approvals: &'static str,
    pub nothing_waits: &'static str,
    pub profile: &'static str,
    pub why: &'static str,
    pub expires: &'static str,
    pub then: &'static str,
    pub subject: &'static str,
    pub body: &'static str,
    pub approve: &'static str,
    pub reject: &'static str,
    pub reason: &'static str,
    pub approvers_only: &'static str,
    pub approved: &'static str,
    pub rejected: &'static str,
    pub closed: &'static str,
}

static EN: Words = Words {
    sign_in: "Sign in",
    email: "Email",
    password: "Password",
    sign_in_failed: "The email and password are not those of an account.",
    too_many_attempts: "Too many failed sign-ins. Try again in a few minutes.",
    sign_out: "Sign out",
    overview: "Overview",
    signed_in_as: "Signed in as",
    events_accepted: "Events accepted",
    events_processed: "Events processed",
    processor_lag: "Events waiting to be processed",
    actions_queued: "Actions queued",
    actions_delivered: "Actions delivered",
    actions_retried: "Attempts to retry",
    actions_dead: "Actions given up",
    actions_skipped: "Actions stopped by a policy",
    approvals_waiting: "Approvals waiting",
    dead_letters: "Dead letters",
    deliveries_by_connector: "Deliveries by connector",
    connector: "Connector",
    outcomes: ["given up", "deferred", "delivered", "retried", "skipped"],
    nothing_delivered: "Nothing delivered yet.",
    updated: "Counts since the server started; this page refreshes every 10 seconds.",
    approvals: "Approvals",
    nothing_waits: "Nothing waits for approval.",
    profile: "profile",
    why: "Why",
    expires: "Decide by",
    then: "then",
    subject: "Subject",
    body: "Message",
    approve: "Approve",
    reject: "Reject",
    reason: "Reason",
    approvers_only: "Approvers decide these messages.",
    approved: "Approved: the message goes out.",
    rejected: "Rejected: the message is never sent.",
    closed: "This message no longer waits: someone decided it, or it expired.",
};

static VI: Words = Words {
    sign_in: "Đăng nhập",
    email: "Email",
    password: "Mật khẩu",
    sign_in_failed: "Email và mật khẩu không khớp với tài khoản nào.",
    too_many_attempts: "Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau vài phút.",
    sign_out: "Đăng xuất",
    overview: "Tổng quan",
    signed_in_as: "Đang đăng nhập:",
    events_accepted: "Sự kiện đã nhận",
    events_processed: "Sự kiện đã xử lý",
    processor_lag: "Sự kiện chờ xử lý",
    actions_queued: "Hành động đã xếp hàng",
    actions_delivered: "Hành động đã gửi",
    actions_retried: "Lần gửi sẽ thử lại",
    actions_dead: "Hành động đã bỏ",
    actions_skipped: "Hành động bị chính sách chặn",
    approvals_waiting: "Đang chờ duyệt",
    dead_letters: "Thư lỗi",
    deliveries_by_connector: "Gửi theo kênh kết nối",
    connector: "Kênh kết nối",
    outcomes: ["đã bỏ", "hoãn lại", "đã gửi", "thử lại", "bỏ qua"],
    nothing_delivered: "Chưa gửi gì.",
    updated: "Số liệu từ lúc máy chủ khởi động; trang tự làm mới mỗi 10 giây.",
    approvals: "Phê duyệt",
    nothing_waits: "Không có gì chờ duyệt.",
    profile: "hồ sơ",
    why: "Lý do",
    expires: "Hạn quyết định",
    then: "sau đó",
    subject: "Tiêu đề",
    body: "Nội dung",
    approve: "Duyệt",
    reject: "Từ chối",
    reason: "Lý do",
    approvers_only: "Người duyệt quyết định các tin nhắn này.",
    approved: "Đã duyệt: tin nhắn sẽ được gửi.",
    rejected: "Đã từ chối: tin nhắn sẽ không bao giờ được gửi.",
    closed: "Tin nhắn này không còn chờ: đã có người quyết định, hoặc đã hết hạn.",
};

static ZH: Words = Words {
    sign_in: "登录",
    email: "邮箱",
    password: "密码",
    sign_in_failed: "邮箱和密码与任何账户都不匹配。",
    too_many_attempts: "登录失败次数过多，请几分钟后再试。",
    sign_out: "退出登录",
    overview: "概览",
    signed_in_as: "当前用户：",
    events_accepted: "已接收事件",
    events_processed: "已处理事件",
    processor_lag: "待处理事件",
    actions_queued: "已排队动作",
    actions_delivered: "已送达动作",
    actions_retried: "待重试的尝试",
    actions_dead: "已放弃的动作",
    actions_skipped: "被策略拦下的动作",
    approvals_waiting: "待审批",
    dead_letters: "死信",
    deliveries_by_connector: "按连接器统计的投递",
    connector: "连接器",
    outcomes: ["已放弃", "已推迟", "已送达", "重试", "已跳过"],
    nothing_delivered: "尚未投递任何内容。",
    updated: "自服务器启动以来的计数；本页每 10 秒刷新一次。",
    approvals: "审批",
    nothing_waits: "没有等待审批的内容。",
    profile: "档案",
    why: "原因",
    expires: "截止时间",
    then: "届时",
    subject: "主题",
    body: "正文",
    approve: "批准",
    reject: "拒绝",
    reason: "理由",
    approvers_only: "这些消息由审批人决定。",
    approved: "已批准：消息将发出。",
    rejected: "已拒绝：消息永远不会发出。",
    closed: "此消息已不再等待：已有人决定，或已过期。",
};

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_choice_then_the_browser_then_english() {
        assert_eq!(Lang::of(&headers(&[])), Lang::En);
        assert_eq!(Lang::of(&headers(&[("accept-language", "vi-VN,vi;q=0.9,en;q=0.8")])), Lang::Vi);
        assert_eq!(Lang::of(&headers(&[("accept-language", "fr-FR, zh-CN;q=0.7, en;q=0.5")])), Lang::Zh);
        assert_eq!(Lang::of(&headers(&[("accept-language", "fr, de")])), Lang::En);
        let chosen = headers(&[("accept-language", "vi"), ("cookie", "a=b; tutti_lang=zh")]);
        assert_eq!(Lang::of(&chosen), Lang::Zh);
    }
}
