//! Built-in stages: a wasm handler, a condition filter and a router. Each takes a batch of
//! events and sorts them into its output ports and the dead-letter list.

mod breaker;
mod filter;
mod handler;
pub mod pattern;
pub mod replay;
mod route;
pub mod window;

pub use breaker::{Admission, Breaker, Transition};
pub use filter::FilterOperator;
pub use handler::HandlerOperator;
pub use route::RouteOperator;
pub use window::WindowOperator;

use crate::delivery::DeadLetterReason;
use crate::event::Event;

/// What a stage made of one batch.
#[derive(Debug, Default)]
pub struct Processed {
    /// Events per output port (a route has one per route; other stages one).
    pub ports: Vec<Vec<Event>>,
    /// Events that failed, with dead-letter headers already added, and why.
    pub dead: Vec<(DeadLetterReason, Event)>,
    /// Events dropped on purpose (filtered out).
    pub dropped: u64,
}

impl Processed {
    /// Empties it for the next batch, keeping `ports` output ports.
    pub fn reset(&mut self, ports: usize) {
        self.ports.resize_with(ports, Vec::new);
        self.ports.iter_mut().for_each(Vec::clear);
        self.dead.clear();
        self.dropped = 0;
    }
}

/// A stage's logic. One instance per worker; it may keep state between batches.
pub trait Operator: Send + 'static {
    /// Names of the output ports, in port order (`[""]` for a single unnamed output).
    fn ports(&self) -> Vec<String>;

    /// Whether `process` may block for long (a plugin call up to its deadline), so the
    /// runtime should move other tasks off this thread first.
    fn blocking(&self) -> bool {
        false
    }

    /// Sorts `events` into `out` (already reset).
    fn process(&mut self, events: Vec<Event>, out: &mut Processed);

    /// The stage's state, when it keeps events folded in between batches.
    fn stateful(&mut self) -> Option<&mut dyn Stateful> {
        None
    }
}

/// A stage that holds events in state (windows): it is ticked for timers, checkpointed,
/// and told when its input has ended for good. The acknowledgements of what it folded in
/// are held until a checkpoint holding them is written.
pub trait Stateful {
    /// Fires what is due by the clock (idle watermark, early firings).
    fn tick(&mut self, out: &mut Processed);

    /// The input has ended for good (not a shutdown): emits every result still held.
    fn end_of_input(&mut self, out: &mut Processed);

    /// Completes what waits to be folded in (failures go to `out`), before a snapshot.
    fn flush(&mut self, out: &mut Processed);

    /// The whole state, with the source positions it reflects.
    fn snapshot(&mut self) -> Vec<u8>;

    /// How often [`tick`](Self::tick) is wanted.
    fn tick_every(&self) -> std::time::Duration;
}
