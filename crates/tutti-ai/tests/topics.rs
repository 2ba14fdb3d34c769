//! The shipped objection taxonomy on sentences it was not written from: what sales and support notes say, in
//! Vietnamese, Chinese and English, labelled by hand. Accuracy is printed per language and must stay high;
//! chatter with no objection in it must not be filed under one.

use tutti_ai::topics::TopicTaxonomy;

/// (language, text, topic or "" for none).
const HELD_OUT: &[(&str, &str, &str)] = &[
    ("en", "The customer asked whether their data would be kept secure", "data_security"),
    ("en", "They fear a leak of customer records", "data_security"),
    ("en", "Security team wants to know how data is encrypted", "data_security"),
    ("en", "Honestly it is just too expensive for a team our size", "price"),
    ("en", "Budget is tight this quarter, price is a blocker", "price"),
    ("en", "Can it integrate with HubSpot and our internal tools?", "integration"),
    ("en", "Worried about migrating everything from the current tool", "integration"),
    ("en", "The interface looks complicated for our staff", "ease_of_use"),
    ("en", "Training the team would take too long", "ease_of_use"),
    ("en", "Last vendor's support never answered our tickets", "support"),
    ("en", "They need support in Vietnamese during business hours", "support"),
    ("en", "They do not want to be locked into an annual contract", "contract"),
    ("en", "Can we cancel the contract at any time?", "contract"),
    ("en", "Their current system has frequent outages and downtime", "reliability"),
    ("en", "Asked whether it is GDPR compliant", "compliance"),
    ("en", "Thanks for the demo yesterday, see you next week", ""),
    ("en", "Please send the invoice to accounting", ""),
    ("vi", "Khách hỏi dữ liệu của họ có được bảo mật không", "data_security"),
    ("vi", "Anh ấy sợ bị lộ thông tin khách hàng ra ngoài", "data_security"),
    ("vi", "Khách chê giá cao so với đối thủ", "price"),
    ("vi", "Ngân sách năm nay không đủ để mua gói này", "price"),
    ("vi", "Có kết nối được với phần mềm kế toán đang dùng không", "integration"),
    ("vi", "Lo việc chuyển dữ liệu từ hệ thống cũ sang", "integration"),
    ("vi", "Giao diện nhìn phức tạp, nhân viên khó làm quen", "ease_of_use"),
    ("vi", "Sợ mất nhiều thời gian đào tạo nhân viên", "ease_of_use"),
    ("vi", "Bên cũ hỗ trợ chậm, gọi không ai trả lời", "support"),
    ("vi", "Cần có người hỗ trợ bằng tiếng Việt", "support"),
    ("vi", "Không muốn ký hợp đồng ràng buộc cả năm", "contract"),
    ("vi", "Muốn biết điều khoản hủy hợp đồng", "contract"),
    ("vi", "Hệ thống hiện tại hay bị sập vào giờ cao điểm", "reliability"),
    ("vi", "Hỏi có tuân thủ Nghị định 13 không", "compliance"),
    ("vi", "Cảm ơn anh đã dành thời gian gặp hôm qua", ""),
    ("vi", "Gửi giúp em hóa đơn tháng này nhé", ""),
    ("zh", "客户问我们的数据是否安全", "data_security"),
    ("zh", "他们担心客户信息被泄露", "data_security"),
    ("zh", "客户觉得价格比竞品贵", "price"),
    ("zh", "今年预算不够买这个套餐", "price"),
    ("zh", "能不能对接我们现在用的财务软件", "integration"),
    ("zh", "担心从旧系统迁移数据很麻烦", "integration"),
    ("zh", "界面看起来太复杂，员工不会用", "ease_of_use"),
    ("zh", "培训员工要花很长时间", "ease_of_use"),
    ("zh", "以前的供应商客服一直不回复", "support"),
    ("zh", "需要中文的售后支持", "support"),
    ("zh", "不想签一年的合同被绑定", "contract"),
    ("zh", "想了解取消合同的条款", "contract"),
    ("zh", "现在的系统高峰期经常宕机", "reliability"),
    ("zh", "问是否符合个人信息保护法", "compliance"),
    ("zh", "谢谢您昨天抽时间见面", ""),
    ("zh", "请把这个月的发票发给我", ""),
];

