//! The automaton of a declared pattern, one run per key.
//!
//! A partial match is a *branch*: what it waits for next (another event of its step, the
//! first event of a later step, or the end of an absence), and the last event it took.
//! Taken events live in a per-key shared buffer: each node holds one event (its payload
//! shared, not copied) and a link to the node taken before it, so branches that share a
//! prefix share its nodes, and a node lives as long as a branch or match refers to it.
//!
//! Events come in event-time order. Each branch looks at each event once and may take it
//! (spawning the branches that follow from the new node), ignore it, or die, as the
//! contiguity of what it waits for says. Matches found at one moment are reported in the
//! order of their first event, then of their events; the after-match skip strategy then
//! prunes the branches that began too early. `within` bounds a match from its first event:
//! at that deadline a branch times out, or, waiting out an absence, completes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::spec::{Contiguity, Pattern, Positive, SkipStrategy, StepKind};
use crate::expr::{Condition, Scope};

const NONE: u32 = u32::MAX;

/// What became of a (partial) match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The whole pattern matched.
    Matched,
    /// `within` ran out before it could match.
    TimedOut,
    /// Dropped because its key held `max_partial_matches` newer ones.
    Evicted,
}

/// A match or a partial match that ended, with its events in order.
#[derive(Debug, Clone)]
pub struct Found {
    /// What became of it.
    pub outcome: Outcome,
    /// When (event time): its last event, or the deadline it reached.
    pub at: i64,
    /// Its events: (index in [`Pattern::names`] of the step or part that took it, time,
    /// payload), oldest first.
    pub events: Vec<(usize, i64, Bytes)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Node {
    payload: Bytes,
    time: i64,
    seq: u64,
    /// The step that took it.
    step: u16,
    /// Its name's index in `Pattern::names` (the step, or the `all_of` part).
    slot: u16,
    prev: u32,
    refs: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Wait {
    /// Another event of its step.
    Loop,
    /// The first event of this step.
    Begin(u16),
    /// The end of `within`, with no event meeting its `not_between` steps.
    Absent,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Branch {
    wait: Wait,
    last: u32,
    /// The step of `last`, and how many events (or, for `all_of`, which parts) it holds.
    step: u16,
    count: u32,
    parts: u64,
    /// No event seen since `last` yet.
    fresh: bool,
    not_next: u64,
    not_between: u64,
    /// Greedy: the loop of `step` may still take what this branch would begin with.
    guard: bool,
    start_seq: u64,
    start_time: i64,
    /// The events up to `last` were reported as a match.
    done: bool,
}

/// The order of matches found at one moment: time, first event, then every event.
type OrderKey = (i64, u64, Vec<(u64, u16)>);

struct Completion {
    at: i64,
    start_seq: u64,
    node: u32,
    outcome: Outcome,
}

/// The automaton's state for one key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRun {
    nodes: Vec<Node>,
    free: Vec<u32>,
    branches: Vec<Branch>,
    seq: u64,
    /// Branches that began before this event number are pruned (skip strategy).
    floor: u64,
    /// No branch runs out of time before this (`i64::MIN`: not known).
    #[serde(skip, default = "unknown")]
    due: i64,
}

fn unknown() -> i64 {
    i64::MIN
}

/// What the conditions that read only the event itself said of it: each is worked out
/// once per event, however many branches ask.
#[derive(Default)]
struct Memo {
    known: u64,
    met: u64,
}

impl Memo {
    /// Whether `condition`, at `place` in the pattern's memo, holds in `scope`.
    fn holds(&mut self, place: usize, condition: &Condition, scope: &Scope<'_>) -> bool {
        if place >= 64 || condition.reads_others() != 0 {
            return condition.holds_in(scope);
        }
        let bit = 1u64 << place;
        if self.known & bit == 0 {
            self.known |= bit;
            if condition.holds_in(scope) {
                self.met |= bit;
            }
        }
        self.met & bit != 0
    }
}

/// What conditions decided about one event for one branch, worked out before anything
/// changes.
#[derive(Default)]
struct Verdict {
    dies: bool,
    /// Parts (bits) of the step it may take the event as; bit 0 for a plain step.
    takes: u64,
    /// The event meets the awaited step's condition (any part).
    matches: bool,
    guard_off: bool,
}

impl Default for KeyRun {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            free: Vec::new(),
            branches: Vec::new(),
            seq: 0,
            floor: 0,
            due: i64::MAX,
        }
    }
}

