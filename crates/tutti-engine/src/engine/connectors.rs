//! Connectors as the API sees them: inbound hooks, unsubscribe links, decisions for the website, AI statistics,
//! health checks.

use tutti_core::ProfileId;

use crate::{Engine, EngineError, HookDelivery, HookError, HookRequest, NewEvent, ProfileKey};

/// Connectors as the server reaches them: [`Engine::connectors`].
pub struct ConnectorsHandle<'e> {
    engine: &'e Engine,
}

impl Engine {
    /// The connectors: the configured registry and health checks, inbound hooks, unsubscribe links, website
    /// decisions and AI statistics.
    pub fn connectors(&self) -> ConnectorsHandle<'_> {
        ConnectorsHandle { engine: self }
    }
}

impl<'e> ConnectorsHandle<'e> {
    /// An email opened (`click: false`) or a link in it clicked, from a tracking link's token: an `Email Opened`
    /// or `Email Link Clicked` event of the profile through the log, which flows can trigger on and reports
    /// count. Each message's open, and each of its links' click, is one event however often it is fetched (the
    /// message id is the token's, deduplicated as clients' are). Returns the link to send the person on to
    /// (for a click), or `None` for a token that is not genuine or not of this kind.
    pub async fn track(&self, token: &str, click: bool) -> Result<Option<Option<String>>, EngineError> {
        let Some(tracked) = tutti_connectors::smtp::tracking::verify(&self.engine.secrets.link_key(), token) else {
            return Ok(None);
        };
        if tracked.url.is_some() != click {
            return Ok(None);
        }
        let (name, kind) = if click { ("Email Link Clicked", "click") } else { ("Email Opened", "open") };
        let mut properties = serde_json::json!({
            "flow": tracked.flow, "step": tracked.step, "action_key": tracked.key, "channel": "email",
        });
        if let Some(url) = &tracked.url {
            properties["url"] = serde_json::Value::String(url.clone());
        }
        use sha2::Digest;
        let digest = sha2::Sha256::digest(token.as_bytes());
        let id: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
        let body = serde_json::json!({
            "type": "track",
            "event": name,
            "anonymousId": format!("tutti:profile:{}", tracked.profile),
            "messageId": format!("tutti-{kind}-{id}"),
            "properties": properties,
            "context": {"source": "tutti.tracking", "channel": "email"},
        });
        let now = self.engine.clock.now_ms();
        let event = tutti_core::Event::from_json(body, None, &tutti_core::BatchDefaults::default(), now, || {
            self.engine.new_message_id()
        })
        .map_err(|e| EngineError::Processing(format!("the tracking event: {e}")))?;
        self.engine.ingest(vec![NewEvent::of(event, true)]).await?;
        Ok(Some(tracked.url))
    }

    /// One-click unsubscribe (RFC 8058): checks the signed token of a `List-Unsubscribe` link and durably records
    /// `email_subscribe: "unsubscribed"` on the profile that owns the address (an `identify` through the log,
    /// like any other event, so it survives a crash and every later email that is not transactional is
    /// stopped by the consent check). Returns the address, or `None` for a token that is not genuine.
    pub async fn unsubscribe(&self, token: &str) -> Result<Option<String>, EngineError> {
        let Some(address) = tutti_connectors::smtp::verify_unsubscribe(&self.engine.secrets.link_key(), token) else {
            return Ok(None);
        };
        // The event names the profile by the id it already has, so it attaches rather than starting a new one.
        let owner = match self.engine.identity.parse_key(&format!("email:{address}")) {
            Ok(id) => self
                .engine
                .resolve_key(&ProfileKey::Identity(id))?
                .and_then(|pid| self.engine.profile(pid).ok().flatten()),
            Err(_) => None,
        };
        let (field, value) = match owner {
            Some(profile) => {
                let first = |kind: tutti_profiles::IdKind| {
                    profile.identities.iter().find(|i| i.kind == kind).map(|i| i.value.clone())
                };
                match first(tutti_profiles::IdKind::UserId) {
                    Some(user) => ("userId", user),
                    None => (
                        "anonymousId",
                        first(tutti_profiles::IdKind::AnonymousId).unwrap_or_else(|| format!("email:{address}")),
                    ),
                }
            }
            None => ("anonymousId", format!("email:{address}")),
        };
        let now = self.engine.clock.now_ms();
        let body = serde_json::json!({
            "type": "identify",
            field: value,
            "traits": {"email": address, "email_subscribe": "unsubscribed"},
            "context": {"source": "tutti.unsubscribe", "channel": "email"},
        });
        let event = tutti_core::Event::from_json(body, None, &tutti_core::BatchDefaults::default(), now, || {
            self.engine.new_message_id()
        })
        .map_err(|e| EngineError::Processing(format!("the unsubscribe event: {e}")))?;
        // And Segment's email event, for reports and for flows to trigger on.
        let track = serde_json::json!({
            "type": "track",
            "event": "Unsubscribed",
            field: value,
            "properties": {"channel": "email"},
            "context": {"source": "tutti.unsubscribe", "channel": "email"},
        });
        let track = tutti_core::Event::from_json(track, None, &tutti_core::BatchDefaults::default(), now, || {
            self.engine.new_message_id()
        })
        .map_err(|e| EngineError::Processing(format!("the unsubscribe event: {e}")))?;
        self.engine.ingest(vec![NewEvent::of(event, false), NewEvent::of(track, false)]).await?;
        Ok(Some(address))
    }

