//! The review gate on the labelled set shipped with it: 188 messages, at least 40 per language,
//! violations and clean copy, some of it written to look like a violation ("secure", "not risk-free", "第一次",
//! the required supplement disclaimer that names "thay thế thuốc"). Recall at least 98% and false positives at
//! most 5%, in every language.
//!
//! The set and the packs were written by the same hand, so this measures the packs against the cases their
//! author thought of; `docs/ai.md` says so. The set is not used for anything else.

use tutti_ai::review::{Draft, Gate, Recipient, Severity, measure, read_labelled};

const LABELLED: &str = include_str!("../data/review/labelled.jsonl");
const ACME: &str = include_str!("../data/review/acme.yaml");

fn gate() -> Gate {
    Gate::from_sources(&[("acme.yaml".into(), ACME.into())]).unwrap().allow_contacts([
        "+1 415 555 0100".to_owned(),
        "400-820-8820".to_owned(),
        "help@acme.example".to_owned(),
    ])
}

#[test]
fn the_labelled_set_is_big_enough_in_every_language() {
    let set = read_labelled(LABELLED).unwrap();
    assert!(set.len() >= 150, "{} messages", set.len());
    for lang in ["en", "vi", "zh"] {
        let of = |violating: bool| set.iter().filter(|m| m.lang == lang && m.expect.is_empty() != violating).count();
        assert!(of(true) + of(false) >= 40, "{lang}: {} messages", of(true) + of(false));
        assert!(of(true) >= 20 && of(false) >= 20, "{lang}: {} violating, {} clean", of(true), of(false));
    }
    let gate = gate();
    let rules: Vec<&String> = gate.packs().iter().flat_map(|p| &p.rules).collect();
    for m in &set {
        for r in &m.expect {
            assert!(rules.contains(&r), "{}: no rule {r}", m.id);
        }
    }
}

fn report(title: &str, measured: &std::collections::BTreeMap<String, tutti_ai::review::Measured>) {
    eprintln!("{title}");
    eprintln!("  language  violating  caught  recall   clean  false+  rate");
    for (lang, m) in measured {
        eprintln!(
            "  {lang:<8}  {:>9}  {:>6}  {:>5.1}%  {:>6}  {:>6}  {:>4.1}%",
            m.violating,
            m.caught,
            100.0 * m.recall(),
            m.clean,
            m.false_positives,
            100.0 * m.false_positive_rate()
        );
        for (id, what) in &m.misses {
            eprintln!("    {id}: {what}");
        }
    }
}

#[test]
fn recall_is_at_least_98_percent_and_false_positives_at_most_5_percent_in_every_language() {
    let set = read_labelled(LABELLED).unwrap();
    let gate = gate();
    let measured = measure(&gate, &set).unwrap();
    report(&format!("review gate on {} labelled messages:", set.len()), &measured);
    let fresh: Vec<_> = set.iter().filter(|m| m.fresh).cloned().collect();
    report(&format!("of which the {} written after the packs:", fresh.len()), &measure(&gate, &fresh).unwrap());
    for (lang, m) in &measured {
        assert!(m.recall() >= 0.98, "{lang}: recall {:.1}%: {:?}", 100.0 * m.recall(), m.misses);
        assert!(
            m.false_positive_rate() <= 0.05,
            "{lang}: {:.1}% false positives: {:?}",
            100.0 * m.false_positive_rate(),
            m.misses
        );
    }
}

#[test]
fn a_violation_names_the_rule_and_the_span() {
    let gate = gate();
    let draft = Draft::new("email", &[("subject", "Quỹ Vàng"), ("body", "Chào anh Minh. Lợi nhuận đảm bảo 12%/năm!")]);
    let review = gate.review(&draft, &Recipient::default(), gate.select(&["general", "finance"]).unwrap());
    assert!(!review.passed);
    let v = review.violations.iter().find(|v| v.rule == "finance.guaranteed_returns").unwrap();
    assert_eq!((v.field.as_str(), v.excerpt.as_str(), v.severity), ("body", "Lợi nhuận đảm bảo", Severity::Block));
    let chars: Vec<char> = draft.fields[1].1.chars().collect();
    assert_eq!(chars[v.start..v.end].iter().collect::<String>(), "Lợi nhuận đảm bảo");
    // The subject names the fund, so the risk warning is required; the violation points at what required it.
    let d = review.violations.iter().find(|v| v.rule == "finance.risk_disclosure").unwrap();
    assert_eq!((d.field.as_str(), d.excerpt.as_str()), ("subject", "Quỹ"));
}

