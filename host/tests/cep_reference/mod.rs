//! A brute-force reference for declared patterns: every assignment of events to steps is
//! tried, and the rules of the pattern language are checked on the whole match, one by
//! one, as the README states them. Slow and obviously right, to check the automaton.

use weir::expr::Scope;
use weir::operators::pattern::spec::{Contiguity, Pattern, Positive, SkipStrategy, StepKind};

/// One event of a key's stream, in event-time order.
pub struct Ev {
    pub time: i64,
    pub payload: Vec<u8>,
}

/// A match: (name slot, event index) in order, and when it completed.
pub type Assignment = Vec<(usize, usize, usize)>; // (step, part, event index)

/// Every match, in the order the stage reports them, after the skip strategy.
pub fn matches(p: &Pattern, events: &[Ev]) -> Vec<Vec<(usize, usize)>> {
    let mut found: Vec<(Key, Assignment)> = Vec::new();
    let mut current = Vec::new();
    enumerate(p, events, 0, 0, &mut current, &mut |a| {
        if let Some(key) = check(p, events, a) {
            found.push((key, a.to_vec()));
        }
    });
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let mut floor = 0usize;
    let mut out = Vec::new();
    for (_, a) in found {
        let start = a[0].2;
        if start < floor {
            continue;
        }
        let last = a.last().map_or(0, |e| e.2);
        let of_step = |s: usize| {
            a.iter()
                .filter(|e| e.0 == s)
                .map(|e| e.2)
                .collect::<Vec<_>>()
        };
        let next = match p.skip {
            SkipStrategy::NoSkip => 0,
            SkipStrategy::ToNext => start + 1,
            SkipStrategy::PastLastEvent => last + 1,
            SkipStrategy::ToFirst(s) => of_step(s).first().copied().unwrap_or(0),
            SkipStrategy::ToLast(s) => of_step(s).last().copied().unwrap_or(0),
        };
        floor = floor.max(next);
        out.push(
            a.iter()
                .map(|&(s, part, i)| (slot(p, s, part), i))
                .collect(),
        );
    }
    out
}

/// Emission order: when it completed, absences before events at that time, then the
/// completing event, then the first event, then all events.
type Key = (i64, u8, usize, usize, Vec<(usize, usize)>);

fn slot(p: &Pattern, step: usize, part: usize) -> usize {
    match &p.steps[step].kind {
        StepKind::Take(pos) if pos.is_group() => p.part_slots[step][part],
        _ => step,
    }
}

fn positive(p: &Pattern, step: usize) -> Option<&Positive> {
    match &p.steps[step].kind {
        StepKind::Take(pos) => Some(pos),
        StepKind::Not { .. } => None,
    }
}

/// Calls `found` with every assignment that respects step order and counts.
fn enumerate(
    p: &Pattern,
    events: &[Ev],
    step: usize,
    from: usize,
    current: &mut Assignment,
    found: &mut dyn FnMut(&Assignment),
) {
    if step == p.steps.len() {
        if !current.is_empty() {
            found(current);
        }
        return;
    }
    let Some(pos) = positive(p, step) else {
        return enumerate(p, events, step + 1, from, current, found);
    };
    if pos.min == 0 {
        enumerate(p, events, step + 1, from, current, found);
    }
    if pos.is_group() {
        // One event per part, in any order: choose increasing indices, then which part
        // each takes.
        let n = pos.parts.len();
        let mut picks = Vec::new();
        choose(from, events.len(), n, &mut picks, &mut |indices| {
            permute(n, &mut Vec::new(), &mut |order| {
                let before = current.len();
                for (k, &i) in indices.iter().enumerate() {
                    current.push((step, order[k], i));
                }
                let next = indices[n - 1] + 1;
                enumerate(p, events, step + 1, next, current, found);
                current.truncate(before);
            });
        });
        return;
    }
    let max = (pos.max as usize).min(events.len().saturating_sub(from));
    for count in pos.min.max(1) as usize..=max {
        let mut picks = Vec::new();
        choose(from, events.len(), count, &mut picks, &mut |indices| {
            let before = current.len();
            current.extend(indices.iter().map(|&i| (step, 0, i)));
            let next = indices[count - 1] + 1;
            enumerate(p, events, step + 1, next, current, found);
            current.truncate(before);
        });
    }
}

fn choose(
    from: usize,
    to: usize,
    count: usize,
    picks: &mut Vec<usize>,
    each: &mut dyn FnMut(&[usize]),
) {
    if picks.len() == count {
        each(picks);
        return;
    }
    let start = picks.last().map_or(from, |&l| l + 1);
    for i in start..to {
        picks.push(i);
        choose(from, to, count, picks, each);
        picks.pop();
    }
}

fn permute(n: usize, order: &mut Vec<usize>, each: &mut dyn FnMut(&[usize])) {
    if order.len() == n {
        each(order);
        return;
    }
    for i in 0..n {
        if !order.contains(&i) {
            order.push(i);
            permute(n, order, each);
            order.pop();
        }
    }
}

