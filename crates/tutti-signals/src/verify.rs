//! Signature checks for inbound webhooks, each as its vendor documents it:
//!
//! - `hubspot_v3` (<https://developers.hubspot.com/docs/api/webhooks/validating-requests>):
//!   `X-HubSpot-Signature-v3` is base64(HMAC-SHA256(client secret, method + URI + body + timestamp)), with
//!   `X-HubSpot-Request-Timestamp` in milliseconds; the URI is the full URL the request was sent to
//!   (`public_url` when Tutti sits behind a proxy, otherwise `https://` and the `Host` header).
//! - `slack` (<https://docs.slack.dev/authentication/verifying-requests-from-slack>): `X-Slack-Signature` is
//!   `v0=` + hex(HMAC-SHA256(signing secret, "v0:" + timestamp + ":" + body)), `X-Slack-Request-Timestamp`
//!   in seconds.
//! - `zendesk` (<https://developer.zendesk.com/documentation/webhooks/verifying/>):
//!   `X-Zendesk-Webhook-Signature` is base64(HMAC-SHA256(secret, timestamp + body)), with
//!   `X-Zendesk-Webhook-Signature-Timestamp`.
//! - `hmac_sha256`: an HMAC-SHA256 of the body in `header` (default `X-Signature`), as hex, `sha256=<hex>`
//!   (GitHub) or base64 (Shopify).
//! - `tutti`: `Tutti-Signature: t=<seconds>,v1=<hex HMAC-SHA256 of "t." + body>`, what Tutti's own webhook
//!   connector sends.
//! - `twilio` (<https://www.twilio.com/docs/usage/webhooks/webhooks-security>): `X-Twilio-Signature` is
//!   base64(HMAC-SHA1(auth token, the full URL + each form field's name and value, sorted by name)); the URL as
//!   for `hubspot_v3`.
//! - `zalo` (<https://developers.zalo.me/docs/official-account/webhook/tong-quan>): `X-ZEvent-Signature` is
//!   `mac=` + hex(SHA-256(app id + body + the body's `timestamp` + the Official Account's secret key)); `app_id`
//!   is given beside the secret.
//! - `token`: for providers that sign nothing (eSMS's callbacks, Alibaba Cloud's receipt pushes), the callback
//!   URL given to the provider carries `?token=<secret>`, compared in constant time.
//!
//! Signatures are compared in constant time; signed timestamps older (or newer) than five minutes are refused,
//! so a captured request cannot be replayed later.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};

use tutti_core::secret::{Env, Secret};

/// How far a signed timestamp may be from now.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug)]
pub enum Verify {
    /// No check (written out as `verify: none`).
    None,
    HubspotV3 {
        secret: Secret,
        public_url: Option<String>,
    },
    Slack {
        secret: Secret,
    },
    Zendesk {
        secret: Secret,
    },
    HmacSha256 {
        secret: Secret,
        header: String,
    },
    Tutti {
        secret: Secret,
    },
    Twilio {
        secret: Secret,
        public_url: Option<String>,
    },
    Zalo {
        secret: Secret,
        app_id: String,
    },
    Token {
        secret: Secret,
    },
}

/// What a check looks at.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path and query as requested (`/hooks/crm?x=1`).
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub now_ms: i64,
}

fn mac(secret: &Secret) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes keys of any length")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("the `{name}` header is missing"))
}

