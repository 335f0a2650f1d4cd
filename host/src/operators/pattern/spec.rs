//! A declared pattern, checked and compiled: its steps with parsed conditions, and for each
//! step the steps that may begin next (past optional ones) with the negations in between.

use crate::config::{LoopContiguity, PatternStageConfig, StepConfig, StepRelation, Times};
use crate::expr::Condition;

/// How an event follows the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contiguity {
    /// The very next event.
    Strict,
    /// The next event that matches.
    Relaxed,
    /// Any later event that matches.
    Any,
}

/// A step that takes events.
#[derive(Debug, Clone)]
pub struct Positive {
    /// Its condition (for an `all_of` step, one per part).
    pub parts: Vec<Condition>,
    /// Fewest events (0 when optional).
    pub min: u32,
    /// Most events.
    pub max: u32,
    /// Between its own events.
    pub inner: Contiguity,
    /// Keeps events for itself rather than handing them to the next step.
    pub greedy: bool,
    /// Takes no more events after one meets this.
    pub until: Option<Condition>,
}

impl Positive {
    /// Whether it is an `all_of` step.
    pub fn is_group(&self) -> bool {
        self.parts.len() > 1
    }
}

/// What a step is.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// It takes events.
    Take(Positive),
    /// Its condition must not occur: right after the step before (`strict`), or anywhere
    /// until the next step (or, last, until `within` ends).
    Not {
        /// The condition that must not occur.
        condition: Condition,
        /// `not_next` rather than `not_followed_by`.
        strict: bool,
    },
}

/// One compiled step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its name.
    pub name: String,
    /// How its first event follows the events before.
    pub after: Contiguity,
    /// What it is.
    pub kind: StepKind,
}

/// A step that may begin next, with the negations between.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Follow {
    /// The step.
    pub step: usize,
    /// `not_next` steps the first event after must not meet, as bits by step.
    pub not_next: u64,
    /// `not_followed_by` steps no event before it may meet, as bits by step.
    pub not_between: u64,
}

/// Where the next match may start after one is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipStrategy {
    /// Anywhere: every match is reported.
    NoSkip,
    /// After the first event of the match.
    ToNext,
    /// After its last event.
    PastLastEvent,
    /// At the first event of this step in the match.
    ToFirst(usize),
    /// At the last event of this step in the match.
    ToLast(usize),
}

/// A checked, compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// Its steps, in order.
    pub steps: Vec<Step>,
    /// The names conditions may read other events by: every step, every `all_of` part,
    /// then `prev` (the event matched just before).
    pub names: Vec<String>,
    /// Where each step's parts are in `names` (the step itself is at its own index).
    pub part_slots: Vec<Vec<usize>>,
    /// The steps that may begin a match.
    pub starts: Vec<Follow>,
    /// For each step, the steps that may begin after it is done.
    pub follows: Vec<Vec<Follow>>,
    /// For each step: whether a match may end once it is done, and the `not_followed_by`
    /// steps that must then stay absent until `within` ends.
    pub ends: Vec<Option<u64>>,
    /// The time bound on a whole match, in ms.
    pub within: Option<i64>,
    /// After a match.
    pub skip: SkipStrategy,
    /// Partial matches kept per key.
    pub max_partial_matches: usize,
    /// Some condition reads other events by name.
    pub reads_others: bool,
    /// Each step's first place in the per-event memo of condition results: its parts, then
    /// its `until` (a negation's condition at its own place).
    pub memo: Vec<usize>,
}

/// Most steps plus parts: negations and names are tracked as bits of a `u64`.
pub const MAX_STEPS: usize = 63;

impl Pattern {
    /// The position of `prev` in [`Pattern::names`].
    pub fn prev_slot(&self) -> usize {
        self.names.len() - 1
    }

