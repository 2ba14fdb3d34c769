//! The channels of Vietnam and China against stand-ins that enforce each provider's documented request format
//! (`tutti_connectors::testing`): SMS through Twilio, eSMS and Alibaba Cloud; Zalo's ZNS and Official Account
//! messages with the access token refreshed as Zalo documents it. Failures are read as the provider means them:
//! worth retrying, or not.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use tutti_connectors::testing::{self, Fault, Vendors};
use tutti_connectors::{Action, Failure, Memory, MemoryMap, Registry, Shared};

const NOW: i64 = 1_790_000_000_000;

fn registry_with(vendors: &Vendors, shared: &Shared, sms: &str) -> Registry {
    let mut tables = vendors.connectors();
    tables.insert("sms".into(), vendors.sms_table(sms));
    Registry::build(&tables, &testing::context(shared)).expect("the stand-in's tables are valid")
}

async fn send(
    registry: &Registry,
    connector: &str,
    operation: &str,
    payload: Value,
    key: &str,
) -> Result<Value, Failure> {
    let action = Action {
        key,
        profile: 1,
        flow: "winback",
        step: "step",
        operation,
        category: "promotional",
        channel: connector,
        payload: &payload,
        now: NOW,
        tracking: true,
    };
    registry.get(connector).expect("configured").sender.send(action).await
}

