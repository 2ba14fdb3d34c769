//! Creative intelligence as the API sees it: the creatives store and the local tagger.

use std::sync::Arc;

use crate::Engine;

/// Creative intelligence as the server and the CLI reach it: [`Engine::insights`].
pub struct InsightsHandle<'e> {
    pub(super) engine: &'e Engine,
}

impl Engine {
    /// Creatives, their performance and the tagger.
    pub fn insights(&self) -> InsightsHandle<'_> {
        InsightsHandle { engine: self }
    }
}

impl<'e> InsightsHandle<'e> {
    /// Creatives and their performance (`creatives.db`, or Postgres with `[storage] postgres`).
    pub fn creatives(&self) -> Arc<dyn tutti_store::CreativeStore> {
        self.engine.creatives.clone()
    }

    /// The local creative tagger, trained on first use (`tutti serve` asks for it as soon as the engine is up).
    pub fn tagger(&self) -> &'e tutti_ai::LocalTagger {
        self.engine.tagger.get_or_init(tutti_ai::LocalTagger::new_default)
    }
}
