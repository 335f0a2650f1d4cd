//! Events waiting for the watermark, in event-time order (arrival order on ties). The order
//! lives in a tree of small entries while the events stay where they were put, so keeping
//! the order moves a few bytes per event rather than whole events.

use std::collections::BTreeMap;

use crate::event::Event;

/// Held events, each with the key (its index) it belongs to.
#[derive(Default)]
pub struct EventBuffer {
    order: BTreeMap<(i64, u64), u32>,
    slots: Vec<Option<(usize, Event)>>,
    free: Vec<u32>,
}

impl EventBuffer {
    /// Holds `event` of key `owner`, at event time `time`, the `arrival`-th to come.
    pub fn insert(&mut self, time: i64, arrival: u64, owner: usize, event: Event) {
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some((owner, event));
                slot
            }
            None => {
                self.slots.push(Some((owner, event)));
                (self.slots.len() - 1) as u32
            }
        };
        self.order.insert((time, arrival), slot);
    }

    /// The time and key of the next event.
    pub fn first(&self) -> Option<(i64, usize)> {
        let (&(time, _), &slot) = self.order.first_key_value()?;
        let (owner, _) = self.slots[slot as usize].as_ref()?;
        Some((time, *owner))
    }

    /// Takes the next event, with its key.
    pub fn pop_first(&mut self) -> Option<(usize, Event)> {
        let (_, slot) = self.order.pop_first()?;
        self.free.push(slot);
        self.slots[slot as usize].take()
    }

    /// Every held event in order: (time, arrival, key, event).
    pub fn iter(&self) -> impl Iterator<Item = (i64, u64, usize, &Event)> {
        self.order.iter().filter_map(|(&(time, arrival), &slot)| {
            let (owner, event) = self.slots[slot as usize].as_ref()?;
            Some((time, arrival, *owner, event))
        })
    }
}
