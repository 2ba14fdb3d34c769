//! The definitions in force: read by the processor for each batch and by the dispatcher for the policies at the
//! last moment, and swapped whole when the admin API or a start stores new ones.

use std::sync::{Arc, RwLock};

use crate::Definitions;

/// The definitions in force, shared with the admin API that replaces them.
#[derive(Default)]
pub struct FlowDefinitions {
    current: RwLock<Arc<Definitions>>,
}

impl FlowDefinitions {
    pub fn get(&self) -> Arc<Definitions> {
        self.current.read().expect("definitions lock is never poisoned").clone()
    }

    pub fn set(&self, defs: Definitions) {
        *self.current.write().expect("definitions lock is never poisoned") = Arc::new(defs);
    }
}
