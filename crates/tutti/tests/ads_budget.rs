//! Story S6's budget shift acting for real: a budget split proposed from the creatives' results and approved by
//! a person becomes the daily budgets of the ad sets and campaigns on Meta and Google Ads (stand-ins), each
//! change kept with the state before and after, on the proposal and in the audit log.

mod common;

use common::Server;
use common::browser::{post_form, signed_in};
use serde_json::json;
use tutti_connectors::testing::{self, Vendors};

#[test]
fn an_approved_budget_split_changes_the_budgets_on_the_platforms() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let vendors = runtime.block_on(Vendors::start());
    let dir = tempfile::tempdir().unwrap();
    common::seeded_creatives(dir.path());
    // The ads the split goes to: the first two of ours on facebook, mapped to an ad set and a campaign.
    let campaign = tutti_insights::synth::generate(&tutti_insights::synth::Spec::s6(3));
    let ours: Vec<&str> = campaign
        .creatives
        .iter()
        .filter(|c| c.channel == "facebook" && c.owner.is_ours())
        .map(|c| c.id.as_str())
        .collect();
    assert!(ours.len() >= 2);
    let mut ads = vendors.connectors()["ads"].clone();
    ads["creatives"] = json!({ours[0]: format!("meta:adset:{}", testing::META_ADSET),
                              ours[1]: format!("google:campaign:{}", testing::GOOGLE_CAMPAIGN)});
    let mut connectors = toml::Table::new();
    connectors.insert("ads".into(), toml::Value::try_from(ads).unwrap());
    let mut config = toml::Table::new();
    config.insert("connectors".into(), toml::Value::Table(connectors));
    std::fs::write(dir.path().join("tutti.toml"), toml::to_string(&config).unwrap()).unwrap();
    let server = Server::start_in(dir.path(), testing::ENV);
    let (marketer, marketer_csrf) = signed_in(&server, "mai@shop.vn", "marketer");
    let (approver, approver_csrf) = signed_in(&server, "binh@shop.vn", "approver");
    let proposed = post_form(
        &server,
        "/creatives/proposals",
        &[("csrf", &marketer_csrf), ("channel", "facebook"), ("budget", "10000000"), ("objective", "clicks")],
        &[("Cookie", &marketer)],
    );
    assert_eq!(proposed.location.as_deref(), Some("/creatives#proposals"));
    let kept = server.admin("/api/v1/insights/budget/proposals");
    let id = kept["proposals"][0]["id"].as_str().unwrap().to_owned();
    let allocations = kept["proposals"][0]["proposal"]["allocations"].as_array().unwrap().clone();
    let share = |creative: &str| {
        allocations.iter().find(|a| a["creative"] == creative).and_then(|a| a["budget_micros"].as_i64()).unwrap()
    };
    // Nothing changes on the platforms before a person approves.
    assert_eq!(vendors.ad_state(&format!("meta:{}", testing::META_ADSET))["daily_budget"], "2000000");
    let approved = post_form(
        &server,
        &format!("/creatives/proposals/{id}/approve"),
        &[("csrf", &approver_csrf)],
        &[("Cookie", &approver)],
    );
    assert_eq!(approved.location.as_deref(), Some("/creatives#proposals"));
    // Meta: whole dong in the ad account's currency; Google: micros of the campaign's budget.
    let meta = vendors.ad_state(&format!("meta:{}", testing::META_ADSET));
    assert_eq!(meta["daily_budget"], ((share(ours[0]) + 500_000) / 1_000_000).to_string(), "{meta}");
    let budget = vendors.ad_state(&format!("customers/{}/campaignBudgets/789", testing::GOOGLE_CUSTOMER));
    assert_eq!(budget["amount_micros"], share(ours[1]).to_string(), "{budget}");
    let decided = server.admin("/api/v1/insights/budget/proposals");
    let applied = decided["proposals"][0]["applied"].as_array().unwrap().clone();
    let first = applied.iter().find(|a| a["creative"] == ours[0]).unwrap();
    assert_eq!(first["changes"][0]["before"]["daily_budget"], "2000000", "{first}");
    // Creatives with no ad set named are kept with why, and the rest still went.
    let unmapped = applied.iter().filter(|a| a["error"].as_str().is_some_and(|e| e.contains("no target"))).count();
    assert_eq!(unmapped, allocations.len() - 2, "{applied:?}");
    let audit = server.admin("/api/v1/audit?kind=budget");
    assert_eq!(audit["records"][0]["detail"]["applied"].as_array().map(Vec::len), Some(allocations.len()), "{audit}");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
}
