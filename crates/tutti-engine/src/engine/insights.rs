//! Creative intelligence as the API sees it: the creatives store and the local tagger.

use std::sync::Arc;

use crate::Engine;

impl Engine {
    /// Creatives and their performance (`creatives.db`).
    pub fn creatives(&self) -> Arc<dyn tutti_store::CreativeStore> {
        self.creatives.clone()
    }

    /// The local creative tagger, trained on first use (a few milliseconds).
    pub fn tagger(&self) -> &tutti_ai::LocalTagger {
        self.tagger.get_or_init(tutti_ai::LocalTagger::new_default)
    }
}
