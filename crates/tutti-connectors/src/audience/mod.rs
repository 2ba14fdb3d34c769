//! `audience`: adds profiles to, and removes them from, named ad audiences, synced in batches.
//!
//! A step's `audience.add` / `audience.remove` (with `audience`, and the profile's `email` and/or `phone`)
//! stages the change durably in the connector memory and counts as delivered; a background task on the delivery
//! thread sends what is staged every `flush_every`, or as soon as `batch_size` changes wait, and forgets them
//! only once the platform confirmed. A person added then removed before the next batch is only removed (the
//! latest change wins). Identifiers are normalised and SHA-256 hashed as the platform requires, never sent in
//! clear:
//!
//! - `format = "meta"`, a Custom Audience's `/{audience_id}/users` edge
//!   (<https://developers.facebook.com/docs/marketing-api/audiences/guides/custom-audiences>): `POST` to add and
//!   `DELETE` to remove, with `{"payload": {"schema": ["EMAIL", "PHONE"], "data": [[email hash, phone hash], ...]}}`
//!   (the multi-key form), at most 10,000 rows a request. Emails trimmed and lower-cased; phones as digits with
//!   the country code, without `+` or leading zeros.
//! - `format = "google"`, Customer Match style (<https://developers.google.com/google-ads/api/docs/remarketing/audience-segments/customer-match/get-started>):
//!   `POST` of `{"operations": [{"create" | "remove": {"userIdentifiers": [{"hashedEmail": ...},
//!   {"hashedPhoneNumber": ...}]}}]}`; emails trimmed and lower-cased (periods before the domain removed for
//!   gmail.com and googlemail.com), phones in E.164 (`+84...`), each identifier its own object.
//!
//! Configuration: `format`, `endpoint` (with `{audience_id}`), `token_env`, `audiences` (Tutti's name to the
//! platform's id), `default_country_code` (for phones written without one), `batch_size` (default 1,000, at most
//! 10,000), `flush_every` (default `10s`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::CheckedConfig;
use crate::http::{Http, classify, parse_url};
use crate::{
    Action, Context, Delivery, Failure, Kind, Memory, Operation, Secret, Sender, Settings, optional_text, text,
};

mod config;
use config::{Config, Format};

/// What adding or removing a person takes.
const CHANGE_FIELDS: [&str; 3] = ["audience", "email", "phone"];

pub static KIND: Kind = Kind {
    name: "audience",
    channel: "ads",
    operations: &[Operation::taking("add", &CHANGE_FIELDS), Operation::taking("remove", &CHANGE_FIELDS)],
    default_on: false,
    units: crate::per_action,
    validate: config::validate,
};

/// The most rows Meta takes in one request.
const MAX_BATCH: usize = 10_000;
impl CheckedConfig for config::Checked {
    fn build(self: Box<Self>, settings: &Settings) -> Arc<dyn Sender> {
        Arc::new(Audience {
            http: Http::new(&settings.allow_private, 2),
            auth: self.auth,
            config: self.config,
            memory: self.memory,
            wake: Arc::new(tokio::sync::Notify::new()),
            staged: std::sync::atomic::AtomicUsize::new(0),
            timeout: settings.timeout,
        })
    }
}

struct Audience {
    http: Http,
    auth: Secret,
    config: Config,
    memory: Arc<dyn Memory>,
    /// Rung when a batch's worth is staged.
    wake: Arc<tokio::sync::Notify>,
    /// Changes staged since the last flush began (changes staged before a restart are found by the next
    /// timed flush).
    staged: std::sync::atomic::AtomicUsize,
    timeout: Duration,
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// An email as the platform hashes it, or `None` when it is not an address.
fn normal_email(raw: &str, format: Format) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    if local.is_empty() || !domain.contains('.') || email.contains(char::is_whitespace) {
        return None;
    }
    if format == Format::Google && (domain == "gmail.com" || domain == "googlemail.com") {
        return Some(format!("{}@{domain}", local.replace('.', "")));
    }
    Some(email)
}

