//! `type = "filter"`: keeps the events a condition holds for.

use super::{Operator, Processed};
use crate::event::Event;
use crate::expr::Condition;

/// Keeps events whose payload satisfies a condition.
pub struct FilterOperator {
    condition: Condition,
}

impl FilterOperator {
    /// A filter on `condition`.
    pub fn new(condition: Condition) -> Self {
        Self { condition }
    }
}

impl Operator for FilterOperator {
    fn ports(&self) -> Vec<String> {
        vec![String::new()]
    }

    fn process(&mut self, mut events: Vec<Event>, out: &mut Processed) {
        let before = events.len();
        events.retain(|e| self.condition.holds(&e.payload));
        out.dropped = (before - events.len()) as u64;
        out.ports[0] = events;
    }
}
