//! Conversations as the API sees them: the store, and the last mining, made again when the conversations or
//! people's topic edits changed since. A mining groups also in the space of the provider the `ai` connector
//! routes `embed` to, and lets the model it routes `label` to name the topics, when it has them
//! ([`ThroughAi`]).

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::connectors::BlockingSender;
use tutti_conversations::mine::space::{Embedded, Labels, Model, ToLabel};
use tutti_conversations::service::{self, ImportSummary, Report};
use tutti_conversations::store::{ConversationStore, StoreError};

use crate::{Engine, NewEvent};

/// How long a mining a configured model failed (it fell back to the words) is kept before the model is tried
/// again.
pub const MODEL_RETRY_MS: i64 = 15 * 60 * 1000;

impl Engine {
    /// Mines the conversations now, on a blocking thread, so flows hear of their topics without anyone reading
    /// them. A failure is logged; the next read of topics mines again. Needs a Tokio runtime.
    pub fn mine_conversations_now(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = engine.conversations().report() {
                tracing::error!(error = %e, "mining conversations failed; the next read of topics mines again");
            }
        })
    }

    /// Mines the conversations in the background `[conversations] mine_after` from now, once for any number of
    /// calls meanwhile: notes that arrive one at a time through hooks are mined together, and flows hear of their
    /// topics. Needs a Tokio runtime.
    pub fn mine_conversations_soon(self: &Arc<Self>) {
        if self.mining_scheduled.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(engine.conversation_settings.mine_after).await;
            // Cleared before the mining starts: what arrives during it schedules the next.
            engine.mining_scheduled.store(false, std::sync::atomic::Ordering::SeqCst);
            if let Err(e) = engine.mine_conversations_now().await {
                tracing::error!(error = %e, "mining conversations stopped");
            }
        });
    }
}

/// Conversations as the server reaches them: [`Engine::conversations`].
pub struct ConversationsHandle<'e> {
    engine: &'e Engine,
}

impl Engine {
    /// Imported calls and chats, their topics and golden scripts.
    pub fn conversations(&self) -> ConversationsHandle<'_> {
        ConversationsHandle { engine: self }
    }
}

impl ConversationsHandle<'_> {
    pub fn store(&self) -> Arc<ConversationStore> {
        self.engine.conversations.clone()
    }

    /// Imports JSON lines.
    pub fn import_lines(&self, input: impl std::io::BufRead) -> Result<ImportSummary, StoreError> {
        service::import_lines(&self.engine.conversations, input, &mut |_| {})
    }

    /// The last mining when nothing changed since (an import, an erasure or a topic edit clears it) and no
    /// configured model failed it in the last [`MODEL_RETRY_MS`], else a new one, kept, whose topics are then
    /// told to flows ([`tutti_conversations::events`]). One mining runs at a time; a request that comes during
    /// one waits for it and reads its result. Blocking.
    pub fn report(&self) -> Result<Report, StoreError> {
        let _one = self.engine.mining.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.engine.clock.now_ms();
        if let Some(report) = service::kept_report(&self.engine.conversations)?
            && (report.notes.is_empty() || now - report.mined_at < MODEL_RETRY_MS)
        {
            return Ok(report);
        }
        let options = self.engine.conversation_settings.mining();
        let mut model = ThroughAi { engine: self.engine, sender: None };
        let report =
            service::mine(&self.engine.conversations, &options, &Default::default(), &mut model, now, &mut |_, _| {})?;
        self.tell_flows(&report, now);
        Ok(report)
    }

    /// Sends a mining's topic events through intake, like any event: durable, deduplicated by message id (a
    /// mining that finds the same counts sends nothing new). A failure is logged; the report stands.
    fn tell_flows(&self, report: &Report, now: i64) {
        let events: Vec<NewEvent> =
            tutti_conversations::events::topic_events(report, &self.engine.conversation_settings)
                .into_iter()
                .filter_map(|body| {
                    let event =
                        tutti_core::Event::from_json(body, None, &tutti_core::BatchDefaults::default(), now, || {
                            self.engine.new_message_id()
                        });
                    match event {
                        Ok(event) => Some(NewEvent::of(event, true)),
                        Err(e) => {
                            tracing::error!(error = %e, "a topic event could not be made; flows do not hear of it");
                            None
                        }
                    }
                })
                .collect();
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.engine.intake.append_blocking(events) {
            tracing::error!(error = %e, "topic events were not stored; flows do not hear of this mining");
        }
    }
}

/// The miner's model: the `ai` connector's `embed` and `label` (which route, fall back, cost and audit like every
/// model call), called from the mining's thread through a [`BlockingSender`], made at the first call.
struct ThroughAi<'e> {
    engine: &'e Engine,
    sender: Option<BlockingSender>,
}

impl ThroughAi<'_> {
    /// The `ai` connector's answer to `operation`, `Ok(None)` when it answered locally with nothing routed (or
    /// there is no connector to ask); `Err` with why when the routed provider failed.
    fn call(&mut self, operation: &'static str, payload: Value) -> Result<Option<Value>, String> {
        let Some(ai) = self.engine.checks.get("ai").map(|b| b.sender.clone()) else { return Ok(None) };
        if self.sender.is_none() {
            self.sender = BlockingSender::new();
        }
        let Some(blocking) = &self.sender else { return Err("no runtime to ask the model on".into()) };
        let action = tutti_connectors::Action {
            key: operation,
            profile: 0,
            flow: "",
            step: "",
            operation,
            category: "transactional",
            channel: "ai",
            payload: &payload,
            now: self.engine.clock.now_ms(),
            tracking: false,
        };
        let answer = match blocking.send(&*ai, action, None) {
            Some(answer) => answer.map_err(|e| e.message().to_owned())?,
            None => return Err("the call to the model failed".into()),
        };
        if answer["method"] != "local" {
            return Ok(Some(answer));
        }
        match answer["why"].as_str() {
            Some(why) => Err(why.to_owned()),
            None => Ok(None),
        }
    }
}

impl Model for ThroughAi<'_> {
    fn embed(&mut self, texts: &[String]) -> Result<Option<Embedded>, String> {
        let Some(answer) = self.call("embed", json!({"texts": texts}))? else { return Ok(None) };
        let (count, dimensions) = (answer["count"].as_u64().unwrap_or(0), answer["dimensions"].as_u64().unwrap_or(0));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(answer["vectors"].as_str().unwrap_or_default())
            .map_err(|e| format!("the vectors are not base64: {e}"))?;
        if count as usize != texts.len() || dimensions == 0 || bytes.len() as u64 != count * dimensions * 4 {
            return Err(format!("{count} vectors of {dimensions} numbers came for {} texts", texts.len()));
        }
        let numbers: Vec<f32> =
            bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().expect("chunks of four"))).collect();
        let vectors = numbers.chunks_exact(dimensions as usize).map(<[f32]>::to_vec).collect();
        let method = answer["method"].as_str().unwrap_or("model").to_owned();
        Ok(Some(Embedded { vectors, method }))
    }

    fn label(&mut self, topics: &[ToLabel]) -> Result<Option<Labels>, String> {
        let Some(answer) = self.call("label", json!({"topics": topics}))? else { return Ok(None) };
        let names = answer["labels"]
            .as_array()
            .ok_or("the model answered no labels")?
            .iter()
            .filter_map(|l| {
                Some((
                    l["id"].as_str()?.to_owned(),
                    l["label"].as_str()?.to_owned(),
                    l["label_en"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let method = answer["method"].as_str().unwrap_or("model").to_owned();
        Ok(Some(Labels { names, method }))
    }
}
