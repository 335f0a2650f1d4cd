//! Which windows an event time falls in.

/// The furthest event time from the epoch, either way, a window stage takes: 2^53 ms,
/// about 285,000 years.
pub const MAX_EVENT_TIME: i64 = 1 << 53;

/// The shape of a window stage's windows. Times and lengths are milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// Fixed, non-overlapping windows `[k * size, (k + 1) * size)`.
    Tumbling {
        /// Window length.
        size: i64,
    },
    /// Windows of `size` starting every `slide`; an event is in `size / slide` of them.
    Sliding {
        /// Window length.
        size: i64,
        /// Distance between window starts.
        slide: i64,
    },
    /// Per key, events closer than `gap` form one window `[first, last + gap)`; a late
    /// event that bridges two sessions joins them.
    Session {
        /// Inactivity that closes a session.
        gap: i64,
    },
    /// Per key, every `size` events (in arrival order) form a window.
    Count {
        /// Events per window.
        size: u64,
    },
    /// Per key, one window over all time, `[GLOBAL_START, GLOBAL_END)`: it fires only by
    /// its triggers (every N events, every T) and at the end of a finite input.
    Global,
}

/// Start of the global window.
pub const GLOBAL_START: i64 = -MAX_EVENT_TIME;
/// End of the global window: past every event time a stage takes.
pub const GLOBAL_END: i64 = MAX_EVENT_TIME + 1;

impl WindowKind {
    /// The `[start, end)` windows holding event time `time`, for time windows; in order of
    /// start. Session and count windows are made by the engine. `time` is within
    /// [`MAX_EVENT_TIME`] of the epoch (the engine refuses others), so no start overflows.
    pub fn assign(&self, time: i64, out: &mut Vec<(i64, i64)>) {
        out.clear();
        match *self {
            Self::Tumbling { size } => {
                let start = time.div_euclid(size) * size;
                out.push((start, start.saturating_add(size)));
            }
            Self::Sliding { size, slide } => {
                // The last window holding `time` starts at the slide boundary at or before
                // it; earlier ones every `slide` back while they still reach past `time`.
                let mut start = time.div_euclid(slide) * slide;
                let reach = time.saturating_sub(size);
                while start > reach {
                    out.push((start, start.saturating_add(size)));
                    match start.checked_sub(slide) {
                        Some(earlier) => start = earlier,
                        None => break,
                    }
                }
                out.reverse();
            }
            Self::Session { gap } => out.push((time, time.saturating_add(gap))),
            Self::Count { .. } => {}
            Self::Global => out.push((GLOBAL_START, GLOBAL_END)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(kind: WindowKind, time: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        kind.assign(time, &mut out);
        out
    }

    #[test]
    fn tumbling_windows_hold_their_start_and_not_their_end() {
        let kind = WindowKind::Tumbling { size: 10 };
        assert_eq!(windows(kind, 0), [(0, 10)]);
        assert_eq!(windows(kind, 9), [(0, 10)]);
        assert_eq!(windows(kind, 10), [(10, 20)]);
        assert_eq!(windows(kind, -1), [(-10, 0)]);
    }

    #[test]
    fn sliding_windows_overlap_size_over_slide_times() {
        let kind = WindowKind::Sliding { size: 10, slide: 5 };
        assert_eq!(windows(kind, 7), [(0, 10), (5, 15)]);
        assert_eq!(windows(kind, 5), [(0, 10), (5, 15)]);
        assert_eq!(windows(kind, 4), [(-5, 5), (0, 10)]);
        let uneven = WindowKind::Sliding { size: 10, slide: 3 };
        assert_eq!(windows(uneven, 9), [(0, 10), (3, 13), (6, 16), (9, 19)]);
    }
}
