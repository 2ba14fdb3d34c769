//! Twilio Programmable Messaging, "Create a Message resource"
//! (<https://www.twilio.com/docs/messaging/api/message-resource#create-a-message-resource>):
//! `POST {api_base}/2010-04-01/Accounts/{AccountSid}/Messages.json`, HTTP Basic with the account SID and auth
//! token, a form body with `To` (E.164), `From` or `MessagingServiceSid`, `Body` (at most 1,600 characters) and
//! `StatusCallback`. A created message answers 201 with its `sid` (`SM` + 32 hex digits) and `status`; a refusal
//! answers 4xx with Twilio's `{"code", "message", "more_info", "status"}` (21211: not a valid number; 21610: the
//! recipient replied STOP), 429 when over the account's rate.

use serde_json::{Value, json};

use super::Outgoing;
use super::config::TwilioSender;
use crate::http::{Http, truncate};
use crate::{Failure, Secret};

/// Twilio's limit on a message body.
pub(super) const MAX_BODY: usize = 1_600;

#[allow(clippy::too_many_arguments)]
pub(super) async fn send(
    http: &Http,
    api_base: &str,
    account_sid: &str,
    auth: &Secret,
    sender: &TwilioSender,
    status_callback: Option<&str>,
    message: &Outgoing<'_>,
    body: &str,
) -> Result<Value, Failure> {
    if body.chars().count() > MAX_BODY {
        return Err(Failure::permanent(format!("Twilio takes a body of at most {MAX_BODY} characters")));
    }
    let url = format!("{api_base}/2010-04-01/Accounts/{account_sid}/Messages.json");
    let to = format!("+{}", message.to);
    let mut fields: Vec<(&str, &str)> = vec![("To", &to), ("Body", body)];
    match sender {
        TwilioSender::From(from) => fields.push(("From", from)),
        TwilioSender::Service(sid) => fields.push(("MessagingServiceSid", sid)),
    }
    if let Some(cb) = status_callback {
        fields.push(("StatusCallback", cb));
    }
    let answer = http.form(hyper::Method::POST, &url, &[("authorization", auth.expose())], &fields).await?;
    let v = answer.json();
    match answer.status {
        200..=299 => {
            let sid = v["sid"].as_str().unwrap_or_default();
            if sid.is_empty() {
                return Err(Failure::transient("Twilio answered without a message sid"));
            }
            Ok(json!({"id": sid, "status": v["status"]}))
        }
        408 | 429 | 500..=599 => Err(Failure::Transient {
            error: format!("HTTP {} from Twilio", answer.status),
            retry_after: crate::http::retry_after(&answer.headers, message.now),
        }),
        status => Err(Failure::permanent(format!(
            "Twilio refused the message (HTTP {status}, code {}): {}",
            v["code"],
            truncate(v["message"].as_str().unwrap_or_default(), 200)
        ))),
    }
}
