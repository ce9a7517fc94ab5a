//! Matching received digits against DTMF triggers (DESIGN.md decision 8): a sequence matches
//! when the call's latest digits end with it; digits older than the inter-digit timeout are
//! forgotten; the longest matching sequence wins; a match clears the buffer.

use std::time::{Duration, Instant};

/// Digits kept per call (the longest sequence is 64).
const MAX_DIGITS: usize = 64;

/// One trigger in force for a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    /// The digits.
    pub sequence: String,
    /// The DTMF event it emits.
    pub event_id: String,
}

/// The digit buffer of one call.
#[derive(Debug)]
pub struct Matcher {
    triggers: Vec<Trigger>,
    inter_digit: Duration,
    digits: String,
    last: Option<Instant>,
}

impl Matcher {
    /// A matcher for `triggers`.
    pub fn new(triggers: Vec<Trigger>, inter_digit: Duration) -> Self {
        Self { triggers, inter_digit, digits: String::new(), last: None }
    }

    /// Adds a digit received at `now`; returns the event of the longest trigger it completes.
    pub fn digit(&mut self, digit: char, now: Instant) -> Option<&Trigger> {
        if self.last.is_some_and(|t| now.duration_since(t) > self.inter_digit) {
            self.digits.clear();
        }
        self.last = Some(now);
        if self.digits.len() == MAX_DIGITS {
            self.digits.remove(0);
        }
        self.digits.push(digit);
        let best =
            self.triggers.iter().filter(|t| self.digits.ends_with(&t.sequence)).max_by_key(|t| t.sequence.len())?;
        self.digits.clear();
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> Matcher {
        let t = |s: &str, e: &str| Trigger { sequence: s.into(), event_id: e.into() };
        Matcher::new(vec![t("#1234#", "open"), t("34#", "short"), t("9", "nine")], Duration::from_secs(3))
    }

    fn run(m: &mut Matcher, digits: &str, start: Instant, gap: Duration) -> Vec<String> {
        digits
            .chars()
            .enumerate()
            .filter_map(|(i, d)| m.digit(d, start + gap * i as u32).map(|t| t.event_id.clone()))
            .collect()
    }

    #[test]
    fn suffix_match_and_longest_wins() {
        let mut m = matcher();
        let now = Instant::now();
        // Leading noise is fine; "#1234#" wins over its suffix "34#".
        assert_eq!(run(&mut m, "77#1234#", now, Duration::from_millis(200)), ["open"]);
        // The buffer was cleared: "4#" alone does not complete "34#".
        assert_eq!(run(&mut m, "4#", now + Duration::from_secs(2), Duration::from_millis(200)), Vec::<String>::new());
        assert_eq!(run(&mut m, "34#", now + Duration::from_secs(3), Duration::from_millis(200)), ["short"]);
    }

    #[test]
    fn digits_older_than_the_inter_digit_timeout_are_forgotten() {
        let mut m = matcher();
        let now = Instant::now();
        assert_eq!(run(&mut m, "#12", now, Duration::from_millis(100)), Vec::<String>::new());
        // Four seconds later the "#12" is gone: "34#" completes the short trigger only.
        assert_eq!(run(&mut m, "34#", now + Duration::from_secs(4), Duration::from_millis(100)), ["short"]);
    }

    #[test]
    fn the_buffer_is_bounded() {
        let mut m = matcher();
        let now = Instant::now();
        assert!(run(&mut m, &"1".repeat(500), now, Duration::from_millis(1)).is_empty());
        assert_eq!(m.digits.len(), MAX_DIGITS);
    }
}
