//! `zalo`: Zalo Notification Service (ZNS) template messages to a phone number, and Official Account
//! messages to its followers.
//!
//! - `zalo.zns` (<https://developers.zalo.me/docs/zalo-notification-service/gui-tin-zns/gui-zns>): `POST
//!   {zns_base}/message/template` with the access token in an `access_token` header and `{"phone" (84...),
//!   "template_id", "template_data": {...}, "tracking_id"}`; the template is one Zalo approved beforehand, the
//!   data its parameters. `tracking_id` is the action's key (hashed when longer than 48 characters), so a
//!   delivery event can be matched with the action.
//! - `zalo.message` (<https://developers.zalo.me/docs/official-account/tin-nhan/tin-tu-van/gui-tin-tu-van-dang-van-ban>
//!   and the transaction and promotion messages beside it): `POST {oa_base}/v3.0/oa/message/{kind}` with
//!   `{"recipient": {"user_id"}, "message": ...}`: for `kind: cs` (the default, a consultation message, allowed
//!   while the follower's last interaction is recent) a `text`; for `transaction` and `promotion` a template
//!   attachment of `elements` and `buttons`.
//!
//! Zalo answers HTTP 200 with `{"error": 0, "message": "Success", "data": {...}}`, or a negative `error`: an
//! invalid or expired access token (-124 from ZNS, -216 from the OA API) is refreshed once and the call made
//! again (`token.rs`); -32 (over the rate limit) is retried later; any other error (-108 a phone number that is
//! not valid, -118 no Zalo account, -114 the user rejects or cannot receive it, ...) is permanent, with Zalo's
//! message. The access token is never logged. Delivery events come back through the inbound hook with the
//! `zalo-events` mapping.

mod config;
mod token;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::CheckedConfig;
use crate::http::{Http, parse_url};
use crate::{
    Action, Context, Delivery, Failure, Kind, Memory, Operation, Secret, Sender, Settings, optional_text, text,
};

pub static KIND: Kind = Kind {
    name: "zalo",
    channel: "zalo",
    operations: &[
        Operation::taking("zns", &["phone", "template_id", "template_data"]),
        Operation::taking("message", &["user_id", "text", "kind", "elements", "buttons", "language"]),
    ],
    default_on: false,
    units: crate::per_action,
    validate: config::validate,
};

/// Zalo's errors for an access token it does not accept (ZNS, then the OA API).
const TOKEN_REFUSED: [i64; 2] = [-124, -216];

/// Zalo's error for calls over the rate limit.
const RATE_LIMITED: i64 = -32;

/// The longest `tracking_id` ZNS takes.
const MAX_TRACKING_ID: usize = 48;

impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender> {
        Arc::new(Zalo {
            http: Http::new(&settings.allow_private, settings.concurrency),
            tokens: token::Tokens::new(self.app_id, self.app_secret, self.refresh_token, self.oauth_base, self.memory),
            zns_base: self.zns_base,
            oa_base: self.oa_base,
            default_country_code: self.default_country_code,
        })
    }
}

struct Zalo {
    http: Http,
    tokens: token::Tokens,
    zns_base: String,
    oa_base: String,
    default_country_code: Option<String>,
}

/// The action's key as a ZNS `tracking_id`.
pub fn tracking_id(key: &str) -> String {
    if key.len() <= MAX_TRACKING_ID && key.bytes().all(|b| b.is_ascii_graphic()) {
        return key.to_owned();
    }
    Sha256::digest(key.as_bytes())[..20].iter().map(|b| format!("{b:02x}")).collect()
}

impl Zalo {
    /// Posts `body` to `url` with a valid access token; a refused token is refreshed and the call made once more.
    async fn call(&self, url: &str, body: &Value, now: i64) -> Result<Value, Failure> {
        let mut stale: Option<String> = None;
        for _ in 0..2 {
            let token = self.tokens.access(&self.http, now, stale.as_deref()).await?;
            let answer = self.http.json(hyper::Method::POST, url, &[("access_token", &token)], Some(body)).await?;
            if !(200..300).contains(&answer.status) {
                return Err(match answer.status {
                    408 | 429 | 500..=599 => Failure::Transient {
                        error: format!("HTTP {} from Zalo", answer.status),
                        retry_after: crate::http::retry_after(&answer.headers, now),
                    },
                    status => Failure::permanent(format!("HTTP {status} from Zalo")),
                });
            }
            let v = answer.json();
            let error = v["error"].as_i64().unwrap_or(-1);
            let message = crate::http::truncate(v["message"].as_str().unwrap_or_default(), 200).to_owned();
            match error {
                0 => return Ok(v["data"].clone()),
                e if TOKEN_REFUSED.contains(&e) => stale = Some(token),
                RATE_LIMITED => return Err(Failure::transient(format!("Zalo: over the rate limit ({message})"))),
                e => return Err(Failure::permanent(format!("Zalo refused the message: error {e}: {message}"))),
            }
        }
        Err(Failure::transient("Zalo refused a freshly refreshed access token"))
    }

