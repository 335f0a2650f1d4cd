//! The way back from an event to the source message it came from, for sources whose
//! broker delivers a message again (JetStream): an event a stage fails is handed back, and
//! its message nak'ed, while the message has deliveries left; only after the last one is
//! the event dead-lettered.

use std::sync::Arc;

use tokio::sync::mpsc;

/// A stage's request that a source message be delivered again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedeliveryRequest {
    /// The source batch the message was sent in.
    pub batch: u64,
    /// The message within the source (a stream sequence).
    pub message: u64,
}

struct Inner {
    request: RedeliveryRequest,
    deliveries_left: bool,
    to_source: mpsc::UnboundedSender<RedeliveryRequest>,
}

/// Carried by every event made from a message that can be delivered again; events made
/// from one message share it.
#[derive(Clone)]
pub struct Redelivery(Arc<Inner>);

impl Redelivery {
    /// The handle of `message` of source batch `batch`, delivered `delivered` times of at
    /// most `max_deliver`; requests go to `to_source`.
    pub fn new(
        batch: u64,
        message: u64,
        delivered: i64,
        max_deliver: i64,
        to_source: mpsc::UnboundedSender<RedeliveryRequest>,
    ) -> Self {
        Self(Arc::new(Inner {
            request: RedeliveryRequest { batch, message },
            deliveries_left: delivered < max_deliver,
            to_source,
        }))
    }

    /// Asks for the message to be delivered again. False when it has had its last
    /// delivery (or its source has stopped): then the caller dead-letters the event.
    pub fn request(&self) -> bool {
        self.0.deliveries_left && self.0.to_source.send(self.0.request).is_ok()
    }
}

impl std::fmt::Debug for Redelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redelivery")
            .field("request", &self.0.request)
            .field("deliveries_left", &self.0.deliveries_left)
            .finish()
    }
}

/// Two events share a redelivery handle when they come from the same message.
impl PartialEq for Redelivery {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Redelivery {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_reach_the_source_only_while_deliveries_are_left() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let first = Redelivery::new(3, 17, 1, 2, tx.clone());
        assert!(first.request());
        assert_eq!(
            rx.try_recv().ok(),
            Some(RedeliveryRequest {
                batch: 3,
                message: 17
            })
        );
        let last = Redelivery::new(4, 17, 2, 2, tx);
        assert!(!last.request(), "the second of two deliveries was the last");
        assert!(rx.try_recv().is_err());
        drop(rx);
        assert!(!first.request(), "a stopped source takes no requests");
    }
}