impl KeyRun {
    /// Whether it holds nothing: no partial match.
    pub fn is_empty(&self) -> bool {
        self.branches.is_empty()
    }

    /// Forgets everything, keeping its allocations.
    pub fn clear(&mut self) {
        self.nodes.clear();
        self.free.clear();
        self.branches.clear();
        self.seq = 0;
        self.floor = 0;
        self.due = i64::MAX;
    }

    /// Partial matches it holds.
    pub fn partial_matches(&self) -> usize {
        self.branches.len()
    }

    /// Events held in its shared buffer.
    pub fn buffered_events(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// The next time a partial match times out (or an absence completes).
    pub fn next_deadline(&self, pattern: &Pattern) -> Option<i64> {
        let within = pattern.within?;
        if self.due != i64::MIN {
            // A bound no later than the first deadline: at worst a call comes early.
            return (self.due != i64::MAX).then_some(self.due);
        }
        self.branches
            .iter()
            .map(|b| b.start_time.saturating_add(within))
            .min()
    }

    /// Event time reached `now`: partial matches whose `within` ended by then time out,
    /// and absences waited out complete.
    pub fn advance(&mut self, pattern: &Pattern, now: i64, out: &mut Vec<Found>) {
        let Some(within) = pattern.within else {
            return;
        };
        if now < self.due {
            return;
        }
        let first = self
            .branches
            .iter()
            .map(|b| b.start_time.saturating_add(within))
            .min()
            .unwrap_or(i64::MAX);
        if first > now {
            self.due = first;
            return;
        }
        let mut expired = Vec::new();
        let mut due = i64::MAX;
        self.branches.retain(|b| {
            let deadline = b.start_time.saturating_add(within);
            if deadline <= now {
                expired.push(*b);
                return false;
            }
            due = due.min(deadline);
            true
        });
        self.due = due;
        // An absence waited out is a match: the same events waiting for more are not also
        // a timed-out partial match. One report per partial match, however many branches
        // it has: branches of one partial match end at the same node.
        expired.sort_by_key(|b| (b.last, b.wait != Wait::Absent));
        let mut ended = Vec::new();
        let mut reported = NONE;
        for b in expired {
            let outcome = match b.wait {
                Wait::Absent => Some(Outcome::Matched),
                _ if !b.done && reported != b.last => Some(Outcome::TimedOut),
                _ => None,
            };
            if let Some(outcome) = outcome {
                reported = b.last;
                self.nodes[b.last as usize].refs += 1;
                ended.push(Completion {
                    at: b.start_time.saturating_add(within),
                    start_seq: b.start_seq,
                    node: b.last,
                    outcome,
                });
            }
            self.release(b.last);
        }
        self.report(pattern, ended, out);
    }

    /// Applies one event (at or after every event before, in event time).
    pub fn on_event(
        &mut self,
        pattern: &Pattern,
        payload: &Bytes,
        time: i64,
        out: &mut Vec<Found>,
    ) {
        self.advance(pattern, time, out);
        let seq = self.seq;
        self.seq += 1;
        let mut completions = Vec::new();
        let mut memo = Memo::default();
        // Branches are judged in place: the survivors move to the front, and what they
        // spawn goes after them, in the same list (one list per key keeps its memory warm).
        let mut branches = std::mem::take(&mut self.branches);
        let judged = branches.len();
        let mut kept = 0;
        for i in 0..judged {
            let mut b = branches[i];
            let verdict = if pattern.reads_others {
                let mut others = Vec::new();
                let scope = self.scope(pattern, b.last, &mut others);
                judge(pattern, &b, payload, &scope, &mut memo)
            } else {
                judge(
                    pattern,
                    &b,
                    payload,
                    &Scope {
                        payload,
                        others: &[],
                    },
                    &mut memo,
                )
            };
            let (step, parts) = match b.wait {
                Wait::Loop => (b.step as usize, verdict.takes),
                Wait::Begin(k) => (k as usize, verdict.takes),
                Wait::Absent => (0, 0),
            };
            let mut bits = parts;
            while bits != 0 {
                let part = bits.trailing_zeros() as usize;
                bits &= bits - 1;
                self.take(
                    pattern,
                    Some(&b),
                    step,
                    part,
                    (payload, time, seq),
                    &mut branches,
                    &mut completions,
                );
            }
            if verdict.dies {
                self.release(b.last);
            } else {
                b.fresh = false;
                b.not_next = 0;
                if verdict.guard_off {
                    b.guard = false;
                }
                branches[kept] = b;
                kept += 1;
            }
        }
        branches.drain(kept..judged);
        let mut next = branches;
        let scope = Scope {
            payload,
            others: &[],
        };
        for follow in &pattern.starts {
            let StepKind::Take(step) = &pattern.steps[follow.step].kind else {
                continue;
            };
            let place = pattern.memo[follow.step];
            for (part, condition) in step.parts.iter().enumerate() {
                if memo.holds(place + part, condition, &scope) {
                    self.take(
                        pattern,
                        None,
                        follow.step,
                        part,
                        (payload, time, seq),
                        &mut next,
                        &mut completions,
                    );
                }
            }
        }
        self.branches = next;
        self.report(pattern, completions, out);
        self.bound(pattern, out);
    }

    /// The names an event's conditions may read, for a branch whose last event is `last`.
    fn scope<'s>(
        &'s self,
        pattern: &Pattern,
        last: u32,
        others: &'s mut Vec<&'s [u8]>,
    ) -> Scope<'s> {
        others.clear();
        others.resize(pattern.names.len(), &[]);
        let mut at = last;
        if at != NONE {
            others[pattern.prev_slot()] = &self.nodes[at as usize].payload;
        }
        while at != NONE {
            let node = &self.nodes[at as usize];
            for slot in [node.slot as usize, node.step as usize] {
                if others[slot].is_empty() {
                    others[slot] = &node.payload;
                }
            }
            at = node.prev;
        }
        Scope {
            payload: &[],
            others,
        }
    }

    /// `from` (or a new match) takes the event as `part` of `step`, and the branches that
    /// follow from it are spawned.
    #[allow(clippy::too_many_arguments)]
    fn take(
        &mut self,
        pattern: &Pattern,
        from: Option<&Branch>,
        step: usize,
        part: usize,
        (payload, time, seq): (&Bytes, i64, u64),
        next: &mut Vec<Branch>,
        completions: &mut Vec<Completion>,
    ) {
        let StepKind::Take(positive) = &pattern.steps[step].kind else {
            return;
        };
        let prev = from.map_or(NONE, |b| b.last);
        if prev != NONE {
            self.nodes[prev as usize].refs += 1;
        }
        let slot = if positive.is_group() {
            pattern.part_slots[step][part]
        } else {
            step
        };
        let node = self.alloc(Node {
            payload: payload.clone(),
            time,
            seq,
            step: step as u16,
            slot: slot as u16,
            prev,
            refs: 0,
        });
        let continuing = from.filter(|b| b.wait == Wait::Loop && b.step as usize == step);
        let count = continuing.map_or(1, |b| b.count + 1);
        let parts = continuing.map_or(0, |b| b.parts) | (1 << part);
        let (start_seq, start_time) = from.map_or((seq, time), |b| (b.start_seq, b.start_time));
        if let Some(within) = pattern.within {
            self.due = self.due.min(start_time.saturating_add(within));
        }
        let spawn = |wait: Wait| Branch {
            wait,
            last: node,
            step: step as u16,
            count,
            parts,
            fresh: true,
            not_next: 0,
            not_between: 0,
            guard: false,
            start_seq,
            start_time,
            done: false,
        };
        let first = next.len();
        let whole = if positive.is_group() {
            parts.count_ones() as usize == positive.parts.len()
        } else {
            true
        };
        if (positive.is_group() && !whole) || (!positive.is_group() && count < positive.max) {
            next.push(spawn(Wait::Loop));
        }
        let mut complete = false;
        if whole && count >= positive.min {
            for follow in &pattern.follows[step] {
                let mut b = spawn(Wait::Begin(follow.step as u16));
                b.not_next = follow.not_next;
                b.not_between = follow.not_between;
                b.guard = positive.greedy && count < positive.max;
                next.push(b);
            }
            match pattern.ends[step] {
                Some(0) => complete = true,
                Some(absent) => {
                    let mut b = spawn(Wait::Absent);
                    b.not_between = absent;
                    next.push(b);
                }
                None => {}
            }
        }
        if complete {
            for b in &mut next[first..] {
                b.done = true;
            }
            self.nodes[node as usize].refs += 1;
            completions.push(Completion {
                at: time,
                start_seq,
                node,
                outcome: Outcome::Matched,
            });
        }
        self.nodes[node as usize].refs += (next.len() - first) as u32;
        if self.nodes[node as usize].refs == 0 {
            self.nodes[node as usize].refs = 1;
            self.release(node);
        }
    }

    fn alloc(&mut self, node: Node) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    /// Drops one reference to `node`, freeing it and what only it held.
    fn release(&mut self, mut node: u32) {
        while node != NONE {
            let n = &mut self.nodes[node as usize];
            n.refs -= 1;
            if n.refs > 0 {
                return;
            }
            let prev = n.prev;
            n.payload = Bytes::new();
            self.free.push(node);
            node = prev;
        }
        if self.free.len() == self.nodes.len() {
            self.nodes.clear();
            self.free.clear();
        }
    }

    /// The events of the match ending at `node`, oldest first.
    fn events(&self, pattern: &Pattern, mut node: u32) -> Vec<(usize, i64, Bytes)> {
        let mut events = Vec::new();
        while node != NONE {
            let n = &self.nodes[node as usize];
            events.push((n.slot as usize, n.time, n.payload.clone()));
            node = n.prev;
        }
        events.reverse();
        debug_assert!(
            events
                .iter()
                .all(|(slot, _, _)| *slot < pattern.names.len())
        );
        events
    }

    /// The event numbers and names of the match ending at `node`: the order of matches
    /// found at one moment.
    fn seqs(&self, mut node: u32) -> Vec<(u64, u16)> {
        let mut seqs = Vec::new();
        while node != NONE {
            let n = &self.nodes[node as usize];
            seqs.push((n.seq, n.slot));
            node = n.prev;
        }
        seqs.reverse();
        seqs
    }

    /// Reports what ended, in order, pruning by the skip strategy after each match.
    fn report(&mut self, pattern: &Pattern, mut ended: Vec<Completion>, out: &mut Vec<Found>) {
        if ended.is_empty() {
            return;
        }
        if ended.len() > 1 {
            let mut keyed: Vec<(OrderKey, Completion)> = ended
                .into_iter()
                .map(|c| ((c.at, c.start_seq, self.seqs(c.node)), c))
                .collect();
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            ended = keyed.into_iter().map(|k| k.1).collect();
        }
        let floor = self.floor;
        for c in ended {
            if c.outcome != Outcome::Evicted && c.start_seq < self.floor {
                self.release(c.node);
                continue;
            }
            out.push(Found {
                outcome: c.outcome,
                at: c.at,
                events: self.events(pattern, c.node),
            });
            if c.outcome == Outcome::Matched {
                self.floor = self
                    .floor
                    .max(self.skip_floor(pattern.skip, c.start_seq, c.node));
            }
            self.release(c.node);
        }
        if self.floor > floor {
            let floor = self.floor;
            let mut branches = std::mem::take(&mut self.branches);
            branches.retain(|b| {
                if b.start_seq < floor {
                    self.release(b.last);
                }
                b.start_seq >= floor
            });
            self.branches = branches;
        }
    }

    /// The first event number a match may start at after this one.
    fn skip_floor(&self, skip: SkipStrategy, start_seq: u64, node: u32) -> u64 {
        let step_seqs = |step: usize| {
            let mut seqs = Vec::new();
            let mut at = node;
            while at != NONE {
                let n = &self.nodes[at as usize];
                if n.step as usize == step {
                    seqs.push(n.seq);
                }
                at = n.prev;
            }
            seqs
        };
        match skip {
            SkipStrategy::NoSkip => 0,
            SkipStrategy::ToNext => start_seq + 1,
            SkipStrategy::PastLastEvent => self.nodes[node as usize].seq + 1,
            SkipStrategy::ToFirst(step) => step_seqs(step).last().copied().unwrap_or(0),
            SkipStrategy::ToLast(step) => step_seqs(step).first().copied().unwrap_or(0),
        }
    }

    /// Keeps at most `max_partial_matches`, dropping the oldest.
    fn bound(&mut self, pattern: &Pattern, out: &mut Vec<Found>) {
        let excess = self
            .branches
            .len()
            .saturating_sub(pattern.max_partial_matches);
        if excess == 0 {
            return;
        }
        // Whole partial matches go, oldest first: every branch that waits on the same
        // events, reported once.
        self.branches.sort_by_key(|b| (b.start_seq, b.last));
        let mut cut = excess;
        while cut < self.branches.len() && self.branches[cut].last == self.branches[cut - 1].last {
            cut += 1;
        }
        let dropped: Vec<Branch> = self.branches.drain(..cut).collect();
        let mut reported = std::collections::HashSet::new();
        for b in dropped {
            if !b.done && reported.insert(b.last) {
                out.push(Found {
                    outcome: Outcome::Evicted,
                    at: self.nodes[b.last as usize].time,
                    events: self.events(pattern, b.last),
                });
            }
            self.release(b.last);
        }
    }
}

