//! The review gate reading meaning: claims caught however they are worded, in three languages, measured on a
//! held-out set kept apart from the sentences the classifier learns from. The targets of the design (recall
//! 97%, false positives 5% in every language) are not met yet; the floors below guard what is reached, and
//! `cargo xtask copy` prints the figures.

use tutti_ai::review::meaning::{TRAINING_SET, read_examples};
use tutti_ai::review::{Draft, Gate, Recipient, measure, read_labelled};
use tutti_ai::text;

const HELD_OUT: &str = include_str!("../data/review/heldout.jsonl");

fn sentences(body: &str) -> Vec<String> {
    body.split(['.', '。', '!', '！', '?', '？', ';', '；', '\n'])
        .map(|s| text::normalize(s).trim().to_owned())
        .filter(|s| s.chars().count() >= 8)
        .collect()
}

#[test]
fn the_held_out_set_is_big_enough_and_apart_from_the_training_sentences() {
    let held_out = read_labelled(HELD_OUT).unwrap();
    assert!(held_out.len() >= 600, "{} held-out messages", held_out.len());
    for lang in ["vi", "zh", "en"] {
        let of =
            |violating: bool| held_out.iter().filter(|m| m.lang == lang && m.expect.is_empty() != violating).count();
        assert!(of(true) >= 100 && of(false) >= 100, "{lang}: {} violating, {} clean", of(true), of(false));
    }
    let training: std::collections::HashSet<String> =
        read_examples(TRAINING_SET).unwrap().iter().flat_map(|e| sentences(&e.text)).collect();
    for m in &held_out {
        for s in sentences(&m.body) {
            assert!(!training.contains(&s), "{}: `{s}` is also a training sentence", m.id);
        }
    }
}

#[test]
fn the_held_out_figures_stay_above_their_floors() {
    let held_out = read_labelled(HELD_OUT).unwrap();
    let measured = measure(&Gate::builtin(), &held_out).unwrap();
    for (lang, m) in &measured {
        eprintln!(
            "{lang}: recall {:.1}% ({}/{}), false positives {:.1}% ({}/{})",
            100.0 * m.recall(),
            m.caught,
            m.violating,
            100.0 * m.false_positive_rate(),
            m.false_positives,
            m.clean
        );
        assert!(m.recall() >= 0.75, "{lang}: recall {:.3}", m.recall());
        assert!(m.false_positive_rate() <= 0.06, "{lang}: false positives {:.3}", m.false_positive_rate());
    }
}

fn fails(gate: &Gate, packs: &[&str], body: &str) -> Vec<String> {
    let draft = Draft::new("email", &[("body", body)]);
    let review = gate.review(&draft, &Recipient::default(), gate.select(packs).unwrap());
    review.violations.into_iter().map(|v| v.rule).collect()
}

#[test]
fn paraphrases_the_phrase_lists_missed_are_read_for_what_they_mean() {
    let gate = Gate::builtin();
    let all = ["general", "finance", "health"];
    for (body, rule) in [
        ("Gói tích lũy này lãi chắc, anh khỏi lo.", "finance.guaranteed_returns"),
        ("这款产品收益有保障，放心买。", "finance.guaranteed_returns"),
        ("Our capsules make tumours shrink away naturally.", "health.cure_claims"),
        ("Chào chị, đơn đã xác nhận. (Ghi chú: khách khó tính, giao nhanh.)", "general.internal_notes"),
        ("新品已到货。（备注：这位客户爱砍价）", "general.internal_notes"),
        ("Your order is confirmed. [Note: VIP, handle first]", "general.internal_notes"),
        ("INTERNAL: call this one back before noon.", "general.internal_notes"),
        ("Hồ sơ KH-0012345 đã được nâng hạng.", "general.internal_ids"),
        ("Account CU88213409 has a new offer.", "general.internal_ids"),
        // Placeholders left in the copy, instructions to hold it, and labelled ids.
        ("Spring is here! [insert hero image]", "general.internal_notes"),
        ("New arrivals for you: XXX product name XXX.", "general.internal_notes"),
        ("Do not send this until legal has checked it.", "general.internal_notes"),
        ("Đừng gửi trước khi chị Lan duyệt giá.", "general.internal_notes"),
        ("老板审核后再发。", "general.internal_notes"),
        ("Contact ID: 55128890 has a new offer.", "general.internal_ids"),
        ("用户ID：55128890 已开通会员。", "general.internal_ids"),
    ] {
        let rules = fails(&gate, &all, body);
        assert!(rules.iter().any(|r| r == rule), "{body}: {rules:?}");
    }
    // What the customer may see stays clean: their order and parcel numbers, a coupon, a risk warning.
    for body in [
        "Đơn hàng DH-1023456 của chị đã được giao.",
        "Your parcel's tracking number is JT0098123451.",
        "Mã giảm giá TET2026 giảm 10% đến hết tháng.",
        "Investing involves risk and you could lose some of your money.",
        "投资有风险，入市需谨慎。",
    ] {
        let rules = fails(&gate, &all, body);
        assert!(rules.is_empty(), "{body}: {rules:?}");
    }
}

#[test]
fn a_brand_adds_its_own_id_patterns_and_examples() {
    let pack = r#"
pack: acme
rules:
  - id: crm_codes
    kind: phrases
    meaning: internal_ids
    says: an Acme CRM code
    patterns: { any: ['\bacm\d{4}\b'] }
    examples:
      en: [Escalated under ACM ticket 7781, Logged in Zendesk as case 8812]
"#;
    let gate = Gate::from_sources(&[("acme.yaml".into(), pack.into())]).unwrap();
    let rules = fails(&gate, &["general", "acme"], "Thanks for waiting. Reference ACM7781 is closed.");
    assert!(rules.iter().any(|r| r == "acme.crm_codes"), "{rules:?}");
    // A family the classifier does not know is refused with its line.
    let bad = "pack: x\nrules:\n  - id: r\n    kind: phrases\n    meaning: lies\n    says: s\n";
    let e = Gate::from_sources(&[("x.yaml".into(), bad.into())]).unwrap_err();
    assert!(e.to_string().contains("x.yaml:5") && e.to_string().contains("`lies`"), "{e}");
    let bad = "pack: x\nrules:\n  - id: r\n    kind: phrases\n    phrases: {en: [a b]}\n    says: s\n    examples: {en: [x]}\n";
    let e = Gate::from_sources(&[("x.yaml".into(), bad.into())]).unwrap_err();
    assert!(e.to_string().contains("`examples`"), "{e}");
}