fn permanent(result: Result<Value, Failure>) -> String {
    match result {
        Err(Failure::Permanent(e)) => e,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn twilio_gets_a_form_with_e164_numbers_and_says_how_the_text_is_billed() {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let registry = registry_with(&vendors, &shared, "twilio");
    let body = "[QC] Acme: chị Lan ơi, giảm 20% áo khoác đến Chủ nhật. Từ chối: TC gửi 789";
    let out = send(&registry, "sms", "send", json!({"to": "0912 345 678", "body": body}), "r1:s:1").await.unwrap();
    assert_eq!(out["provider"], "twilio");
    assert!(out["id"].as_str().unwrap().starts_with("SM"));
    assert_eq!((out["encoding"].as_str(), out["parts"].as_u64()), (Some("UCS-2"), Some(2)), "{out}");
    let sent = vendors.sms();
    assert_eq!((sent[0].to.as_str(), sent[0].body.as_str()), ("+84912345678", body), "Vietnamese intact");
    // A number Twilio refuses is permanent, with Twilio's code.
    let e = permanent(send(&registry, "sms", "send", json!({"to": "+84 12", "body": "x"}), "r2:s:1").await);
    assert!(e.contains("`to` is not a phone number"), "{e}");
    // Over the rate, Twilio's Retry-After is kept.
    vendors.inject("twilio", [Fault::RateLimited(7)]);
    match send(&registry, "sms", "send", json!({"to": "+84912345678", "body": "hi"}), "r3:s:1").await {
        Err(Failure::Transient { retry_after, .. }) => assert_eq!(retry_after, Some(std::time::Duration::from_secs(7))),
        other => panic!("{other:?}"),
    }
    vendors.inject("twilio", [Fault::Status(503)]);
    assert!(matches!(
        send(&registry, "sms", "send", json!({"to": "+84912345678", "body": "hi"}), "r4:s:1").await,
        Err(Failure::Transient { .. })
    ));
    // A template is for Alibaba Cloud: refused before anything is sent.
    let e = permanent(send(&registry, "sms", "send", json!({"to": "+84912345678", "template": "T"}), "r5:s:1").await);
    assert!(e.contains("takes `to` and `body`"), "{e}");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
    assert_eq!(vendors.sms().len(), 1);
}

#[tokio::test]
async fn esms_sends_the_brandname_with_unicode_when_the_text_keeps_its_tone_marks_and_never_twice() {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let registry = registry_with(&vendors, &shared, "esms");
    let marked = "Acme: đơn hàng #48213 đã được giao.";
    let out = send(&registry, "sms", "send", json!({"to": "+84912345678", "body": marked}), "r1:s:1").await.unwrap();
    assert_eq!(out["status"], "accepted");
    let got = vendors.received("esms");
    assert_eq!(got[0].body["Phone"], "0912345678", "national writing, as eSMS documents");
    assert_eq!((got[0].body["IsUnicode"].clone(), got[0].body["Brandname"].clone()), (json!(1), json!("ACME")));
    assert_eq!(got[0].body["RequestId"], "r1:s:1");
    // Unmarked text goes as GSM-7, IsUnicode 0, one part.
    let plain = "Acme: don hang #48213 da duoc giao.";
    let out = send(&registry, "sms", "send", json!({"to": "0912345678", "body": plain}), "r2:s:1").await.unwrap();
    assert_eq!((out["encoding"].as_str(), out["parts"].as_u64()), (Some("GSM-7"), Some(1)));
    assert_eq!(vendors.received("esms")[1].body["IsUnicode"], 0);
    // A retry of an action eSMS already took (its answer was lost) is delivered, not sent twice.
    let again = send(&registry, "sms", "send", json!({"to": "+84912345678", "body": marked}), "r1:s:1").await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(vendors.sms().len(), 2, "the customer got each message once");
    // Wrong keys are permanent.
    let mut tables = vendors.connectors();
    let mut wrong = vendors.sms_table("esms");
    wrong["brandname"] = json!("OTHER");
    tables.insert("sms".into(), wrong);
    let other = Registry::build(&tables, &testing::context(&shared)).unwrap();
    let e = permanent(send(&other, "sms", "send", json!({"to": "0912345678", "body": "x"}), "r3:s:1").await);
    assert!(e.contains("104") && e.contains("brandname"), "{e}");
}

#[tokio::test]
async fn alibaba_cloud_gets_a_signed_rpc_call_with_the_template_and_its_parameters() {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let registry = registry_with(&vendors, &shared, "alibaba");
    let params = json!({"name": "王伟", "code": 4821});
    let payload = json!({"to": "+86 138 0013 8000", "template": testing::ALIBABA_TEMPLATE, "params": params});
    let out = send(&registry, "sms", "send", payload.clone(), "r1:s:1").await.unwrap();
    assert_eq!(out["provider"], "alibaba");
    assert!(out["id"].as_str().unwrap().ends_with("^0"));
    let sent = vendors.sms();
    assert_eq!(sent[0].to, "13800138000", "mainland numbers without 86");
    assert!(sent[0].body.contains(r#""name":"王伟""#) && sent[0].body.contains(r#""code":"4821""#), "{}", sent[0].body);
    // The same action again is a new request with a new nonce: the signature check and the nonce check pass.
    send(&registry, "sms", "send", payload, "r1:s:1").await.unwrap();
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
    // A body is refused before anything is sent; an unregistered template by Alibaba, permanently.
    let e = permanent(send(&registry, "sms", "send", json!({"to": "13800138000", "body": "hi"}), "r2:s:1").await);
    assert!(e.contains("registered templates"), "{e}");
    let e =
        permanent(send(&registry, "sms", "send", json!({"to": "13800138000", "template": "SMS_1"}), "r3:s:1").await);
    assert!(e.contains("isv.SMS_TEMPLATE_ILLEGAL"), "{e}");
    vendors.inject("alibaba", [Fault::Status(500)]);
    let payload = json!({"to": "13800138000", "template": testing::ALIBABA_TEMPLATE});
    assert!(matches!(send(&registry, "sms", "send", payload, "r4:s:1").await, Err(Failure::Transient { .. })));
}

#[tokio::test]
async fn an_unknown_provider_key_or_a_missing_secret_is_named() {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let mut tables = BTreeMap::new();
    let mut table = vendors.sms_table("twilio");
    table["brandname"] = json!("ACME");
    tables.insert("sms".to_owned(), table);
    let e = Registry::build(&tables, &testing::context(&shared)).unwrap_err();
    assert!(e[0].to_string().contains("brandname"), "{}", e[0]);
    tables.insert("sms".into(), json!({"provider": "nokia"}));
    let e = Registry::build(&tables, &testing::context(&shared)).unwrap_err();
    assert!(e[0].to_string().contains("nokia"), "{}", e[0]);
    let none = |_: &str| None;
    tables.insert("sms".into(), vendors.sms_table("esms"));
    let cx = tutti_connectors::Context { env: &none, link_key: &[0; 32], shared: &shared };
    let e = Registry::build(&tables, &cx).unwrap_err();
    assert!(e[0].to_string().contains("T_ESMS_API_KEY"), "{}", e[0]);
}

/// Workers sharing one memory (one Postgres) take turns refreshing: each starts from the refresh token the
/// memory holds, never from a spent one it got itself earlier.
#[tokio::test]
async fn processes_sharing_the_memory_refresh_zalo_from_the_newest_refresh_token() {
    let vendors = Vendors::start().await;
    let shared = Shared::in_memory();
    let (one, other) = (registry_with(&vendors, &shared, "twilio"), registry_with(&vendors, &shared, "twilio"));
    let message = |n: u32| json!({"user_id": "2512523625412515", "text": format!("Chào chị Lan #{n}, 谢谢!")});
    send(&one, "zalo", "message", message(1), "k:1").await.unwrap();
    // The other process refreshes from what the first kept, which spends the token the first holds.
    send(&other, "zalo", "message", message(2), "k:2").await.unwrap();
    for n in 3..7 {
        vendors.expire_zalo_tokens();
        let registry = if n % 2 == 1 { &one } else { &other };
        send(registry, "zalo", "message", message(n), &format!("k:{n}")).await.unwrap();
    }
    assert_eq!(vendors.zalo().len(), 6);
    assert_eq!(vendors.expire_zalo_tokens(), 6, "one refresh per expiry and one per process at first");
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
}

#[tokio::test]
async fn zalo_refreshes_its_token_keeps_the_new_refresh_token_and_sends_zns_and_oa_messages() {
    let vendors = Vendors::start().await;
    let memory = Arc::new(MemoryMap::default());
    let shared = Shared { memory: memory.clone(), ..Shared::in_memory() };
    let registry = registry_with(&vendors, &shared, "twilio");
    let zns = json!({"phone": "0912345678", "template_id": testing::ZALO_TEMPLATE,
                     "template_data": {"customer_name": "Nguyễn Thị Lan", "order_code": "DH48213"}});
    let out = send(&registry, "zalo", "zns", zns.clone(), "run-7:remind:1").await.unwrap();
    assert_eq!(out["tracking_id"], "run-7:remind:1");
    let sent = vendors.zalo();
    assert_eq!((sent[0].kind.as_str(), sent[0].to.as_str()), ("zns", "84912345678"));
    assert_eq!(sent[0].body["template_data"]["customer_name"], "Nguyễn Thị Lan");
    // The new refresh token is kept: the configured one is spent.
    let kept: Value = serde_json::from_str(&memory.get("zalo", "oauth").unwrap().unwrap()).unwrap();
    assert_ne!(kept["refresh_token"], testing::ZALO_REFRESH_TOKEN);
    // A token Zalo stops accepting is refreshed once, and the message goes.
    assert_eq!(vendors.expire_zalo_tokens(), 1);
    let cs = json!({"user_id": "2512523625412515", "text": "Chào chị Lan, Acme cảm ơn chị đã mua hàng. 谢谢!"});
    let out = send(&registry, "zalo", "message", cs, "run-7:thanks:1").await.unwrap();
    assert_eq!(out["kind"], "cs");
    assert_eq!(vendors.expire_zalo_tokens(), 2, "one more refresh");
    // A new process (a restart) goes on from the kept refresh token, not the spent configured one.
    let restarted = registry_with(&vendors, &shared, "twilio");
    let promo = json!({"user_id": "2512523625412515", "kind": "promotion", "language": "vi",
                       "elements": [{"type": "header", "content": "Ưu đãi cho chị Lan"},
                                    {"type": "text", "content": "Giảm 20% đến Chủ nhật"}]});
    send(&restarted, "zalo", "message", promo, "run-7:promo:1").await.unwrap();
    assert_eq!(vendors.zalo().len(), 3);
    assert!(vendors.refusals().is_empty(), "{:?}", vendors.refusals());
    // Failures as Zalo means them: a bad phone is permanent; a refused refresh says what to do.
    let e = permanent(send(&restarted, "zalo", "zns", json!({"phone": "12", "template_id": "1"}), "k:1").await);
    assert!(e.contains("not a phone number"), "{e}");
    let e =
        permanent(send(&restarted, "zalo", "zns", json!({"phone": "0912345678", "template_id": "999"}), "k:2").await);
    assert!(e.contains("-112"), "{e}");
    let fresh_memory = Shared::in_memory();
    vendors.expire_zalo_tokens();
    let stale = registry_with(&vendors, &fresh_memory, "twilio");
    let e = permanent(send(&stale, "zalo", "zns", zns, "k:3").await);
    assert!(e.contains("authorise the app again"), "{e}");
    assert!(!e.contains("zrt-"), "no token in the error: {e}");
    vendors.inject("zalo-zns", [Fault::Status(502)]);
    let ok = json!({"phone": "0912345678", "template_id": testing::ZALO_TEMPLATE, "template_data": {}});
    assert!(matches!(send(&restarted, "zalo", "zns", ok, "k:4").await, Err(Failure::Transient { .. })));
}
