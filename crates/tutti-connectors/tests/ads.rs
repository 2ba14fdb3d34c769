//! The `ads` connector against stand-ins of Meta's Marketing API and the Google Ads API: campaigns and ad sets
//! paused by topic, resumed, given a daily budget, each change recorded with the state before and after.

use serde_json::{Value, json};
use tutti_connectors::testing::{self, Fault, Vendors};
use tutti_connectors::{Action, Failure, Registry, Shared};

const NOW: i64 = 1_790_000_000_000;

async fn send(registry: &Registry, operation: &str, payload: Value) -> Result<Value, Failure> {
    let action = Action {
        key: "run-1:s:1",
        profile: 1,
        flow: "organic-reach-alert",
        step: "pause",
        operation,
        category: "internal",
        channel: "ads",
        payload: &payload,
        now: NOW,
        tracking: false,
    };
    registry.get("ads").expect("configured").sender.send(action).await
}

#[tokio::test]
async fn a_topic_is_paused_on_both_platforms_and_resumed_with_before_and_after() {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let registry = Registry::build(&vendors.connectors(), &testing::context(&shared)).unwrap();
    let adset = format!("meta:{}", testing::META_ADSET);
    let campaign = format!("google:campaign:{}", testing::GOOGLE_CAMPAIGN);
    let out = send(&registry, "pause", json!({"topic": "sunscreen", "reason": "organic_reach"})).await.unwrap();
    let changes = out["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{out}");
    assert_eq!(changes[0]["target"], format!("meta:adset:{}", testing::META_ADSET));
    assert_eq!(
        (changes[0]["before"]["status"].as_str(), changes[0]["after"]["status"].as_str()),
        (Some("ACTIVE"), Some("PAUSED"))
    );
    assert_eq!(
        (changes[1]["before"]["status"].as_str(), changes[1]["after"]["status"].as_str()),
        (Some("ENABLED"), Some("PAUSED"))
    );
    assert_eq!(vendors.ad_state(&adset)["status"], "PAUSED");
    assert_eq!(vendors.ad_state(&campaign)["status"], "PAUSED");
    // Again: nothing changes, nothing fails (a retried action is harmless).
    let again = send(&registry, "pause", json!({"topic": "sunscreen"})).await.unwrap();
    assert_eq!(again["changes"][0]["before"]["status"], "PAUSED");
    // A topic nothing spends on: nothing to do.
    assert_eq!(send(&registry, "pause", json!({"topic": "gardening"})).await.unwrap()["changes"], json!([]));
    send(&registry, "resume", json!({"target": format!("google:campaign:{}", testing::GOOGLE_CAMPAIGN)}))
        .await
        .unwrap();
    assert_eq!(vendors.ad_state(&campaign)["status"], "ENABLED");
    let got = vendors.received("google-ads");
    assert!(got.iter().all(|r| r.headers["developer-token"] == testing::GOOGLE_ADS_DEVELOPER_TOKEN));
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
}

#[tokio::test]
async fn daily_budgets_are_written_as_each_platform_counts_money() {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let registry = Registry::build(&vendors.connectors(), &testing::context(&shared)).unwrap();
    // Meta, an ad account in VND: whole dong.
    let out =
        send(&registry, "set_daily_budget", json!({"creative": "ad-tet-1", "amount": 3500000, "currency": "VND"}))
            .await
            .unwrap();
    assert_eq!(out["changes"][0]["before"]["daily_budget"], "2000000");
    assert_eq!(out["changes"][0]["after"]["daily_budget"], "3500000");
    // Google: the campaign's budget in micros.
    let out =
        send(&registry, "set_daily_budget", json!({"creative": "ad-tet-2", "amount": "1500000", "currency": "VND"}))
            .await
            .unwrap();
    assert_eq!(out["changes"][0]["after"]["amount_micros"], "1500000000000");
    assert_eq!(
        vendors.ad_state(&format!("customers/{}/campaignBudgets/789", testing::GOOGLE_CUSTOMER))["amount_micros"],
        "1500000000000"
    );
    // What cannot be done is refused before or by the platform, permanently.
    let wrong_currency =
        send(&registry, "set_daily_budget", json!({"creative": "ad-tet-1", "amount": 10, "currency": "USD"})).await;
    assert!(matches!(wrong_currency, Err(Failure::Permanent(ref e)) if e.contains("VND")), "{wrong_currency:?}");
    let ad_group = format!("google:ad_group:{}", testing::GOOGLE_AD_GROUP);
    let e = send(&registry, "set_daily_budget", json!({"target": ad_group, "amount": 1, "currency": "VND"})).await;
    assert!(matches!(e, Err(Failure::Permanent(ref m)) if m.contains("belongs to a campaign")), "{e:?}");
    let e = send(&registry, "set_daily_budget", json!({"creative": "nope", "amount": 1, "currency": "VND"})).await;
    assert!(matches!(e, Err(Failure::Permanent(ref m)) if m.contains("no target")), "{e:?}");
    let e = send(&registry, "pause", json!({"target": "meta:adset:999"})).await;
    assert!(matches!(e, Err(Failure::Permanent(ref m)) if m.contains("does not exist")), "{e:?}");
    vendors.inject("meta-ads", [Fault::RateLimited(30)]);
    let e = send(&registry, "pause", json!({"target": format!("meta:adset:{}", testing::META_ADSET)})).await;
    assert!(matches!(e, Err(Failure::Transient { .. })), "{e:?}");
}