fn fresh(at_ms: i64, now_ms: i64) -> Result<(), String> {
    if (now_ms - at_ms).abs() > MAX_SKEW_MS {
        return Err("the signed timestamp is more than five minutes away from now (a replayed request?)".into());
    }
    Ok(())
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

const BAD: &str = "the signature does not match";

impl Verify {
    /// Reads `verify:` (`none`, or `{scheme, secret_env, header?, public_url?}`), with the secret from `env`.
    pub fn from_value(value: &Value, env: Env<'_>) -> Result<Verify, String> {
        if value == "none" {
            return Ok(Verify::None);
        }
        let Value::Object(o) = value else {
            return Err("`verify` is `none` or a map with `scheme` and `secret_env`".into());
        };
        for key in o.keys() {
            if !["scheme", "secret_env", "header", "public_url", "app_id"].contains(&key.as_str()) {
                return Err(format!(
                    "unknown key `verify.{key}`; expected scheme, secret_env, header, public_url, app_id"
                ));
            }
        }
        let scheme = o.get("scheme").and_then(Value::as_str).unwrap_or("");
        if scheme == "none" {
            return Ok(Verify::None);
        }
        let Some(name) = o.get("secret_env").and_then(Value::as_str) else {
            return Err(format!("`verify.secret_env` names the environment variable holding the {scheme} secret"));
        };
        let secret = Secret::from_env(env, "verify.secret_env", name)?;
        let text = |key: &str| o.get(key).and_then(Value::as_str).map(str::to_owned);
        Ok(match scheme {
            "hubspot_v3" => {
                Verify::HubspotV3 { secret, public_url: text("public_url").map(|u| u.trim_end_matches('/').to_owned()) }
            }
            "slack" => Verify::Slack { secret },
            "zendesk" => Verify::Zendesk { secret },
            "hmac_sha256" => {
                Verify::HmacSha256 { secret, header: text("header").unwrap_or_else(|| "X-Signature".into()) }
            }
            "tutti" => Verify::Tutti { secret },
            "twilio" => {
                Verify::Twilio { secret, public_url: text("public_url").map(|u| u.trim_end_matches('/').to_owned()) }
            }
            "zalo" => match text("app_id") {
                Some(app_id) if !app_id.is_empty() => Verify::Zalo { secret, app_id },
                _ => return Err("`verify.app_id` is the Zalo app's id, which Zalo signs with".into()),
            },
            "token" => Verify::Token { secret },
            other => {
                return Err(format!(
                    "`verify.scheme` `{other}` is not one of hubspot_v3, slack, zendesk, hmac_sha256, tutti, twilio, \
                     zalo, token, none"
                ));
            }
        })
    }

    /// Checks a request; the error says what is wrong without revealing anything of the secret.
    pub fn check(&self, r: &Request<'_>) -> Result<(), String> {
        let b64 = base64::engine::general_purpose::STANDARD;
        match self {
            Verify::None => Ok(()),
            Verify::HubspotV3 { secret, public_url } => {
                let signature = b64.decode(header(r.headers, "x-hubspot-signature-v3")?).map_err(|_| BAD.to_owned())?;
                let timestamp = header(r.headers, "x-hubspot-request-timestamp")?;
                fresh(timestamp.parse().map_err(|_| "the HubSpot timestamp is not a number".to_owned())?, r.now_ms)?;
                let uri = full_url(public_url, r)?;
                let mut m = mac(secret);
                m.update(r.method.as_bytes());
                m.update(uri.as_bytes());
                m.update(r.body);
                m.update(timestamp.as_bytes());
                m.verify_slice(&signature).map_err(|_| BAD.to_owned())
            }
            Verify::Slack { secret } => {
                let signature = header(r.headers, "x-slack-signature")?;
                let signature = signature.strip_prefix("v0=").and_then(hex).ok_or_else(|| BAD.to_owned())?;
                let timestamp = header(r.headers, "x-slack-request-timestamp")?;
                let seconds: i64 = timestamp.parse().map_err(|_| "the Slack timestamp is not a number".to_owned())?;
                fresh(seconds.saturating_mul(1000), r.now_ms)?;
                let mut m = mac(secret);
                m.update(format!("v0:{timestamp}:").as_bytes());
                m.update(r.body);
                m.verify_slice(&signature).map_err(|_| BAD.to_owned())
            }
            Verify::Zendesk { secret } => {
                let signature =
                    b64.decode(header(r.headers, "x-zendesk-webhook-signature")?).map_err(|_| BAD.to_owned())?;
                let timestamp = header(r.headers, "x-zendesk-webhook-signature-timestamp")?;
                let at = timestamp
                    .parse::<jiff::Timestamp>()
                    .map_err(|_| "the Zendesk timestamp is not an ISO 8601 time".to_owned())?;
                fresh(at.as_millisecond(), r.now_ms)?;
                let mut m = mac(secret);
                m.update(timestamp.as_bytes());
                m.update(r.body);
                m.verify_slice(&signature).map_err(|_| BAD.to_owned())
            }
            Verify::HmacSha256 { secret, header: name } => {
                let given = header(r.headers, name)?;
                let bare = given.strip_prefix("sha256=").unwrap_or(given);
                let signature = hex(bare).or_else(|| b64.decode(bare).ok()).ok_or_else(|| BAD.to_owned())?;
                let mut m = mac(secret);
                m.update(r.body);
                m.verify_slice(&signature).map_err(|_| BAD.to_owned())
            }
            Verify::Tutti { secret } => {
                let given = header(r.headers, "tutti-signature")?;
                let mut t = None;
                let mut v1 = None;
                for part in given.split(',') {
                    match part.trim().split_once('=') {
                        Some(("t", value)) => t = value.parse::<i64>().ok(),
                        Some(("v1", value)) => v1 = hex(value),
                        _ => {}
                    }
                }
                let (Some(t), Some(v1)) = (t, v1) else { return Err(BAD.into()) };
                fresh(t.saturating_mul(1000), r.now_ms)?;
                let mut m = mac(secret);
                m.update(format!("{t}.").as_bytes());
                m.update(r.body);
                m.verify_slice(&v1).map_err(|_| BAD.to_owned())
            }
            Verify::Twilio { secret, public_url } => {
                let signature = b64.decode(header(r.headers, "x-twilio-signature")?).map_err(|_| BAD.to_owned())?;
                let mut fields: Vec<(String, String)> =
                    form_urlencoded::parse(r.body).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
                fields.sort();
                let mut m = Hmac::<sha1::Sha1>::new_from_slice(secret.expose().as_bytes())
                    .expect("HMAC takes keys of any length");
                m.update(full_url(public_url, r)?.as_bytes());
                for (name, value) in &fields {
                    m.update(name.as_bytes());
                    m.update(value.as_bytes());
                }
                m.verify_slice(&signature).map_err(|_| BAD.to_owned())
            }
            Verify::Zalo { secret, app_id } => {
                let given = header(r.headers, "x-zevent-signature")?;
                let given = hex(given.strip_prefix("mac=").unwrap_or(given)).ok_or_else(|| BAD.to_owned())?;
                let body: Value = serde_json::from_slice(r.body).map_err(|_| "the body is not JSON".to_owned())?;
                let timestamp = match &body["timestamp"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err("the body has no `timestamp`, which Zalo signs".into()),
                };
                fresh(timestamp.parse().map_err(|_| "the Zalo timestamp is not a number".to_owned())?, r.now_ms)?;
                let mut digest = Sha256::new();
                digest.update(app_id.as_bytes());
                digest.update(r.body);
                digest.update(timestamp.as_bytes());
                digest.update(secret.expose().as_bytes());
                let expected = digest.finalize();
                let same = expected.len() == given.len()
                    && expected.iter().zip(&given).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
                if same { Ok(()) } else { Err(BAD.into()) }
            }
            Verify::Token { secret } => {
                let query = r.path_and_query.split_once('?').map(|(_, q)| q).unwrap_or("");
                let given = form_urlencoded::parse(query.as_bytes())
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v.into_owned())
                    .ok_or_else(|| "the `token` query parameter is missing".to_owned())?;
                // Compared as MACs of both sides: constant time whatever the lengths.
                let mut m = mac(secret);
                m.update(given.as_bytes());
                let mut expected = mac(secret);
                expected.update(secret.expose().as_bytes());
                m.verify_slice(&expected.finalize().into_bytes()).map_err(|_| "the token does not match".to_owned())
            }
        }
    }
}

