//! The partitions a Kafka source owns: records read but not yet sent on, and per partition
//! an acknowledgement tracker whose position is the next offset to commit (the offset after
//! the highest contiguous handled record).

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use rdkafka::{Offset, TopicPartitionList};

use crate::delivery::AckTracker;
use crate::event::Event;

/// A topic and partition.
pub type PartitionId = (String, i32);

/// Events of one partition ready to go into the pipeline.
pub struct ReadyBatch {
    /// Where they were read.
    pub partition: PartitionId,
    /// Decoded events, in offset order.
    pub events: Vec<Event>,
    /// Records that could not be decoded, with the reason.
    pub malformed: Vec<(Event, String)>,
    /// The offset after the last record of the batch.
    pub next_offset: i64,
}

/// One owned partition.
pub struct Partition {
    /// Batches handed out, and how far they are handled.
    pub tracker: AckTracker<i64>,
    events: Vec<Event>,
    malformed: Vec<(Event, String)>,
    next_offset: i64,
    first_at: Option<Instant>,
    /// The offset last committed.
    pub committed: Option<i64>,
    /// Records before this time are skipped (a new group starting at a timestamp).
    pub skip_before: Option<i64>,
}

impl Partition {
    fn new(skip_before: Option<i64>) -> Self {
        Self {
            tracker: AckTracker::new(),
            events: Vec::new(),
            malformed: Vec::new(),
            next_offset: -1,
            first_at: None,
            committed: None,
            skip_before,
        }
    }

    fn take(&mut self, id: &PartitionId) -> Option<ReadyBatch> {
        if self.events.is_empty() && self.malformed.is_empty() {
            return None;
        }
        self.first_at = None;
        // The next batch gets the room this one grew to at once, rather than growing again.
        let capacity = self.events.capacity();
        Some(ReadyBatch {
            partition: id.clone(),
            events: std::mem::replace(&mut self.events, Vec::with_capacity(capacity)),
            malformed: std::mem::take(&mut self.malformed),
            next_offset: self.next_offset,
        })
    }

    /// The offset to commit, if it moved since the last commit.
    pub fn offset_to_commit(&mut self) -> Option<i64> {
        self.tracker.poll();
        let next = *self.tracker.acknowledged()?;
        (self.committed != Some(next)).then_some(next)
    }
}

/// Every partition a source owns now, and the batches waiting to be sent.
#[derive(Default)]
pub struct PartitionTable {
    /// Owned partitions.
    pub partitions: BTreeMap<PartitionId, Partition>,
    /// Batches made and not yet sent, oldest first.
    pub ready: VecDeque<ReadyBatch>,
}

impl PartitionTable {
    /// Takes ownership of newly assigned partitions.
    pub fn assign(&mut self, ids: impl IntoIterator<Item = PartitionId>, skip_before: Option<i64>) {
        for id in ids {
            self.partitions
                .entry(id)
                .or_insert_with(|| Partition::new(skip_before));
        }
    }

    /// Lets partitions go: what was read of them and not sent is dropped (the next owner
    /// reads it again from the committed offset). Returns them, to drain and commit.
    pub fn revoke(&mut self, ids: &[PartitionId]) -> Vec<(PartitionId, Partition)> {
        self.ready.retain(|b| !ids.contains(&b.partition));
        ids.iter()
            .filter_map(|id| self.partitions.remove_entry(id))
            .collect()
    }

    /// Adds one record to its partition's open batch; full batches move to `ready`. Records
    /// of partitions not owned (a revoke raced the fetch) are ignored.
    pub fn push(
        &mut self,
        (topic, number): (&str, i32),
        offset: i64,
        record: Result<Event, (Event, String)>,
        batch_size: usize,
    ) {
        // A linear search: a source owns tens of partitions, and the key needs no allocation.
        let Some((id, partition)) = self
            .partitions
            .iter_mut()
            .find(|((t, p), _)| *p == number && t == topic)
        else {
            return;
        };
        partition.next_offset = offset + 1;
        partition.first_at.get_or_insert_with(Instant::now);
        let time = match &record {
            Ok(event) | Err((event, _)) => event.time,
        };
        if partition.skip_before.is_some_and(|t| time < t) {
            // Skipped records only move the batch's end offset, committed with the first
            // batch after them.
            return;
        }
        partition.skip_before = None;
        match record {
            Ok(event) => partition.events.push(event),
            Err(bad) => partition.malformed.push(bad),
        }
        if partition.events.len() + partition.malformed.len() >= batch_size
            && let Some(batch) = partition.take(id)
        {
            self.ready.push_back(batch);
        }
    }

