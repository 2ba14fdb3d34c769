//! The local planner on story S8's goal in three languages, its refusals, changes asked in words, and the
//! goal suite; every plan's YAML compiled by Tutti's own flow and segment compilers.

use tutti_copilot::compile::{diff, flow_yaml, segment_yaml};
use tutti_copilot::suite::{GOALS, cases, measure};
use tutti_copilot::{Condition, Context, Shape, change, plan};

fn compiles(p: &tutti_copilot::Plan) {
    let flow = flow_yaml(p);
    tutti_flows::compile(&flow, &tutti_connectors::infos()).unwrap_or_else(|problems| panic!("{flow}\n{problems:?}"));
    let segment = segment_yaml(p);
    tutti_flows::compile(&segment, &tutti_connectors::infos())
        .unwrap_or_else(|problems| panic!("{segment}\n{problems:?}"));
}

#[test]
fn the_s8_goal_in_each_language_is_a_plan_that_compiles() {
    let mut cx = Context::standard();
    cx.traits = vec!["ltv".into(), "city".into()];
    for goal in [
        "Bring back lapsed VIP customers in Hanoi, budget 50 million VND, email and Zalo, two weeks",
        "Kéo lại khách VIP lâu không mua ở Hà Nội, ngân sách 50 triệu, email và Zalo, trong hai tuần",
        "召回河内的流失VIP客户，预算5000万越南盾，邮件和Zalo，两周",
    ] {
        let p = plan("p1", goal, &cx).unwrap();
        assert_eq!(p.shape, Shape::WinBack);
        assert_eq!(p.channels, ["email", "zalo"]);
        assert_eq!(p.schedule.days, 14);
        assert_eq!(p.budget.as_ref().map(ToString::to_string).as_deref(), Some("50,000,000 VND"));
        assert!(
            p.audience.conditions.contains(&Condition::LastPerformed { event: "Order Completed".into(), days: 90 })
        );
        // In the goal's own way of writing money: 10.000.000 in Vietnamese, 10,000,000 otherwise.
        let threshold = if p.language == "vi" { "10.000.000 VND" } else { "10,000,000 VND" };
        assert!(p.assumptions.iter().any(|a| a.contains(threshold) && a.contains("ltv")), "{:?}", p.assumptions);
        assert!(p.assumptions.iter().any(|a| a.contains("河内") && a.contains("Ha Noi")), "{:?}", p.assumptions);
        compiles(&p);
        let flow = flow_yaml(&p);
        assert!(flow.contains("budget: { amount: 50000000, currency: VND }"), "{flow}");
        assert!(flow.contains("action: zalo.message") && flow.contains("action: smtp.send"), "{flow}");
        assert!(flow.contains("holdout: true"), "{flow}");
    }
    // Approved: it starts now and ends 14 days later; a member entering after that gets nothing.
    let started = plan("p1", "Win back lapsed customers by email, two weeks", &cx).unwrap().starting(1_795_143_600_000);
    assert_eq!(started.schedule.ends_at.as_deref(), Some("2026-12-04T03:00:00.000Z"));
    let flow = flow_yaml(&started);
    assert!(flow.contains("run.started_at >= \"2026-12-04T03:00:00.000Z\"") && flow.contains("id: ended"), "{flow}");
    compiles(&started);
    // Assumptions are written in the goal's language.
    let vi = plan("p1", "Kéo lại khách VIP lâu không mua ở Hà Nội", &cx).unwrap();
    assert!(vi.assumptions.iter().any(|a| a.starts_with("lâu không mua")), "{:?}", vi.assumptions);
}

#[test]
fn goals_outside_the_shapes_are_refused_plainly() {
    let cx = Context::standard();
    let e = plan("p1", "Write me a poem about autumn", &cx).unwrap_err();
    assert!(e.0.contains("win back lapsed customers") && e.0.contains("configure a model"), "{e}");
    assert!(plan("p1", "帮我写一首诗", &cx).unwrap_err().0.contains("本地规划器"));
}

#[test]
fn a_change_asked_in_words_makes_the_next_version_with_its_diff() {
    let cx = Context::standard();
    let v1 = plan("p2", "Win back lapsed customers by email, two weeks", &cx).unwrap();
    let v2 = change::ask(&v1, "only customers who bought twice", &cx).unwrap();
    assert_eq!(v2.version, 2);
    assert!(v2.audience.conditions.contains(&Condition::Performed {
        event: "Order Completed".into(),
        times: 2,
        days: None
    }));
    let d = diff(&segment_yaml(&v1), &segment_yaml(&v2));
    assert!(d.contains("+   - { performed: \"Order Completed\", at_least: 2 }"), "{d}");
    compiles(&v2);
    let v3 = change::ask(&v2, "thêm Zalo, ngân sách 30 triệu", &cx).unwrap();
    assert_eq!(v3.channels, ["email", "zalo"]);
    assert_eq!(v3.budget.as_ref().map(ToString::to_string).as_deref(), Some("30,000,000 VND"));
    compiles(&v3);
    let v4 = change::ask(&v3, "不要邮件", &cx).unwrap();
    assert_eq!(v4.channels, ["zalo"]);
    compiles(&v4);
    assert!(change::ask(&v4, "make it nicer", &cx).is_err(), "nothing to read is said so");
    let edited = change::edit(&v4, &serde_json::json!({"days": 21, "holdout": 0.2})).unwrap();
    assert_eq!((edited.schedule.days, edited.holdout, edited.version), (21, 0.2, 5));
    assert!(change::edit(&v4, &serde_json::json!({"colour": "red"})).is_err());
}

#[test]
fn the_goal_suite_is_planned_correctly_at_least_nine_times_in_ten() {
    let cases = cases(GOALS).unwrap();
    assert!(cases.len() >= 40, "{} goals", cases.len());
    for lang in ["en-", "vi-", "zh-"] {
        assert!(cases.iter().filter(|c| c.id.starts_with(lang)).count() >= 12, "{lang}");
    }
    let outcomes = measure(&cases, &Context::standard());
    let passed = outcomes.iter().filter(|o| o.passed).count();
    for o in outcomes.iter().filter(|o| !o.passed) {
        println!("{}: {}", o.id, o.why.join("; "));
    }
    let share = passed as f64 / cases.len() as f64;
    println!("goal suite: {passed}/{} planned correctly ({:.1}%)", cases.len(), share * 100.0);
    assert!(share >= 0.9, "{passed}/{}", cases.len());
    // And every plan made compiles.
    for c in &cases {
        if let Ok(p) = plan("s", &c.goal, &Context::standard()) {
            compiles(&p);
        }
    }
}
