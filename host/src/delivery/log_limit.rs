//! Rate limiting of per-event log lines: a flood of bad input must not become a flood of
//! logs. Every event is still counted in metrics; only the lines are limited.

use std::time::{Duration, Instant};

/// Lines per second let through before the rest are only counted.
pub const LOG_LINES_PER_SECOND: u32 = 10;

/// Lets [`LOG_LINES_PER_SECOND`] lines through per second and counts the rest.
#[derive(Debug)]
pub struct LogLimiter {
    window: Instant,
    lines: u32,
    suppressed: u64,
}

impl Default for LogLimiter {
    fn default() -> Self {
        Self {
            window: Instant::now(),
            lines: 0,
            suppressed: 0,
        }
    }
}

impl LogLimiter {
    /// Whether to log this line; when yes, also how many lines were held back since the
    /// last one logged.
    pub fn allow(&mut self) -> Option<u64> {
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.lines = 0;
        }
        if self.lines >= LOG_LINES_PER_SECOND {
            self.suppressed += 1;
            return None;
        }
        self.lines += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_a_few_lines_through_per_second_and_counts_the_rest() {
        let mut limiter = LogLimiter::default();
        let allowed = (0..100).filter(|_| limiter.allow().is_some()).count();
        assert_eq!(allowed, LOG_LINES_PER_SECOND as usize);
        limiter.window -= Duration::from_secs(2);
        assert_eq!(limiter.allow(), Some(100 - u64::from(LOG_LINES_PER_SECOND)));
    }
}
