//! Conversations as the API sees them: the store, and the last mining, made again when the conversations or
//! people's topic edits changed since.

use std::sync::Arc;

use tutti_conversations::service::{self, ImportSummary, Report};
use tutti_conversations::store::{ConversationStore, StoreError};

use crate::{Engine, NewEvent};

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

    /// The last mining when nothing changed since (an import, an erasure or a topic edit clears it), else a new
    /// one, kept, whose topics are then told to flows ([`tutti_conversations::events`]). One mining runs at a
    /// time; a request that comes during one waits for it and reads its result. Blocking.
    pub fn report(&self) -> Result<Report, StoreError> {
        let _one = self.engine.mining.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(report) = service::kept_report(&self.engine.conversations)? {
            return Ok(report);
        }
        let now = self.engine.clock.now_ms();
        let report =
            service::mine(&self.engine.conversations, &Default::default(), &Default::default(), now, &mut |_, _| {})?;
        self.tell_flows(&report, now);
        Ok(report)
    }

    /// Sends a mining's topic events through intake, like any event: durable, deduplicated by message id (a
    /// mining that finds the same counts sends nothing new). A failure is logged; the report stands.
    fn tell_flows(&self, report: &Report, now: i64) {
        let events: Vec<NewEvent> =
            tutti_conversations::events::topic_events(report, &self.engine.conversation_signals)
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
