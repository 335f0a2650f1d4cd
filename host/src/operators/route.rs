//! `type = "route"`: sends each event to the first route whose condition holds, or to
//! `unmatched`.

use super::{Operator, Processed};
use crate::config::UNMATCHED_ROUTE;
use crate::event::Event;
use crate::expr::Condition;

/// Routes events by conditions tried in order.
pub struct RouteOperator {
    routes: Vec<(String, Condition)>,
}

impl RouteOperator {
    /// A router over `routes`, in the order given.
    pub fn new(routes: Vec<(String, Condition)>) -> Self {
        Self { routes }
    }
}

impl Operator for RouteOperator {
    fn ports(&self) -> Vec<String> {
        self.routes
            .iter()
            .map(|(name, _)| name.clone())
            .chain([UNMATCHED_ROUTE.to_owned()])
            .collect()
    }

    fn process(&mut self, events: Vec<Event>, out: &mut Processed) {
        for event in events {
            let port = self
                .routes
                .iter()
                .position(|(_, c)| c.holds(&event.payload))
                .unwrap_or(self.routes.len());
            out.ports[port].push(event);
        }
    }
}