/// The URL the vendor sent the request to, as it signs it: `public_url` and the path when Tutti sits behind a
/// proxy, else `https://` and the `Host` header.
fn full_url(public_url: &Option<String>, r: &Request<'_>) -> Result<String, String> {
    Ok(match public_url {
        Some(base) => format!("{base}{}", r.path_and_query),
        None => format!("https://{}{}", header(r.headers, "host")?, r.path_and_query),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const NOW: i64 = 1_790_000_000_000;

    fn secret(_: &str) -> Option<String> {
        Some("s3cret".into())
    }

    fn scheme(v: Value) -> Verify {
        Verify::from_value(&v, &secret).unwrap()
    }

    fn req<'a>(headers: &'a HeaderMap, body: &'a [u8]) -> Request<'a> {
        Request { method: "POST", path_and_query: "/hooks/crm?x=1", headers, body, now_ms: NOW }
    }

    fn sign(parts: &[&[u8]]) -> Vec<u8> {
        let mut m = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        for p in parts {
            m.update(p);
        }
        m.finalize().into_bytes().to_vec()
    }

    fn hexs(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hubspot_v3() {
        let v = scheme(serde_json::json!({"scheme": "hubspot_v3", "secret_env": "X"}));
        let body = br#"[{"objectId":1}]"#;
        let ts = NOW.to_string();
        let sig = sign(&[b"POST", b"https://mkt.example.vn/hooks/crm?x=1", body, ts.as_bytes()]);
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("mkt.example.vn"));
        h.insert("x-hubspot-request-timestamp", ts.parse().unwrap());
        h.insert("x-hubspot-signature-v3", base64::engine::general_purpose::STANDARD.encode(&sig).parse().unwrap());
        assert_eq!(v.check(&req(&h, body)), Ok(()));
        assert_eq!(v.check(&req(&h, b"[]")), Err(BAD.into()), "another body");
        let old = (NOW - MAX_SKEW_MS - 1).to_string();
        h.insert("x-hubspot-request-timestamp", old.parse().unwrap());
        assert!(v.check(&req(&h, body)).unwrap_err().contains("five minutes"));
    }

    #[test]
    fn slack_zendesk_hmac_and_tutti() {
        let body = r#"{"a":"Xin chào 你好"}"#.as_bytes();
        let secs = (NOW / 1000).to_string();
        let mut h = HeaderMap::new();
        h.insert("x-slack-request-timestamp", secs.parse().unwrap());
        h.insert(
            "x-slack-signature",
            format!("v0={}", hexs(&sign(&[format!("v0:{secs}:").as_bytes(), body]))).parse().unwrap(),
        );
        let slack = scheme(serde_json::json!({"scheme": "slack", "secret_env": "X"}));
        assert_eq!(slack.check(&req(&h, body)), Ok(()));
        h.insert("x-slack-signature", "v0=00".parse().unwrap());
        assert_eq!(slack.check(&req(&h, body)), Err(BAD.into()));

        let iso = jiff::Timestamp::from_millisecond(NOW).unwrap().to_string();
        let mut h = HeaderMap::new();
        h.insert("x-zendesk-webhook-signature-timestamp", iso.parse().unwrap());
        let sig = base64::engine::general_purpose::STANDARD.encode(sign(&[iso.as_bytes(), body]));
        h.insert("x-zendesk-webhook-signature", sig.parse().unwrap());
        assert_eq!(scheme(serde_json::json!({"scheme": "zendesk", "secret_env": "X"})).check(&req(&h, body)), Ok(()));

        let hmac =
            scheme(serde_json::json!({"scheme": "hmac_sha256", "secret_env": "X", "header": "X-Hub-Signature-256"}));
        let mut h = HeaderMap::new();
        h.insert("x-hub-signature-256", format!("sha256={}", hexs(&sign(&[body]))).parse().unwrap());
        assert_eq!(hmac.check(&req(&h, body)), Ok(()));
        h.insert(
            "x-hub-signature-256",
            base64::engine::general_purpose::STANDARD.encode(sign(&[body])).parse().unwrap(),
        );
        assert_eq!(hmac.check(&req(&h, body)), Ok(()), "base64, as Shopify sends it");
        assert!(hmac.check(&req(&HeaderMap::new(), body)).unwrap_err().contains("X-Hub-Signature-256"));

        let tutti = scheme(serde_json::json!({"scheme": "tutti", "secret_env": "X"}));
        let mut h = HeaderMap::new();
        let signed = format!("t={},v1={}", NOW / 1000, hexs(&sign(&[format!("{}.", NOW / 1000).as_bytes(), body])));
        h.insert("tutti-signature", signed.parse().unwrap());
        assert_eq!(tutti.check(&req(&h, body)), Ok(()));
    }

    #[test]
    fn twilio_zalo_and_token() {
        // Expected values computed outside Rust: `printf '%s' '<url><sorted name+value pairs>' | openssl dgst -sha1
        // -hmac s3cret -binary | base64`, and `printf '%s' '<app id><body><timestamp>s3cret' | sha256sum`.
        let twilio = scheme(serde_json::json!({"scheme": "twilio", "secret_env": "X",
                                               "public_url": "https://mkt.example.vn/"}));
        let body = b"To=%2B84912345678&MessageStatus=delivered&MessageSid=SM1";
        let mut h = HeaderMap::new();
        h.insert("x-twilio-signature", HeaderValue::from_static("nUi4pW21J5JUlW3YWN4SIaHP7Gs="));
        let r = Request { method: "POST", path_and_query: "/hooks/sms?x=1", headers: &h, body, now_ms: NOW };
        assert_eq!(twilio.check(&r), Ok(()));
        let r = Request { body: b"To=%2B84912345678&MessageStatus=failed&MessageSid=SM1", ..r };
        assert_eq!(twilio.check(&r), Err(BAD.into()), "another status");

        let zalo = scheme(serde_json::json!({"scheme": "zalo", "secret_env": "X", "app_id": "4291"}));
        let body = br#"{"event_name":"user_received_message","timestamp":"1790000000000"}"#;
        let mut h = HeaderMap::new();
        h.insert(
            "x-zevent-signature",
            HeaderValue::from_static("mac=feedfad1ff9ef7df3cedcaab8eca708420e739422dcab9ea90142e6723e65b4c"),
        );
        assert_eq!(zalo.check(&req(&h, body)), Ok(()));
        let late = Request { now_ms: NOW + MAX_SKEW_MS + 1, ..req(&h, body) };
        assert!(zalo.check(&late).unwrap_err().contains("five minutes"));
        h.insert("x-zevent-signature", HeaderValue::from_static("mac=00"));
        assert_eq!(zalo.check(&req(&h, body)), Err(BAD.into()));
        assert!(Verify::from_value(&serde_json::json!({"scheme": "zalo", "secret_env": "X"}), &secret).is_err());

        let token = scheme(serde_json::json!({"scheme": "token", "secret_env": "X"}));
        let h = HeaderMap::new();
        let with =
            |pq: &'static str| Request { method: "GET", path_and_query: pq, headers: &h, body: b"", now_ms: NOW };
        assert_eq!(token.check(&with("/hooks/esms?SMSID=1&token=s3cret")), Ok(()));
        assert!(token.check(&with("/hooks/esms?SMSID=1&token=s3cre")).is_err());
        assert!(token.check(&with("/hooks/esms?SMSID=1")).unwrap_err().contains("missing"));
    }

    #[test]
    fn configuration_problems_are_named() {
        let e = Verify::from_value(&serde_json::json!({"scheme": "hubspot"}), &secret).unwrap_err();
        assert!(e.contains("secret_env"), "{e}");
        let e = Verify::from_value(&serde_json::json!({"scheme": "md5", "secret_env": "X"}), &secret).unwrap_err();
        assert!(e.contains("md5"), "{e}");
        let unset = |_: &str| None;
        let e = Verify::from_value(&serde_json::json!({"scheme": "slack", "secret_env": "NOPE"}), &unset).unwrap_err();
        assert!(e.contains("NOPE") && e.contains("not set"), "{e}");
        assert!(matches!(Verify::from_value(&serde_json::json!("none"), &unset), Ok(Verify::None)));
    }
}
