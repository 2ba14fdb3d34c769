//! The Official Account's access token, refreshed as Zalo documents it
//! (<https://developers.zalo.me/docs/official-account/bat-dau/xac-thuc-va-uy-quyen-cho-ung-dung-new>):
//! `POST {oauth_base}/v4/oa/access_token` with the app secret in a `secret_key` header and a form body of
//! `refresh_token`, `app_id` and `grant_type=refresh_token`; the answer gives a new `access_token` (valid
//! `expires_in` seconds, about 25 hours, written as text) and a new `refresh_token` (valid three months, and
//! good for one use only).
//!
//! Because a refresh token works once, the new one is written to the connector's durable memory before the
//! access token is used: a restart goes on from it rather than from the configured one, which Zalo would
//! refuse. The configured token is used again only when it changes (the operator authorised the app anew).
//! One refresh at a time: lanes that find the token expired wait for the refresh under way.
//!
//! Several processes may share the memory (workers on one Postgres): each refresh starts from the refresh token
//! the memory holds, which is the newest whoever refreshed, not from the one this process last got; and a
//! refresh Zalo refuses is tried once more when the memory meanwhile holds another token (another process
//! refreshed at the same moment).

use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::http::Http;
use crate::{Failure, Memory, Secret};

/// Refreshed this long before it expires.
const MARGIN_MS: i64 = 5 * 60 * 1000;

/// What is kept in memory under this key: the refresh token to use next, and which configured one it came from.
const KEY: &str = "oauth";

#[derive(Clone)]
struct Current {
    access: String,
    expires_at: i64,
    /// The refresh token this process got last.
    refresh: String,
    /// Whether `refresh` was written to the memory: if not, only this process holds it.
    kept: bool,
}

pub(super) struct Tokens {
    pub(super) app_id: String,
    pub(super) app_secret: Secret,
    pub(super) configured: Secret,
    pub(super) oauth_base: String,
    pub(super) memory: Arc<dyn Memory>,
    current: tokio::sync::Mutex<Option<Current>>,
}

fn fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect()
}

impl Tokens {
    pub(super) fn new(
        app_id: String,
        app_secret: Secret,
        configured: Secret,
        oauth_base: String,
        memory: Arc<dyn Memory>,
    ) -> Tokens {
        Tokens { app_id, app_secret, configured, oauth_base, memory, current: tokio::sync::Mutex::new(None) }
    }

    /// An access token valid now: the one held, or a new one. `stale`: the API refused this one, so it is not
    /// used again whatever its expiry said.
    pub(super) async fn access(&self, http: &Http, now: i64, stale: Option<&str>) -> Result<String, Failure> {
        let mut current = self.current.lock().await;
        if let Some(c) = current.as_ref()
            && c.expires_at - MARGIN_MS > now
            && stale != Some(c.access.as_str())
        {
            return Ok(c.access.clone());
        }
        let token = match current.as_ref().filter(|c| !c.kept) {
            Some(held) => held.refresh.clone(),
            None => self.refresh_token()?,
        };
        let refreshed = match self.refresh(http, now, &token).await {
            Err(Failure::Permanent(refused)) => {
                // Another process may have spent the token just now and kept the one it got.
                let newest = self.refresh_token()?;
                if newest == token {
                    return Err(Failure::Permanent(refused));
                }
                self.refresh(http, now, &newest).await?
            }
            other => other?,
        };
        let access = refreshed.access.clone();
        *current = Some(refreshed);
        Ok(access)
    }

    /// The refresh token to use: the last one Zalo gave, unless the configured one changed since.
    fn refresh_token(&self) -> Result<String, Failure> {
        let configured = self.configured.expose();
        let kept = self
            .memory
            .get("zalo", KEY)
            .map_err(|e| Failure::transient(format!("the kept refresh token cannot be read: {e}")))?
            .and_then(|v| serde_json::from_str::<Value>(&v).ok());
        Ok(match kept {
            Some(v) if v["from"] == fingerprint(configured) => {
                v["refresh_token"].as_str().unwrap_or(configured).to_owned()
            }
            _ => configured.to_owned(),
        })
    }

    async fn refresh(&self, http: &Http, now: i64, refresh_token: &str) -> Result<Current, Failure> {
        let url = format!("{}/v4/oa/access_token", self.oauth_base);
        let fields =
            [("refresh_token", refresh_token), ("app_id", self.app_id.as_str()), ("grant_type", "refresh_token")];
        let answer = http.form(hyper::Method::POST, &url, &[("secret_key", self.app_secret.expose())], &fields).await?;
        if answer.status >= 500 || answer.status == 429 {
            return Err(Failure::transient(format!("Zalo's OAuth answered HTTP {}", answer.status)));
        }
        let v = answer.json();
        let (Some(access), Some(next)) = (v["access_token"].as_str(), v["refresh_token"].as_str()) else {
            // Never the answer itself: it may echo the token.
            return Err(Failure::permanent(format!(
                "Zalo refused to refresh the access token (error {}: {}); authorise the app again and set a new \
                 refresh token",
                v["error"],
                crate::http::truncate(v["error_description"].as_str().or(v["error_name"].as_str()).unwrap_or(""), 120)
            )));
        };
        let seconds = match &v["expires_in"] {
            Value::String(s) => s.trim().parse::<i64>().unwrap_or(3600),
            Value::Number(n) => n.as_i64().unwrap_or(3600),
            _ => 3600,
        };
        // The new refresh token is kept before anything else happens: the old one is spent. Should the write
        // fail, this process still holds it and writes it with the next refresh.
        let kept = json!({"refresh_token": next, "from": fingerprint(self.configured.expose())});
        let written = self.memory.put("zalo", KEY, &kept.to_string());
        if let Err(e) = &written {
            tracing::warn!(error = %e, "zalo: the new refresh token could not be written; this process holds it");
        }
        Ok(Current {
            access: access.to_owned(),
            expires_at: now + seconds * 1000,
            refresh: next.to_owned(),
            kept: written.is_ok(),
        })
    }
}