/// Any of the steps in `bits` (negations) holds.
fn any_holds(pattern: &Pattern, mut bits: u64, scope: &Scope<'_>, memo: &mut Memo) -> bool {
    while bits != 0 {
        let step = bits.trailing_zeros() as usize;
        bits &= bits - 1;
        if let StepKind::Not { condition, .. } = &pattern.steps[step].kind
            && memo.holds(pattern.memo[step], condition, scope)
        {
            return true;
        }
    }
    false
}

/// Which parts of step `k` the event meets (bits), leaving out `taken`.
fn parts_met(
    pattern: &Pattern,
    k: usize,
    step: &Positive,
    taken: u64,
    scope: &Scope<'_>,
    memo: &mut Memo,
) -> u64 {
    let mut met = 0;
    for (i, condition) in step.parts.iter().enumerate() {
        if taken & (1 << i) == 0 && memo.holds(pattern.memo[k] + i, condition, scope) {
            met |= 1 << i;
        }
    }
    met
}

/// Whether the event ends looping step `k` by its `until`.
fn until_holds(
    pattern: &Pattern,
    k: usize,
    step: &Positive,
    scope: &Scope<'_>,
    memo: &mut Memo,
) -> bool {
    step.until
        .as_ref()
        .is_some_and(|u| memo.holds(pattern.memo[k] + step.parts.len(), u, scope))
}