/// A phone as the platform hashes it: digits with the country code (Meta), or E.164 with `+` (Google).
fn normal_phone(raw: &str, default_cc: Option<&str>, format: Format) -> Option<String> {
    let international = crate::phone::international(raw, default_cc)?;
    Some(match format {
        Format::Meta => international,
        Format::Google => format!("+{international}"),
    })
}

impl Audience {
    fn stage(&self, action: Action<'_>, add: bool) -> Result<Value, Failure> {
        let p = action.payload;
        KIND.check(&action)?;
        let name = text(p, "audience", action.operation)?;
        if !self.config.audiences.contains_key(name) {
            let known: Vec<&str> = self.config.audiences.keys().map(String::as_str).collect();
            return Err(Failure::permanent(format!(
                "no audience `{name}` in [connectors.audience] audiences; there are {}",
                known.join(", ")
            )));
        }
        let format = self.config.format;
        let email = optional_text(p, "email")?.and_then(|e| normal_email(e, format)).map(|e| sha256_hex(&e));
        let phone = optional_text(p, "phone")?
            .and_then(|ph| normal_phone(ph, self.config.default_country_code.as_deref(), format))
            .map(|ph| sha256_hex(&ph));
        if email.is_none() && phone.is_none() {
            return Err(Failure::permanent("no usable `email` or `phone` to match the person on the platform"));
        }
        let person = sha256_hex(&format!("{}|{}", email.as_deref().unwrap_or(""), phone.as_deref().unwrap_or("")));
        let staged =
            json!({"op": if add { "add" } else { "remove" }, "email": email, "phone": phone, "at": action.now});
        self.memory
            .put(KIND.name, &format!("{name}/{person}"), &staged.to_string())
            .map_err(|e| Failure::transient(format!("the change cannot be staged: {e}")))?;
        // Counted rather than scanned: staging stays one write however many changes wait.
        if self.staged.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1 >= self.config.batch_size {
            self.wake.notify_one();
        }
        Ok(json!({"audience": name, "staged": if add { "add" } else { "remove" }}))
    }

    /// Sends everything staged, audience by audience, a batch at a time. Returns how many changes were sent. One
    /// flush at a time among every process sharing the staged changes (workers on one Postgres): while another
    /// flushes, this one sends nothing, since the other sends them.
    async fn flush(&self) -> Result<usize, String> {
        let Some(_flushing) = self.memory.try_hold(KIND.name, "flush")? else { return Ok(0) };
        self.staged.store(0, std::sync::atomic::Ordering::Relaxed);
        let mut sent = 0;
        for (name, id) in &self.config.audiences {
            let prefix = format!("{name}/");
            let mut after = String::new();
            loop {
                let page = self.memory.scan(KIND.name, &prefix, &after, self.config.batch_size)?;
                let Some((last, _)) = page.last() else { break };
                after = last.clone();
                for add in [true, false] {
                    let op = if add { "add" } else { "remove" };
                    let rows: Vec<&(String, String)> = page
                        .iter()
                        .filter(|(_, v)| serde_json::from_str::<Value>(v).is_ok_and(|v| v["op"] == op))
                        .collect();
                    if rows.is_empty() {
                        continue;
                    }
                    let people: Vec<Value> = rows.iter().filter_map(|(_, v)| serde_json::from_str(v).ok()).collect();
                    self.send_batch(id, add, &people).await?;
                    // Forget only what is still as sent (a newer change for the same person waits for the next batch).
                    let done: Vec<String> = rows
                        .iter()
                        .filter(|(k, v)| self.memory.get(KIND.name, k).ok().flatten().as_ref() == Some(v))
                        .map(|(k, _)| k.clone())
                        .collect();
                    self.memory.remove(KIND.name, &done)?;
                    sent += rows.len();
                }
            }
        }
        Ok(sent)
    }

