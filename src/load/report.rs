//! What a load test reports: each call's outcome, the progress line, the summary table, and
//! the report file (JSON or CSV by its extension).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

/// One call's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct CallOutcome {
    /// The call's number in the run, from 0.
    pub number: u64,
    /// The door that placed it.
    pub door: usize,
    /// The device's CallId.
    pub call_id: String,
    /// When it started, from the start of the run.
    #[serde(serialize_with = "millis")]
    pub started: Duration,
    /// Press to answer.
    #[serde(serialize_with = "millis_opt")]
    pub setup: Option<Duration>,
    /// Press to hang-up.
    #[serde(serialize_with = "millis_opt")]
    pub duration: Option<Duration>,
    /// Whether it was answered and held for the hold time.
    pub ok: bool,
    /// Why it failed, if it did.
    pub failure: String,
    /// Anything else worth knowing.
    pub note: String,
    /// RTP packets sent and received by the door.
    pub rtp_sent: u64,
    /// RTP packets received by the door.
    pub rtp_received: u64,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

fn millis_opt<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => millis(d, s),
        None => s.serialize_none(),
    }
}

impl CallOutcome {
    /// A call just started.
    pub fn new(number: u64, door: usize, started: Duration) -> Self {
        Self {
            number,
            door,
            call_id: String::new(),
            started,
            setup: None,
            duration: None,
            ok: false,
            failure: String::new(),
            note: String::new(),
            rtp_sent: 0,
            rtp_received: 0,
        }
    }

    /// This call, failed for `why`.
    pub fn failed(mut self, why: &str) -> Self {
        self.failure = why.to_owned();
        self
    }

    /// This call, answered and held.
    pub fn answered(mut self) -> Self {
        self.ok = true;
        self
    }
}

/// What a run amounts to.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Calls asked for.
    pub planned: u64,
    /// Calls started.
    pub started: u64,
    /// Answered and held.
    pub answered: u64,
    /// Failed.
    pub failed: u64,
    /// Setup latency p50, p95, p99.
    pub setup: [Duration; 3],
    /// Failure reasons and their counts.
    pub reasons: Vec<(String, u64)>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

impl Summary {
    /// The summary of `outcomes` out of `planned` calls.
    pub fn of(outcomes: &[CallOutcome], planned: u64) -> Summary {
        let mut setups: Vec<Duration> = outcomes.iter().filter_map(|o| o.setup).collect();
        setups.sort();
        let mut reasons: Vec<(String, u64)> = Vec::new();
        for o in outcomes.iter().filter(|o| !o.ok) {
            match reasons.iter_mut().find(|(r, _)| *r == o.failure) {
                Some((_, n)) => *n += 1,
                None => reasons.push((o.failure.clone(), 1)),
            }
        }
        let answered = outcomes.iter().filter(|o| o.ok).count() as u64;
        Summary {
            planned,
            started: outcomes.len() as u64,
            answered,
            failed: outcomes.len() as u64 - answered,
            setup: [percentile(&setups, 0.5), percentile(&setups, 0.95), percentile(&setups, 0.99)],
            reasons,
        }
    }

    /// The table printed at the end.
    pub fn table(&self) -> String {
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        let mut t = String::new();
        let _ = writeln!(t, "\ncalls planned   {}", self.planned);
        let _ = writeln!(t, "calls started   {}", self.started);
        let _ = writeln!(t, "answered        {}", self.answered);
        let _ = writeln!(t, "failed          {}", self.failed);
        let _ = writeln!(t, "setup p50       {}", ms(self.setup[0]));
        let _ = writeln!(t, "setup p95       {}", ms(self.setup[1]));
        let _ = writeln!(t, "setup p99       {}", ms(self.setup[2]));
        for (reason, n) in &self.reasons {
            let _ = writeln!(t, "  {n:>6} × {reason}");
        }
        t
    }
}

/// The live progress line.
pub(super) fn progress(outcomes: &[CallOutcome], started: u64, elapsed: Duration) -> String {
    let answered = outcomes.iter().filter(|o| o.ok).count();
    let failed = outcomes.len() - answered;
    let mut setups: Vec<Duration> = outcomes.iter().filter_map(|o| o.setup).collect();
    setups.sort();
    format!(
        "started {started}  answered {answered}  failed {failed}  rate {:.1}/s  setup p50 {:.1} ms   ",
        started as f64 / elapsed.as_secs_f64().max(0.001),
        percentile(&setups, 0.5).as_secs_f64() * 1000.0
    )
}

/// Writes every outcome to `path`: CSV when it ends in `.csv`, JSON otherwise.
pub(super) fn write(path: &Path, outcomes: &[CallOutcome]) -> std::io::Result<()> {
    let csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let text = if csv {
        let mut t =
            String::from("number,door,call_id,started_ms,setup_ms,duration_ms,ok,failure,note,rtp_sent,rtp_received\n");
        let ms = |d: Option<Duration>| d.map_or(String::new(), |d| format!("{:.3}", d.as_secs_f64() * 1000.0));
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        for o in outcomes {
            let _ = writeln!(
                t,
                "{},{},{},{},{},{},{},{},{},{},{}",
                o.number,
                o.door,
                quote(&o.call_id),
                ms(Some(o.started)),
                ms(o.setup),
                ms(o.duration),
                o.ok,
                quote(&o.failure),
                quote(&o.note),
                o.rtp_sent,
                o.rtp_received
            );
        }
        t
    } else {
        serde_json::to_string_pretty(outcomes).map_err(std::io::Error::other)?
    };
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_counts_and_ranks() {
        let mut outcomes: Vec<CallOutcome> = (0..100)
            .map(|i| {
                let mut o = CallOutcome::new(i, 0, Duration::ZERO);
                o.setup = Some(Duration::from_millis(i + 1));
                o.answered()
            })
            .collect();
        outcomes.push(CallOutcome::new(100, 1, Duration::ZERO).failed("not answered: Busy"));
        outcomes.push(CallOutcome::new(101, 1, Duration::ZERO).failed("not answered: Busy"));
        let s = Summary::of(&outcomes, 105);
        assert_eq!((s.planned, s.started, s.answered, s.failed), (105, 102, 100, 2));
        assert_eq!(s.setup, [Duration::from_millis(51), Duration::from_millis(95), Duration::from_millis(99)]);
        assert_eq!(s.reasons, [("not answered: Busy".to_owned(), 2)]);
        assert!(s.table().contains("answered        100"));
    }
}