/// Written after the scoring was settled and never tuned against: how the taxonomy does on text nobody looked
/// at while building it.
const SECOND_BATCH: &[(&str, &str, &str)] = &[
    ("en", "Procurement says the subscription costs more than they planned", "price"),
    ("en", "IT is nervous about where the customer data will be stored", "data_security"),
    ("en", "Does this plug into Shopify and our ERP?", "integration"),
    ("en", "Their marketers found the tool confusing and hard to use", "ease_of_use"),
    ("en", "What happens if we want to cancel after three months?", "contract"),
    ("en", "Worried the platform will be slow during big campaigns", "reliability"),
    ("en", "Legal needs to review the regulations on personal data", "compliance"),
    ("en", "Is there someone to call when things break, and how fast do you respond?", "support"),
    ("en", "Lunch on Friday works for me", ""),
    ("vi", "Phòng mua hàng nói chi phí thuê bao cao hơn dự kiến", "price"),
    ("vi", "Bộ phận IT lo dữ liệu khách hàng lưu ở đâu", "data_security"),
    ("vi", "Có tích hợp được với Shopify và phần mềm ERP không", "integration"),
    ("vi", "Đội marketing thấy công cụ rối và khó dùng", "ease_of_use"),
    ("vi", "Nếu muốn hủy sau ba tháng thì sao", "contract"),
    ("vi", "Sợ hệ thống chạy chậm khi chạy chiến dịch lớn", "reliability"),
    ("vi", "Pháp chế cần xem quy định về dữ liệu cá nhân", "compliance"),
    ("vi", "Khi có lỗi thì gọi ai, phản hồi nhanh không", "support"),
    ("vi", "Thứ sáu ăn trưa được nhé", ""),
    ("zh", "采购说订阅费用比预期高", "price"),
    ("zh", "IT担心客户数据存在哪里", "data_security"),
    ("zh", "能和Shopify还有ERP对接吗", "integration"),
    ("zh", "市场部觉得这个工具很乱，不好用", "ease_of_use"),
    ("zh", "如果三个月后想取消怎么办", "contract"),
    ("zh", "担心大促的时候系统很慢", "reliability"),
    ("zh", "法务要看一下个人数据的监管规定", "compliance"),
    ("zh", "出问题的时候找谁，响应快吗", "support"),
    ("zh", "周五一起吃午饭吧", ""),
];

/// Accuracy per language, and what went wrong.
fn measure(cases: &[(&str, &str, &str)]) -> Vec<(&'static str, f64, Vec<String>)> {
    let t = TopicTaxonomy::builtin();
    let mut report = Vec::new();
    for lang in ["en", "vi", "zh"] {
        let cases: Vec<_> = cases.iter().filter(|(l, _, _)| *l == lang).collect();
        let mut right = 0;
        let mut wrong = Vec::new();
        for (_, text, want) in &cases {
            let got = t.classify(text).map(|m| (m.topic.id.as_str(), m.score, m.example)).unwrap_or(("", 0.0, ""));
            if got.0 == *want {
                right += 1;
            } else {
                wrong.push(format!("{text:?}: want {want:?}, got {:?} ({:.2} via {:?})", got.0, got.1, got.2));
            }
        }
        let accuracy = right as f64 / cases.len() as f64;
        println!("{lang}: {right}/{} ({:.0}%)", cases.len(), accuracy * 100.0);
        for w in &wrong {
            println!("  {w}");
        }
        report.push((lang, accuracy, wrong));
    }
    report
}

/// On the unseen batch the lexical method misses what its examples have no words for (measured when it was
/// written: en 4/9, vi 7/9, zh 7/9), but what it files, it files right: a miss leaves the text under its own
/// words, a wrong topic would merge unrelated work.
#[test]
fn on_an_unseen_batch_it_misses_but_never_misfiles() {
    for (lang, accuracy, wrong) in measure(SECOND_BATCH) {
        let misfiled: Vec<&String> = wrong.iter().filter(|w| !w.contains("got \"\"")).collect();
        assert!(misfiled.is_empty(), "{lang}: misfiled {misfiled:#?}");
        assert!(accuracy >= 0.4, "{lang}: {:.0}% right; wrong: {wrong:#?}", accuracy * 100.0);
    }
}

#[test]
fn objections_in_three_languages_land_on_their_topic() {
    let report = measure(HELD_OUT);
    for (lang, accuracy, wrong) in &report {
        assert!(*accuracy >= 0.8, "{lang}: {:.0}% right; wrong: {wrong:#?}", accuracy * 100.0);
    }
}