#[test]
fn revising_repairs_what_the_rules_say_and_the_revision_passes() {
    let gate = gate();
    let selection = gate.select(&["general", "finance", "acme"]).unwrap();
    for (body, lang) in [
        ("Our Gold Fund is here. Guaranteed returns of 12% a year! Open an account today!!!", "en"),
        ("Quỹ Vàng đã có mặt. Lợi nhuận đảm bảo 12%/năm! Mở tài khoản đầu tư ngay hôm nay!!!", "vi"),
        ("黄金基金上线啦。保证收益每年12%！立即开户！！！", "zh"),
    ] {
        let mut draft = Draft::new("email", &[("body", body)]);
        draft.language = tutti_ai::Language::from_code(lang);
        let first = gate.review(&draft, &Recipient::default(), selection);
        assert!(!first.passed);
        let revised = gate.revise(&draft, &first).expect("repairable");
        let second = gate.review(&revised, &Recipient::default(), selection);
        assert!(second.passed, "{lang}: {:?} -> {:?}", revised.fields, second.violations);
        let text = &revised.fields[0].1;
        assert!(!text.to_lowercase().contains("guaranteed") && !text.contains("保证收益") && !text.contains("đảm bảo"));
        assert!(!text.contains("!!"), "{text}");
    }
    // Too long for an SMS: cut at a sentence that fits.
    let long = "Acme: spring sale. ".repeat(12);
    let draft = Draft::new("sms", &[("body", long.trim())]);
    let selection = gate.select(&["general"]).unwrap();
    let review = gate.review(&draft, &Recipient::default(), selection);
    let revised = gate.revise(&draft, &review).unwrap();
    assert!(revised.fields[0].1.chars().count() <= 160 && revised.fields[0].1.ends_with("sale."));
    assert!(gate.review(&revised, &Recipient::default(), selection).passed);
}

#[test]
fn personal_data_allows_the_recipients_own_details_only() {
    let gate = gate();
    let me = Recipient {
        emails: vec!["lan@example.vn".into()],
        phones: vec!["+84 90 111 2222".into()],
        ids: vec!["cust-000123".into()],
    };
    let all = gate.select(&["general"]).unwrap();
    let ok = Draft::new("email", &[("body", "Chị Lan, biên lai gửi tới lan@example.vn; shipper sẽ gọi 090 111 2222.")]);
    assert!(gate.review(&ok, &me, all).passed);
    for bad in [
        "Biên lai gửi tới hoa@example.vn.",
        "Shipper sẽ gọi 0912 345 678.",
        "Mã của chị: cust-000123.",
        "Hồ sơ tutti:profile:42 đã cập nhật.",
        "Khóa 5f1e2d3c4b5a69788796a5b4.",
    ] {
        let review = gate.review(&Draft::new("email", &[("body", bad)]), &me, all);
        assert!(
            !review.passed
                && review.violations.iter().any(|v| v.rule == "general.personal_data")
                && review
                    .violations
                    .iter()
                    .all(|v| ["general.personal_data", "general.internal_ids"].contains(&v.rule.as_str())),
            "{bad}: {review:?}"
        );
    }
}

#[test]
fn pack_files_are_checked_with_line_and_column() {
    let bad = [
        (
            "pack: x\nrules:\n  - id: a\n    kind: phrases\n    says: s\n    phrase: {en: [a]}\n",
            "6:5",
            "unknown field `phrase`",
        ),
        (
            "pack: x\nrules:\n  - id: a\n    kind: phrases\n    says: s\n",
            "3:5",
            "needs `phrases`, `patterns` or `meaning`",
        ),
        (
            "pack: x\nrules:\n  - id: a\n    kind: tone\n    says: s\n    max_chars: {sms: 1}\n",
            "6:5",
            "does not apply to a `tone` rule",
        ),
        (
            "pack: x\nrules:\n  - id: a\n    kind: phrases\n    says: s\n    patterns: {en: ['(']}\n",
            "6:21",
            "does not compile",
        ),
        (
            "pack: x\nrules:\n  - id: a\n    kind: phrases\n    says: s\n    phrases: {fr: [a]}\n",
            "6:5",
            "unknown variant `fr`",
        ),
        ("pack: X Y\nrules: []\n", "1:7", "not a pack name"),
        (
            "pack: x\nrules:\n  - id: a\n    kind: phrases\n    says: s\n    phrases: {en: ['  ']}\n",
            "6:20",
            "empty phrase",
        ),
        (
            "pack: x\nrules:\n  - id: a\n    kind: require\n    says: s\n    any_of: {en: [a]}\n    fix: calm\n",
            "7:10",
            "not a fix",
        ),
    ];
    for (source, at, says) in bad {
        let e = Gate::from_sources(&[("x.yaml".into(), source.into())]).unwrap_err();
        let shown = e.to_string();
        assert!(shown.starts_with(&format!("x.yaml:{at}: ")) && shown.contains(says), "{shown}\n{source}");
    }
    // A pack of the same name replaces the built-in one; an unknown pack is named with what is loaded.
    let own = "pack: general\nrules:\n  - id: only\n    kind: phrases\n    says: s\n    phrases: {en: [zebra]}\n";
    let gate = Gate::from_sources(&[("general.yaml".into(), own.into())]).unwrap();
    let all = gate.select(&["general"]).unwrap();
    assert!(
        gate.review(&Draft::new("email", &[("body", "You have won!!!!!! 第一")]), &Recipient::default(), all).passed
    );
    assert!(!gate.review(&Draft::new("email", &[("body", "A zebra.")]), &Recipient::default(), all).passed);
    let e = gate.select(&["general", "brand"]).unwrap_err().to_string();
    assert!(e.contains("`brand`") && e.contains("general, finance, health"), "{e}");
}