    /// An inbound webhook: checks the source's signature, maps the payload to events and stores them durably
    /// (each with a message id stable across the vendor's retries, so a retried delivery changes nothing).
    pub async fn hook(&self, source: &str, request: &HookRequest<'_>) -> Result<HookDelivery, HookError> {
        self.verify_hook(source, request)?;
        let hook = &self.engine.hooks[source];
        let now = self.engine.clock.now_ms();
        let payload = hook_payload(request)?;
        let events = hook.apply(&payload).map_err(|e| HookError::Payload(e.0))?;
        // Conversations are checked before anything is stored, so a bad one refuses the delivery whole.
        let conversations = hook
            .conversations(&payload)
            .map_err(|e| HookError::Payload(e.0))?
            .iter()
            .enumerate()
            .map(|(i, mapped)| {
                tutti_conversations::import::hook::conversation(mapped)
                    .map_err(|e| HookError::Payload(format!("mapped conversation {i}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut new = Vec::with_capacity(events.len());
        for (i, value) in events.into_iter().enumerate() {
            let event = tutti_core::Event::from_json(value, None, &tutti_core::BatchDefaults::default(), now, || {
                self.engine.new_message_id()
            })
            .map_err(|e| HookError::Payload(format!("mapped event {i}: {e}")))?;
            if let Some(field) = event.reserved_identifier() {
                return Err(HookError::Payload(format!(
                    "mapped event {i}: `{field}` uses Tutti's reserved prefix `tutti:`"
                )));
            }
            new.push(NewEvent::of(event, true));
        }
        let appended =
            if new.is_empty() { Vec::new() } else { self.engine.ingest(new).await.map_err(HookError::Engine)? };
        // After the events: a failure here is answered with an error, the vendor retries, and the events of the
        // retry are duplicates while the conversations are stored then (a put of the same conversation changes
        // nothing).
        let conversations = match conversations.len() {
            0 => None,
            n => {
                let store = self.engine.conversations.clone();
                let changes = tokio::task::spawn_blocking(move || store.put(&conversations))
                    .await
                    .map_err(|e| HookError::Engine(EngineError::Io(std::io::Error::other(e.to_string()))))?
                    .map_err(|e| HookError::Engine(e.into()))?;
                tracing::debug!(source, conversations = n, "a hook delivered conversations");
                Some(changes)
            }
        };
        Ok(HookDelivery { appended, conversations })
    }

    /// Only the signature check of [`Engine::hook`] (Slack's `url_verification` handshake stores nothing).
    pub fn verify_hook(&self, source: &str, request: &HookRequest<'_>) -> Result<(), HookError> {
        let hook = self.engine.hooks.get(source).ok_or(HookError::UnknownSource)?;
        let check = tutti_signals::verify::Request {
            method: request.method,
            path_and_query: request.path_and_query,
            headers: request.headers,
            body: request.body,
            now_ms: self.engine.clock.now_ms(),
        };
        hook.verify.check(&check).map_err(HookError::Signature)
    }

    /// What a website slot shows a profile now (set by `decide.set` steps), from memory.
    pub fn decision(&self, profile: ProfileId, slot: &str) -> Option<tutti_connectors::decide::SlotDecision> {
        self.engine.decisions.get(profile.0, slot, self.engine.clock.now_ms())
    }

    /// Members a source's hook file adds to the answer of an accepted delivery (`answer:`).
    pub fn hook_answer(&self, source: &str) -> Option<&'e serde_json::Map<String, serde_json::Value>> {
        self.engine.hooks.get(source).and_then(|h| h.answer.as_ref())
    }

    /// The sources served under `/hooks/{source}`.
    pub fn hook_sources(&self) -> Vec<&'e str> {
        self.engine.hooks.keys().map(String::as_str).collect()
    }

    /// The connectors this installation delivers through, with the limits the dispatcher applies.
    /// Generated messages per flow, and how many passed review first time and in the end.
    pub fn ai_stats(&self) -> std::collections::BTreeMap<String, tutti_ai::generate::Counts> {
        self.engine.ai_stats.snapshot()
    }

    pub fn registry(&self) -> &'e tutti_connectors::Registry {
        &self.engine.checks
    }

    /// Runs a connector's health check (the real send path, with nothing a customer sees), within its timeout.
    /// `None`: no such connector is configured.
    pub async fn check(&self, name: &str) -> Option<Result<serde_json::Value, tutti_connectors::Failure>> {
        let built = self.engine.checks.get(name)?;
        let timeout = built.settings.timeout;
        Some(match tokio::time::timeout(timeout, built.sender.health()).await {
            Ok(result) => result,
            Err(_) => Err(tutti_connectors::Failure::transient(format!("no answer within {timeout:?}"))),
        })
    }
}

/// What a hook maps: the JSON body; a form body (Twilio's callbacks) as an object of its fields; or, with no
/// body, the query's parameters (eSMS reports by GET), without the `token` that authenticated them.
fn hook_payload(request: &HookRequest<'_>) -> Result<serde_json::Value, HookError> {
    let content_type = request
        .headers
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let fields = |bytes: &[u8], skip_token: bool| {
        let mut object = serde_json::Map::new();
        for (k, v) in form_urlencoded::parse(bytes) {
            if !(skip_token && k == "token") {
                object.insert(k.into_owned(), serde_json::Value::String(v.into_owned()));
            }
        }
        serde_json::Value::Object(object)
    };
    if content_type == "application/x-www-form-urlencoded" {
        return Ok(fields(request.body, false));
    }
    if request.body.is_empty() && request.method == "GET" {
        let query = request.path_and_query.split_once('?').map(|(_, q)| q).unwrap_or("");
        return Ok(fields(query.as_bytes(), true));
    }
    serde_json::from_slice(request.body).map_err(|e| HookError::Payload(format!("the body is not JSON: {e}")))
}
