//! Readiness problems components report while they run (a broker that cannot be reached),
//! for `/readyz` and the pipeline view. A problem is logged when it starts and when it ends,
//! not on every retry.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Shared set of current problems, by component name.
#[derive(Clone, Debug, Default)]
pub struct Health {
    problems: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Health {
    /// Records that `component` cannot do its work, and why.
    pub fn problem(&self, component: &str, reason: &str) {
        let mut problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        let previous = problems.insert(component.to_owned(), reason.to_owned());
        if previous.is_none() {
            tracing::warn!(component, reason, "not ready");
        }
    }

    /// Records that `component` works again.
    pub fn recovered(&self, component: &str) {
        let mut problems = self.problems.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(reason) = problems.remove(component) {
            tracing::info!(component, was = %reason, "ready again");
        }
    }

    /// The current problems, by component.
    pub fn problems(&self) -> BTreeMap<String, String> {
        self.problems
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