    async fn zns(&self, action: &Action<'_>) -> Result<Value, Failure> {
        let p = action.payload;
        let raw = text(p, "phone", "zns")?;
        let phone = crate::phone::international(raw, self.default_country_code.as_deref())
            .ok_or_else(|| Failure::permanent("`phone` is not a phone number"))?;
        let template_id = text(p, "template_id", "zns")?;
        let data = match p.get("template_data") {
            Some(Value::Object(m)) => m.clone(),
            None | Some(Value::Null) => Default::default(),
            Some(_) => return Err(Failure::permanent("`template_data` is a map of the template's parameters")),
        };
        let tracking = tracking_id(action.key);
        let body = json!({"phone": phone, "template_id": template_id, "template_data": data, "tracking_id": tracking});
        let data = self.call(&format!("{}/message/template", self.zns_base), &body, action.now).await?;
        Ok(json!({"id": data["msg_id"], "tracking_id": tracking, "sent_time": data["sent_time"]}))
    }

    async fn message(&self, action: &Action<'_>) -> Result<Value, Failure> {
        let p = action.payload;
        let user_id = text(p, "user_id", "message")?;
        let kind = optional_text(p, "kind")?.unwrap_or("cs");
        let message = match kind {
            "cs" => {
                if p.get("elements").is_some_and(|e| !e.is_null()) {
                    return Err(Failure::permanent(
                        "a `cs` message is `text`; elements go in transaction and promotion",
                    ));
                }
                let text = text(p, "text", "message")?;
                if text.chars().count() > 2000 {
                    return Err(Failure::permanent("Zalo takes a text message of at most 2,000 characters"));
                }
                json!({"text": text})
            }
            "transaction" | "promotion" => {
                let Some(elements) = p.get("elements").and_then(Value::as_array).filter(|e| !e.is_empty()) else {
                    return Err(Failure::permanent(format!("a `{kind}` message needs `elements`")));
                };
                let language = optional_text(p, "language")?.unwrap_or("VI").to_uppercase();
                if language != "VI" && language != "EN" {
                    return Err(Failure::permanent("`language` is VI or EN"));
                }
                let mut payload = json!({"template_type": kind, "language": language, "elements": elements});
                if let Some(buttons) = p.get("buttons").filter(|b| !b.is_null()) {
                    payload["buttons"] = buttons.clone();
                }
                json!({"attachment": {"type": "template", "payload": payload}})
            }
            other => {
                return Err(Failure::permanent(format!("`kind` is cs, transaction or promotion, not `{other}`")));
            }
        };
        let body = json!({"recipient": {"user_id": user_id}, "message": message});
        let url = format!("{}/v3.0/oa/message/{kind}", self.oa_base);
        let data = self.call(&url, &body, action.now).await?;
        Ok(json!({"id": data["message_id"], "user_id": data["user_id"], "kind": kind}))
    }
}

impl Sender for Zalo {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            KIND.check(&action)?;
            match action.operation {
                "zns" => self.zns(&action).await,
                "message" => self.message(&action).await,
                other => Err(crate::unknown_operation("zalo", other)),
            }
        })
    }

    /// Gets an access token the way every send does (refreshing it when needed): the app, its secret and the
    /// refresh token all work. Sends nothing.
    fn health(&self) -> Delivery<'_> {
        Box::pin(async move {
            let now = jiff::Timestamp::now().as_millisecond();
            self.tokens.access(&self.http, now, None).await?;
            Ok(json!({"token": "valid"}))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_become_a_fixed_length_tracking_id() {
        assert_eq!(tracking_id("r1:s1:0"), "r1:s1:0");
        let long = "r".repeat(60);
        let t = tracking_id(&long);
        assert_eq!(t.len(), 40);
        assert_eq!(t, tracking_id(&long), "stable");
    }
}