    async fn send_batch(&self, audience_id: &str, add: bool, people: &[Value]) -> Result<(), String> {
        let url = self.config.endpoint.replace("{audience_id}", audience_id);
        let hash = |v: &Value, key: &str| v[key].as_str().unwrap_or("").to_owned();
        let (method, body) = match self.config.format {
            Format::Meta => {
                let data: Vec<Value> = people.iter().map(|p| json!([hash(p, "email"), hash(p, "phone")])).collect();
                let method = if add { hyper::Method::POST } else { hyper::Method::DELETE };
                (method, json!({"payload": {"schema": ["EMAIL", "PHONE"], "data": data}}))
            }
            Format::Google => {
                let op = if add { "create" } else { "remove" };
                let operations: Vec<Value> = people
                    .iter()
                    .map(|p| {
                        let mut ids = Vec::new();
                        if p["email"].is_string() {
                            ids.push(json!({"hashedEmail": p["email"]}));
                        }
                        if p["phone"].is_string() {
                            ids.push(json!({"hashedPhoneNumber": p["phone"]}));
                        }
                        json!({op: {"userIdentifiers": ids}})
                    })
                    .collect();
                (hyper::Method::POST, json!({"operations": operations}))
            }
        };
        let headers = [("authorization", self.auth.expose())];
        let call = self.http.json(method, &url, &headers, Some(&body));
        let answer = tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| format!("no answer within {:?}", self.timeout))?
            .map_err(|f| f.to_string())?;
        classify(&answer, 0).map(|_| ()).map_err(|f| f.to_string())
    }
}

impl Sender for Audience {
    fn send<'a>(&'a self, action: Action<'a>) -> Delivery<'a> {
        Box::pin(async move {
            match action.operation {
                "add" => self.stage(action, true),
                "remove" => self.stage(action, false),
                other => Err(crate::unknown_operation("audience", other)),
            }
        })
    }

    /// Sends what is staged, now: the platform's endpoint and token, the way every batch goes.
    fn health(&self) -> Delivery<'_> {
        Box::pin(async move {
            let sent = self.flush().await.map_err(Failure::transient)?;
            Ok(json!({"ok": true, "sent": sent}))
        })
    }

    fn start(self: Arc<Self>) {
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let wait = if failures == 0 {
                    self.config.flush_every
                } else {
                    (self.config.flush_every * 2u32.saturating_pow(failures.min(6))).min(Duration::from_secs(3600))
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => {}
                }
                match self.flush().await {
                    Ok(_) => failures = 0,
                    Err(e) => {
                        failures += 1;
                        // The vendor's answer may echo members' data: DEBUG only.
                        tracing::warn!(failures, "audience sync failed; the changes stay staged");
                        tracing::debug!(error = %e, "why the audience sync failed");
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_normalised_as_each_platform_asks() {
        assert_eq!(normal_email("  Lan.Nguyen@Gmail.com ", Format::Meta).as_deref(), Some("lan.nguyen@gmail.com"));
        assert_eq!(normal_email("  Lan.Nguyen@Gmail.com ", Format::Google).as_deref(), Some("lannguyen@gmail.com"));
        assert_eq!(normal_email("not an email", Format::Meta), None);
        assert_eq!(normal_phone("+84 912 345 678", None, Format::Meta).as_deref(), Some("84912345678"));
        assert_eq!(normal_phone("0912-345-678", Some("84"), Format::Meta).as_deref(), Some("84912345678"));
        assert_eq!(normal_phone("0912-345-678", Some("84"), Format::Google).as_deref(), Some("+84912345678"));
        assert_eq!(normal_phone("008613800138000", None, Format::Google).as_deref(), Some("+8613800138000"));
        assert_eq!(normal_phone("0912", Some("84"), Format::Meta), None, "too short");
        assert_eq!(normal_phone("0912345678", None, Format::Meta), None, "national without a country code");
        // SHA-256 of "84912345678", checked with `printf 84912345678 | sha256sum`.
        assert_eq!(sha256_hex("84912345678"), "25cc2f7574420a2d46c9f2d6cf94cdbb242ef7d479afe92ed6e8eb33a7493093");
    }
}