    /// Moves every open batch older than `linger` (all, when `linger` is `None`) to `ready`.
    pub fn flush_lingering(&mut self, linger: Option<std::time::Duration>) {
        for (id, partition) in &mut self.partitions {
            let due = match (linger, partition.first_at) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(linger), Some(first)) => first.elapsed() >= linger,
            };
            if due && let Some(batch) = partition.take(id) {
                self.ready.push_back(batch);
            }
        }
    }

    /// Batches sent into the pipeline and not yet handled, over every partition.
    pub fn in_flight(&mut self) -> usize {
        self.partitions
            .values_mut()
            .map(|p| {
                p.tracker.poll();
                p.tracker.in_flight()
            })
            .sum()
    }

    /// The offsets that moved since the last commit, as a list to commit.
    pub fn commit_list(&mut self) -> TopicPartitionList {
        commit_list(self.partitions.iter_mut())
    }

    /// Records `list` as committed.
    pub fn committed(&mut self, list: &TopicPartitionList) {
        for element in list.elements() {
            let id = (element.topic().to_owned(), element.partition());
            if let (Some(partition), Offset::Offset(offset)) =
                (self.partitions.get_mut(&id), element.offset())
            {
                partition.committed = Some(offset);
            }
        }
    }

    /// The owned partitions, as a list.
    pub fn owned(&self) -> TopicPartitionList {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in self.partitions.keys() {
            list.add_partition(topic, *partition);
        }
        list
    }
}

/// The offsets of `partitions` that moved since their last commit.
pub fn commit_list<'a>(
    partitions: impl Iterator<Item = (&'a PartitionId, &'a mut Partition)>,
) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for ((topic, number), partition) in partitions {
        if let Some(offset) = partition.offset_to_commit() {
            // Adding a partition to a fresh list cannot fail for a valid offset.
            let _ = list.add_partition_offset(topic, *number, Offset::Offset(offset));
        }
    }
    list
}

/// The partitions in `list`.
pub fn ids(list: &TopicPartitionList) -> Vec<PartitionId> {
    list.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::result_large_err)] // the shape `PartitionTable::push` takes
    fn event(time: i64) -> Result<Event, (Event, String)> {
        Ok(Event::new(&b"\x80"[..], time))
    }

    #[test]
    fn only_contiguous_handled_offsets_are_committed_per_partition() {
        let mut table = PartitionTable::default();
        table.assign([("t".to_owned(), 0), ("t".to_owned(), 1)], None);
        for offset in 0..4 {
            table.push(("t", 0), offset, event(1), 2);
        }
        table.push(("t", 1), 7, event(1), 2);
        table.push(("t", 9), 0, event(1), 2); // not owned: ignored
        table.flush_lingering(None);
        let batches: Vec<ReadyBatch> = table.ready.drain(..).collect();
        assert_eq!(
            batches
                .iter()
                .map(|b| (b.partition.1, b.next_offset))
                .collect::<Vec<_>>(),
            [(0, 2), (0, 4), (1, 8)]
        );
        let mut tokens: Vec<_> = batches
            .iter()
            .map(|b| {
                let owner = table.partitions.get_mut(&b.partition).unwrap();
                owner.tracker.token(b.next_offset)
            })
            .collect();
        // The second batch of partition 0 and partition 1's batch are handled; the first
        // batch of partition 0 is not: partition 0 commits nothing yet.
        tokens.remove(2).settle();
        tokens.remove(1).settle();
        let list = table.commit_list();
        assert_eq!(list.count(), 1);
        assert_eq!(
            list.find_partition("t", 1).map(|e| e.offset()),
            Some(rdkafka::Offset::Offset(8))
        );
        table.committed(&list);
        tokens.remove(0).settle();
        let list = table.commit_list();
        assert_eq!(
            list.find_partition("t", 0).map(|e| e.offset()),
            Some(rdkafka::Offset::Offset(4))
        );
        assert!(
            list.find_partition("t", 1).is_none(),
            "unchanged since its commit"
        );
    }

    #[test]
    fn a_start_time_skips_older_records_but_carries_their_offsets() {
        let mut table = PartitionTable::default();
        table.assign([("t".to_owned(), 0)], Some(100));
        table.push(("t", 0), 0, event(50), 10);
        table.push(("t", 0), 1, event(150), 10);
        table.push(("t", 0), 2, event(60), 10);
        table.flush_lingering(None);
        let batch = table.ready.pop_front().unwrap();
        assert_eq!(
            batch.events.len(),
            2,
            "only the first record is before the start"
        );
        assert_eq!(batch.next_offset, 3);
    }
}