/// What branch `b` does with the event `payload`.
fn judge(
    pattern: &Pattern,
    b: &Branch,
    payload: &Bytes,
    scope: &Scope<'_>,
    memo: &mut Memo,
) -> Verdict {
    let scope = Scope {
        payload,
        others: scope.others,
    };
    let mut verdict = Verdict::default();
    if b.fresh && b.not_next != 0 && any_holds(pattern, b.not_next, &scope, memo) {
        verdict.dies = true;
        return verdict;
    }
    let own_step = b.step as usize;
    let own = match &pattern.steps[own_step].kind {
        StepKind::Take(p) => Some(p),
        StepKind::Not { .. } => None,
    };
    match b.wait {
        Wait::Loop => {
            let Some(step) = own else {
                verdict.dies = true;
                return verdict;
            };
            if step.is_group() {
                verdict.takes = parts_met(pattern, own_step, step, b.parts, &scope, memo);
                verdict.dies = verdict.takes != 0;
            } else if until_holds(pattern, own_step, step, &scope, memo) {
                verdict.dies = true;
            } else {
                let matches = memo.holds(pattern.memo[own_step], &step.parts[0], &scope);
                verdict.takes = u64::from(matches);
                verdict.dies = match step.inner {
                    Contiguity::Strict => true,
                    Contiguity::Relaxed => matches,
                    Contiguity::Any => false,
                };
            }
        }
        Wait::Begin(k) => {
            let StepKind::Take(next) = &pattern.steps[k as usize].kind else {
                verdict.dies = true;
                return verdict;
            };
            let met = parts_met(pattern, k as usize, next, 0, &scope, memo);
            verdict.matches = met != 0;
            let mut blocked = false;
            if b.guard
                && let Some(step) = own
            {
                let until = until_holds(pattern, own_step, step, &scope, memo);
                let loop_takes =
                    !until && memo.holds(pattern.memo[own_step], &step.parts[0], &scope);
                blocked = loop_takes;
                verdict.guard_off = until
                    || match step.inner {
                        Contiguity::Strict => true,
                        Contiguity::Relaxed => loop_takes,
                        Contiguity::Any => false,
                    };
            }
            if !blocked {
                verdict.takes = met;
            }
            verdict.dies = match pattern.steps[k as usize].after {
                Contiguity::Strict => true,
                Contiguity::Relaxed => verdict.matches,
                Contiguity::Any => false,
            };
            if !verdict.dies
                && b.not_between != 0
                && any_holds(pattern, b.not_between, &scope, memo)
            {
                verdict.dies = true;
            }
        }
        Wait::Absent => {
            verdict.dies = any_holds(pattern, b.not_between, &scope, memo);
        }
    }
    verdict
}