/// What conditions read for the event after `prefix`.
fn scope_of<'a>(p: &Pattern, events: &'a [Ev], prefix: &[(usize, usize, usize)]) -> Vec<&'a [u8]> {
    let mut others: Vec<&[u8]> = vec![&[]; p.names.len()];
    for &(step, part, i) in prefix {
        others[slot(p, step, part)] = &events[i].payload;
        others[step] = &events[i].payload;
    }
    if let Some(&(_, _, i)) = prefix.last() {
        others[p.prev_slot()] = &events[i].payload;
    }
    others
}

fn holds(c: &weir::expr::Condition, payload: &[u8], others: &[&[u8]]) -> bool {
    c.holds_in(&Scope { payload, others })
}

fn not_holds(p: &Pattern, step: usize, payload: &[u8], others: &[&[u8]]) -> bool {
    match &p.steps[step].kind {
        StepKind::Not { condition, .. } => holds(condition, payload, others),
        StepKind::Take(_) => false,
    }
}

/// The emission key of `a` if it is a match.
fn check(p: &Pattern, ev: &[Ev], a: &Assignment) -> Option<Key> {
    let start_time = ev[a[0].2].time;
    if let Some(w) = p.within
        && a.iter().any(|e| ev[e.2].time >= start_time + w)
    {
        return None;
    }
    for t in 0..a.len() {
        let (step, part, y) = a[t];
        let pos = positive(p, step)?;
        let prefix = &a[..t];
        let others = scope_of(p, ev, prefix);
        if !holds(&pos.parts[part], &ev[y].payload, &others) {
            return None;
        }
        if t == 0 {
            continue;
        }
        let (xstep, _, x) = a[t - 1];
        let between = x + 1..y;
        let any_between = |f: &dyn Fn(&[u8]) -> bool| between.clone().any(|z| f(&ev[z].payload));
        if xstep == step {
            if pos.is_group() {
                let taken: Vec<usize> =
                    prefix.iter().filter(|e| e.0 == step).map(|e| e.1).collect();
                let open = |z: &[u8]| {
                    (0..pos.parts.len())
                        .any(|k| !taken.contains(&k) && holds(&pos.parts[k], z, &others))
                };
                if any_between(&open) {
                    return None;
                }
            } else {
                let ok = match pos.inner {
                    Contiguity::Strict => y == x + 1,
                    Contiguity::Relaxed => !any_between(&|z| holds(&pos.parts[0], z, &others)),
                    Contiguity::Any => true,
                };
                if !ok {
                    return None;
                }
                if let Some(until) = &pos.until
                    && (x + 1..=y).any(|z| holds(until, &ev[z].payload, &others))
                {
                    return None;
                }
            }
            continue;
        }
        // `y` begins `step`.
        let met = |z: &[u8]| pos.parts.iter().any(|c| holds(c, z, &others));
        let ok = match p.steps[step].after {
            Contiguity::Strict => y == x + 1,
            Contiguity::Relaxed => !any_between(&met),
            Contiguity::Any => true,
        };
        if !ok {
            return None;
        }
        for n in xstep + 1..step {
            if let StepKind::Not { strict, .. } = &p.steps[n].kind {
                let broken = if *strict {
                    not_holds(p, n, &ev[x + 1].payload, &others)
                } else {
                    any_between(&|z| not_holds(p, n, z, &others))
                };
                if broken {
                    return None;
                }
            }
        }
        let xpos = positive(p, xstep)?;
        if xpos.greedy && !xpos.is_group() {
            let count = prefix.iter().filter(|e| e.0 == xstep).count() as u32;
            let until_seen = |z: usize| {
                xpos.until
                    .as_ref()
                    .is_some_and(|u| holds(u, &ev[z].payload, &others))
            };
            let could = count < xpos.max
                && holds(&xpos.parts[0], &ev[y].payload, &others)
                && !(x + 1..=y).any(until_seen)
                && match xpos.inner {
                    Contiguity::Strict => y == x + 1,
                    Contiguity::Relaxed => !any_between(&|z| holds(&xpos.parts[0], z, &others)),
                    Contiguity::Any => true,
                };
            if could {
                return None;
            }
        }
    }
    // The end: what follows the last step must be optional, or an absence.
    let (last_step, _, last) = *a.last()?;
    let others = scope_of(p, ev, a);
    let mut absent = Vec::new();
    for n in last_step + 1..p.steps.len() {
        match &p.steps[n].kind {
            StepKind::Not { strict: true, .. } => return None,
            StepKind::Not { strict: false, .. } => absent.push(n),
            StepKind::Take(_) => {}
        }
    }
    let first = a[0].2;
    let seqs: Vec<(usize, usize)> = a.iter().map(|e| (e.2, slot(p, e.0, e.1))).collect();
    if absent.is_empty() {
        return Some((ev[last].time, 1, last, first, seqs));
    }
    let deadline = start_time + p.within?;
    let broken = (last + 1..ev.len())
        .filter(|&z| ev[z].time < deadline)
        .any(|z| {
            absent
                .iter()
                .any(|&n| not_holds(p, n, &ev[z].payload, &others))
        });
    if broken {
        return None;
    }
    Some((deadline, 0, 0, first, seqs))
}