#[test]
fn sms_rules_follow_the_country_the_category_and_the_encoding() {
    let gate = gate();
    let general = gate.select(&["general"]).unwrap();
    let rules = |draft: &Draft| -> Vec<String> {
        gate.review(draft, &Recipient::default(), general).violations.into_iter().map(|v| v.rule).collect()
    };
    // Vietnam: an advertising SMS opens with QC and says how to refuse; a transactional one needs neither.
    let promo = Draft::new("sms", &[("body", "Acme: giảm 20% áo khoác đến Chủ nhật.")]).of_category("promotional");
    assert_eq!(rules(&promo), ["general.sms_vn_advertising_marker", "general.sms_vn_opt_out"]);
    let marked = Draft::new("sms", &[("body", "[QC] Acme: giảm 20% áo khoác. Từ chối QC soạn TC gửi 789")])
        .of_category("promotional");
    assert!(rules(&marked).is_empty(), "{:?}", rules(&marked));
    let late_marker =
        Draft::new("sms", &[("body", "Acme QC: giảm 20%. Từ chối: TC gửi 789")]).of_category("promotional");
    assert_eq!(rules(&late_marker), ["general.sms_vn_advertising_marker"], "QC must open the message");
    let receipt = Draft::new("sms", &[("body", "Acme: đơn hàng đã được giao.")]).of_category("transactional");
    assert!(rules(&receipt).is_empty());
    // Unknown category: checked as advertising.
    assert_eq!(rules(&Draft::new("sms", &[("body", "Acme: giảm 20% áo khoác.")])).len(), 2);
    // The marker is added at the start, before the rest.
    let review = gate.review(&promo, &Recipient::default(), general);
    let revised = gate.revise(&promo, &review).unwrap();
    assert!(revised.fields[0].1.starts_with("[QC] Acme: giảm"), "{}", revised.fields[0].1);
    // China: every SMS opens with its signature; marketing ones say how to unsubscribe.
    let zh = Draft::new("sms", &[("body", "春季大促，外套七折。")]).of_category("promotional");
    assert_eq!(rules(&zh), ["general.sms_cn_signature", "general.sms_cn_opt_out"]);
    let zh_ok = Draft::new("sms", &[("body", "【Acme】春季大促，外套七折。回T退订")]).of_category("promotional");
    assert!(rules(&zh_ok).is_empty());
    let zh_receipt = Draft::new("sms", &[("body", "您的订单已发货。")]).of_category("transactional");
    assert_eq!(rules(&zh_receipt), ["general.sms_cn_signature"]);
    // Email is not SMS.
    assert!(rules(&Draft::new("email", &[("subject", "Giảm 20%"), ("body", "Giảm 20% áo khoác.")])).is_empty());
    // Length by encoding: 100 unmarked Latin characters are one GSM-7 part; the same with tone marks are two
    // UCS-2 parts.
    let gsm = format!("Acme: {}", "giam gia ".repeat(10));
    let ucs = format!("Acme: {}", "giảm giá ".repeat(10));
    let transactional = |body: &str| Draft::new("sms", &[("body", body)]).of_category("transactional");
    assert!(rules(&transactional(&gsm)).is_empty());
    let review = gate.review(&transactional(&ucs), &Recipient::default(), general);
    let length = review.violations.iter().find(|v| v.rule == "general.length").expect("too long in UCS-2");
    assert!(length.detail.contains("2 parts in UCS-2"), "{}", length.detail);
    let revised = gate.revise(&transactional(&ucs), &review).unwrap();
    assert_eq!(tutti_ai::sms::segments(&revised.fields[0].1).parts, 1);
}

#[test]
fn a_disclosure_is_added_before_the_sign_off() {
    let gate = gate();
    let finance = gate.select(&["general", "finance"]).unwrap();
    for (body, sign) in [
        ("Chào anh Minh,\n\nQuỹ Vàng mở đăng ký đầu tư từ hôm nay.\n\nTrân trọng.", "Trân trọng."),
        ("Hi Sam,\n\nOur gold fund is open for investment today.\n\nBest regards,\nAcme", "Best regards,\nAcme"),
        ("王先生，您好！\n\n黄金基金今天开放投资。\n\n祝好。", "祝好。"),
    ] {
        let draft = Draft::new("email", &[("subject", "Quỹ Vàng"), ("body", body)]);
        let review = gate.review(&draft, &Recipient::default(), finance);
        assert!(review.violations.iter().any(|v| v.rule == "finance.risk_disclosure"), "{body}: {review:?}");
        let revised = gate.revise(&draft, &review).unwrap();
        let text = &revised.fields[1].1;
        assert!(text.ends_with(sign), "the sign-off stays last: {text}");
        let disclosure_at = text.rfind("\n\n").unwrap();
        assert!(
            text[..disclosure_at].contains("rủi ro")
                || text[..disclosure_at].contains("risk")
                || text[..disclosure_at].contains("风险"),
            "{text}"
        );
        assert!(gate.review(&revised, &Recipient::default(), finance).passed, "{text}");
    }
}