    /// Checks and compiles the steps of `config`.
    ///
    /// # Errors
    /// Every problem, each as `(key, message)` with the key under the stage.
    pub fn compile(config: &PatternStageConfig) -> Result<Self, Vec<(String, String)>> {
        let mut problems = Vec::new();
        let steps = &config.steps;
        let mut names: Vec<String> = steps.iter().map(|s| s.name.clone()).collect();
        let mut part_slots = Vec::with_capacity(steps.len());
        for step in steps {
            let mut slots = Vec::new();
            for part in &step.all_of {
                slots.push(names.len());
                names.push(part.name.clone());
            }
            part_slots.push(slots);
        }
        names.push("prev".into());
        if steps.is_empty() {
            problems.push(("steps".into(), "a pattern needs at least one step".into()));
        }
        if names.len() > MAX_STEPS + 1 {
            problems.push((
                "steps".into(),
                format!("at most {MAX_STEPS} steps and parts together"),
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, name) in names[..names.len() - 1].iter().enumerate() {
            if name.is_empty() || name.contains('.') || name == "prev" {
                problems.push((
                    format!("steps[{}].name", i.min(steps.len().saturating_sub(1))),
                    format!("{name:?}: a step name is a plain word other than `prev`"),
                ));
            } else if !seen.insert(name.as_str()) {
                problems.push(("steps".into(), format!("two steps or parts named {name:?}")));
            }
        }
        let mut compiled = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            match compile_step(step, &names) {
                Ok(step) => compiled.push(step),
                Err(errors) => {
                    problems.extend(errors.into_iter().map(|(k, m)| {
                        let key = if k.is_empty() {
                            format!("steps[{i}]")
                        } else {
                            format!("steps[{i}].{k}")
                        };
                        (key, m)
                    }));
                }
            }
        }
        let skip = match parse_skip(&config.after_match, steps) {
            Ok(skip) => Some(skip),
            Err(message) => {
                problems.push(("after_match".into(), message));
                None
            }
        };
        if config.max_partial_matches == 0 {
            problems.push(("max_partial_matches".into(), "must be at least 1".into()));
        }
        let within = config.within.map(|w| w.0.as_millis() as i64);
        if within == Some(0) {
            problems.push(("within".into(), "must be more than zero".into()));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut pattern = Self {
            steps: compiled,
            names,
            part_slots,
            starts: Vec::new(),
            follows: Vec::new(),
            ends: Vec::new(),
            within,
            skip: skip.unwrap_or(SkipStrategy::NoSkip),
            max_partial_matches: config.max_partial_matches,
            reads_others: false,
            memo: Vec::new(),
        };
        let mut place = 0;
        for step in &pattern.steps {
            pattern.memo.push(place);
            place += match &step.kind {
                StepKind::Take(p) => p.parts.len() + usize::from(p.until.is_some()),
                StepKind::Not { .. } => 1,
            };
        }
        pattern.reads_others = pattern.steps.iter().any(|s| match &s.kind {
            StepKind::Take(p) => p
                .parts
                .iter()
                .chain(&p.until)
                .any(|c| c.reads_others() != 0),
            StepKind::Not { condition, .. } => condition.reads_others() != 0,
        });
        pattern.link(&mut problems);
        if problems.is_empty() {
            Ok(pattern)
        } else {
            Err(problems)
        }
    }

    /// Works out which steps may follow which, and checks the shape of the sequence.
    fn link(&mut self, problems: &mut Vec<(String, String)>) {
        let n = self.steps.len();
        if matches!(self.steps[0].kind, StepKind::Not { .. }) {
            problems.push((
                "steps[0].after".into(),
                "a pattern cannot begin with a negation".into(),
            ));
            return;
        }
        let (starts, _) = self.reachable(0);
        self.starts = starts;
        for i in 0..n {
            let (follows, end) = self.reachable(i + 1);
            if let (Some(end), StepKind::Take(_)) = (&end, &self.steps[i].kind) {
                if end.not_next != 0 {
                    problems.push((
                        format!("steps[{}].after", n - 1),
                        "a pattern cannot end with `not_next`: say what must not follow with `not_followed_by` and `within`".into(),
                    ));
                    return;
                }
                if end.not_between != 0 && self.within.is_none() {
                    problems.push((
                        "within".into(),
                        "a pattern that ends with `not_followed_by` (absence) needs `within`: how long the absence must last".into(),
                    ));
                    return;
                }
            }
            self.follows.push(follows);
            self.ends.push(end.map(|e| e.not_between));
        }
    }

    /// From step `from` on: the steps that take events and may come next (over optional
    /// ones), and, if the rest may be empty, the negations on the way to the end.
    fn reachable(&self, from: usize) -> (Vec<Follow>, Option<Follow>) {
        let mut follows = Vec::new();
        let mut negations = Follow::default();
        for (j, step) in self.steps.iter().enumerate().skip(from) {
            match &step.kind {
                StepKind::Not { strict: true, .. } => negations.not_next |= 1 << j,
                StepKind::Not { strict: false, .. } => negations.not_between |= 1 << j,
                StepKind::Take(p) => {
                    follows.push(Follow {
                        step: j,
                        ..negations.clone()
                    });
                    if p.min > 0 {
                        return (follows, None);
                    }
                }
            }
        }
        negations.step = self.steps.len();
        (follows, Some(negations))
    }
}

fn contiguity(relation: StepRelation) -> Contiguity {
    match relation {
        StepRelation::Next | StepRelation::NotNext => Contiguity::Strict,
        StepRelation::FollowedBy | StepRelation::NotFollowedBy => Contiguity::Relaxed,
        StepRelation::FollowedByAny => Contiguity::Any,
    }
}

fn compile_step(step: &StepConfig, names: &[String]) -> Result<Step, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let mut unparsed = Vec::new();
    let mut parse = |key: &str, text: &str| -> Option<Condition> {
        match Condition::parse_with(text, names) {
            Ok(c) => Some(c),
            Err(e) => {
                unparsed.push((key.to_owned(), format!("{text:?}: {e}")));
                None
            }
        }
    };
    let ways = usize::from(step.condition.is_some())
        + usize::from(!step.any_of.is_empty())
        + usize::from(!step.all_of.is_empty());
    let mut parts = Vec::new();
    if ways > 1 {
        problems.push((
            String::new(),
            "give one of `where`, `any_of` and `all_of`".into(),
        ));
    } else if let Some(text) = &step.condition {
        parts.extend(parse("where", text));
    } else if !step.any_of.is_empty() {
        let each = step
            .any_of
            .iter()
            .enumerate()
            .filter(|(i, text)| parse(&format!("any_of[{i}]"), text).is_some())
            .count();
        let joined = step
            .any_of
            .iter()
            .map(|c| format!("({c})"))
            .collect::<Vec<_>>()
            .join(" || ");
        if each == step.any_of.len() {
            parts.extend(parse("any_of", &joined));
        }
    } else if !step.all_of.is_empty() {
        for (i, part) in step.all_of.iter().enumerate() {
            parts.extend(parse(&format!("all_of[{i}].where"), &part.condition));
        }
    } else {
        parts.extend(parse("where", "true"));
    }
    let until = step.until.as_deref().and_then(|text| parse("until", text));
    problems.append(&mut unparsed);
    let negation = matches!(
        step.after,
        StepRelation::NotNext | StepRelation::NotFollowedBy
    );
    let counted = [
        step.times.is_some(),
        step.one_or_more,
        step.times_or_more.is_some(),
    ]
    .iter()
    .filter(|&&b| b)
    .count();
    if counted > 1 {
        problems.push((
            String::new(),
            "give one of `times`, `one_or_more` and `times_or_more`".into(),
        ));
    }
    let (mut min, max) = match (step.times, step.one_or_more, step.times_or_more) {
        (Some(Times::Exactly(n)), _, _) => (n, n),
        (Some(Times::Range(a, b)), _, _) => (a, b),
        (None, true, _) => (1, u32::MAX),
        (None, false, Some(n)) => (n, u32::MAX),
        (None, false, None) => (1, 1),
    };
    if max == 0 || min > max {
        problems.push((
            "times".into(),
            format!("takes from {min} to {max} events: give at least 1, and the smaller first"),
        ));
    }
    if step.optional {
        min = 0;
    }
    let looping = max > 1;
    if negation {
        let extras = step.times.is_some()
            || step.one_or_more
            || step.times_or_more.is_some()
            || step.optional
            || step.greedy
            || step.until.is_some()
            || !step.all_of.is_empty();
        if extras {
            problems.push((
                String::new(),
                "a negation (`not_next`, `not_followed_by`) takes only `where` or `any_of`".into(),
            ));
        }
    } else if !step.all_of.is_empty() && looping {
        problems.push((
            String::new(),
            "an `all_of` step takes one event per part: no `times`".into(),
        ));
    } else if !looping && (step.greedy || step.until.is_some()) {
        problems.push((
            String::new(),
            "`greedy` and `until` are for looping steps (`times`, `one_or_more`)".into(),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let kind = if negation {
        StepKind::Not {
            condition: parts.remove(0),
            strict: step.after == StepRelation::NotNext,
        }
    } else {
        StepKind::Take(Positive {
            parts,
            min,
            max,
            inner: match step.contiguity {
                LoopContiguity::Consecutive => Contiguity::Strict,
                LoopContiguity::Relaxed => Contiguity::Relaxed,
                LoopContiguity::Any => Contiguity::Any,
            },
            greedy: step.greedy,
            until,
        })
    };
    Ok(Step {
        name: step.name.clone(),
        after: contiguity(step.after),
        kind,
    })
}

fn parse_skip(text: &str, steps: &[StepConfig]) -> Result<SkipStrategy, String> {
    let step = |name: &str| {
        steps
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| format!("{text:?}: no step named {name:?}"))
    };
    match text.split_once(':') {
        None => match text {
            "no_skip" => Ok(SkipStrategy::NoSkip),
            "skip_to_next" => Ok(SkipStrategy::ToNext),
            "skip_past_last_event" => Ok(SkipStrategy::PastLastEvent),
            _ => Err(format!(
                "{text:?}: expected no_skip, skip_to_next, skip_past_last_event, skip_to_first:STEP or skip_to_last:STEP"
            )),
        },
        Some(("skip_to_first", name)) => step(name).map(SkipStrategy::ToFirst),
        Some(("skip_to_last", name)) => step(name).map(SkipStrategy::ToLast),
        Some(_) => Err(format!(
            "{text:?}: expected skip_to_first:STEP or skip_to_last:STEP"
        )),
    }
}
