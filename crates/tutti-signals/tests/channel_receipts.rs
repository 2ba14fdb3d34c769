//! The shipped mappings for SMS and Zalo receipts, on payloads written as each provider documents them (the
//! documents are cited in the mapping files).

use serde_json::{Value, json};
use tutti_signals::{Hook, compile};

fn builtin(name: &str) -> Hook {
    let none = |_: &str| None;
    compile("t.yaml", &format!("source: s\nverify: none\nbuiltin: {name}\n"), &none).unwrap()
}

fn summary(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or(e["type"].as_str().unwrap()).to_owned(),
                e["anonymousId"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn twilio_status_callbacks_become_delivered_and_failed_and_stop_unsubscribes() {
    let hook = builtin("sms-twilio");
    let form = |status: &str, code: &str| {
        json!({"MessageSid": "SM0123", "MessageStatus": status, "ErrorCode": code, "To": "+84912345678",
               "From": "+15005550006", "AccountSid": "AC1"})
    };
    let delivered = hook.apply(&form("delivered", "")).unwrap();
    assert_eq!(summary(&delivered), [("SMS Delivered".to_owned(), "phone:+84912345678".to_owned())]);
    assert_eq!(delivered[0]["properties"]["message_id"], "SM0123");
    assert!(hook.apply(&form("sent", "")).unwrap().is_empty(), "an intermediate status maps to nothing");
    let failed = hook.apply(&form("undelivered", "30003")).unwrap();
    assert_eq!(failed[0]["event"], "SMS Failed");
    assert_eq!(failed[0]["properties"]["error_code"], "30003");
    let stop = hook.apply(&form("failed", "21610")).unwrap();
    assert_eq!(stop.len(), 2);
    assert_eq!(stop[1]["traits"]["sms_subscribe"], "unsubscribed");
    assert_eq!(
        hook.apply(&form("delivered", "")).unwrap()[0]["messageId"],
        delivered[0]["messageId"],
        "retries store once"
    );
}

#[test]
fn esms_callbacks_read_the_national_number() {
    let hook = builtin("sms-esms");
    let query = |status: &str, ok: &str, failed: &str| {
        json!({"SMSID": "dc71-2784", "SendFailed": failed, "SendStatus": status, "SendSuccess": ok,
               "TotalPrice": "0.0000", "RequestId": "run-7:remind:1", "TypeId": "2", "telcoid": "1",
               "phonenumber": "0397840416"})
    };
    let delivered = hook.apply(&query("5", "1", "0")).unwrap();
    assert_eq!(summary(&delivered), [("SMS Delivered".to_owned(), "phone:+84397840416".to_owned())]);
    assert_eq!(delivered[0]["properties"]["action_key"], "run-7:remind:1");
    assert_eq!(hook.apply(&query("5", "0", "1")).unwrap()[0]["event"], "SMS Failed");
    assert_eq!(hook.apply(&query("4", "0", "0")).unwrap()[0]["properties"]["status"], "refused");
    assert!(hook.apply(&query("1", "0", "0")).unwrap().is_empty(), "awaiting approval: nothing yet");
}

#[test]
fn alibaba_receipts_are_a_list_and_the_answer_says_code_0() {
    let hook = builtin("sms-alibaba");
    assert_eq!(hook.answer.as_ref().unwrap()["code"], 0);
    let events = hook
        .apply(&json!([
            {"phone_number": "13800138000", "send_time": "2026-12-06 10:00:00", "report_time": "2026-12-06 10:00:03",
             "success": true, "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1", "biz_id": "900^0",
             "out_id": "run-8:s:1"},
            {"phone_number": "13900139000", "send_time": "2026-12-06 10:00:00", "report_time": "2026-12-06 10:00:09",
             "success": false, "err_code": "MK:0001", "err_msg": "停机", "sms_size": "1", "biz_id": "901^0",
             "out_id": "run-9:s:1"},
        ]))
        .unwrap();
    assert_eq!(
        summary(&events),
        [
            ("SMS Delivered".to_owned(), "phone:+8613800138000".to_owned()),
            ("SMS Failed".to_owned(), "phone:+8613900139000".to_owned())
        ]
    );
    assert_eq!(events[1]["properties"]["reason"], "停机");
}

#[test]
fn zalo_events_name_the_follower_by_zalo_id_and_unfollowing_withdraws_consent() {
    let hook = builtin("zalo-events");
    let received = hook
        .apply(&json!({"app_id": "4291", "event_name": "user_received_message", "sender": {"id": "oa1"},
                       "recipient": {"id": "2512523625412515"},
                       "message": {"msg_id": "m1", "tracking_id": "run-7:remind:1", "delivery_time": "1790000000000"},
                       "timestamp": "1790000000000"}))
        .unwrap();
    assert_eq!(summary(&received), [("Zalo Message Delivered".to_owned(), "zalo:2512523625412515".to_owned())]);
    assert_eq!(received[0]["context"]["traits"]["zalo_id"], "2512523625412515");
    assert_eq!(received[0]["properties"]["action_key"], "run-7:remind:1");
    let unfollow = hook
        .apply(&json!({"app_id": "4291", "event_name": "unfollow", "follower": {"id": "2512523625412515"},
                       "timestamp": "1790000000500", "oa_id": "oa1"}))
        .unwrap();
    assert_eq!(unfollow[0]["type"], "identify");
    assert_eq!(unfollow[0]["traits"]["zalo_subscribe"], "unsubscribed");
    assert!(hook.apply(&json!({"event_name": "user_send_text", "timestamp": "1"})).unwrap().is_empty());
}
