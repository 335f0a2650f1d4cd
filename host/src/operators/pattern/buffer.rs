//! Events waiting for the watermark, in event-time order (arrival order on ties). Events
//! that come in order (the common case) queue at the back of a list; only those that come
//! out of order go through a tree. Either way the events stay where they were put, so
//! keeping the order moves a few bytes per event rather than whole events.

use std::collections::{BTreeMap, VecDeque};

use crate::event::Event;

/// Held events, each with the key (its index) it belongs to.
#[derive(Default)]
pub struct EventBuffer {
    /// In order already: (time, arrival, slot), oldest first.
    in_order: VecDeque<(i64, u64, u32)>,
    /// Those that came before something held already.
    out_of_order: BTreeMap<(i64, u64), u32>,
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
        let in_order = self
            .in_order
            .back()
            .is_none_or(|&(t, a, _)| (t, a) <= (time, arrival));
        if in_order {
            self.in_order.push_back((time, arrival, slot));
        } else {
            self.out_of_order.insert((time, arrival), slot);
        }
    }

    /// Which of the two holds the next event: `true` for the list.
    fn next_in_list(&self) -> Option<bool> {
        match (self.in_order.front(), self.out_of_order.first_key_value()) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(&(t, a, _)), Some((&key, _))) => Some((t, a) < key),
        }
    }

    /// The time and key of the next event.
    pub fn first(&self) -> Option<(i64, usize)> {
        let (time, slot) = if self.next_in_list()? {
            let &(time, _, slot) = self.in_order.front()?;
            (time, slot)
        } else {
            let (&(time, _), &slot) = self.out_of_order.first_key_value()?;
            (time, slot)
        };
        let (owner, _) = self.slots[slot as usize].as_ref()?;
        Some((time, *owner))
    }

    /// Takes the next event, with its key.
    pub fn pop_first(&mut self) -> Option<(usize, Event)> {
        let slot = if self.next_in_list()? {
            self.in_order.pop_front()?.2
        } else {
            self.out_of_order.pop_first()?.1
        };
        self.free.push(slot);
        self.slots[slot as usize].take()
    }

    /// Every held event in order: (time, arrival, key, event).
    pub fn iter(&self) -> impl Iterator<Item = (i64, u64, usize, &Event)> {
        let mut all: Vec<(i64, u64, u32)> = self
            .in_order
            .iter()
            .copied()
            .chain(self.out_of_order.iter().map(|(&(t, a), &s)| (t, a, s)))
            .collect();
        all.sort_unstable();
        all.into_iter().filter_map(|(time, arrival, slot)| {
            let (owner, event) = self.slots[slot as usize].as_ref()?;
            Some((time, arrival, *owner, event))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_in_time_then_arrival_order_however_they_came_in() {
        let mut buffer = EventBuffer::default();
        let arrivals = [(5, 0), (7, 1), (6, 2), (7, 3), (3, 4), (9, 5), (7, 6)];
        for (owner, &(time, arrival)) in arrivals.iter().enumerate() {
            buffer.insert(time, arrival, owner, Event::new(Vec::new(), time));
        }
        let listed: Vec<usize> = buffer.iter().map(|(_, _, owner, _)| owner).collect();
        let mut taken = Vec::new();
        while let Some((owner, _)) = buffer.pop_first() {
            taken.push(owner);
        }
        assert_eq!(taken, [4, 0, 2, 1, 3, 6, 5]);
        assert_eq!(listed, taken);
    }
}
