//! Conversations as the API sees them: the store, and the last mining, made again when the conversations or
//! people's topic edits changed since.

use std::sync::Arc;

use tutti_conversations::service::{self, ImportSummary, Report};
use tutti_conversations::store::{ConversationStore, StoreError};

use crate::Engine;

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
    /// one, kept. One mining runs at a time; a request that comes during one waits for it and reads its result.
    pub fn report(&self) -> Result<Report, StoreError> {
        let _one = self.engine.mining.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(report) = service::kept_report(&self.engine.conversations)? {
            return Ok(report);
        }
        let now = self.engine.clock.now_ms();
        service::mine(&self.engine.conversations, &Default::default(), &Default::default(), now, &mut |_, _| {})
    }
}
