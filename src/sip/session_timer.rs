//! Session timers (RFC 4028), the device as the callee: what an INVITE asks for, what the 2xx
//! answers, and when a refresh or the session's end is due. Sans I/O: the agent keeps the
//! timers and sends the UPDATE or BYE.
//!
//! An INVITE with `Session-Expires` below the device's `Min-SE` (the RFC's 90 s) gets 422
//! naming it. Otherwise the interval is taken as offered, and the refresher is whom the
//! INVITE names, else the caller when it supports `timer`, else the device. The refresher
//! refreshes at half the interval; the other side ends the session (BYE) when no refresh came
//! within the interval minus a third of it (at most 32 s), as section 10 of the RFC says.

use std::time::Duration;

use super::message::SipMessage;

/// The smallest session interval the device accepts, in seconds (RFC 4028's minimum).
pub const MIN_SE: u32 = 90;

/// Who refreshes the session, as the header names the sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresher {
    /// The caller.
    Uac,
    /// The device (the callee).
    Uas,
}

/// A session timer agreed for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// The session interval, in seconds.
    pub interval: u32,
    /// Who refreshes.
    pub refresher: Refresher,
    /// Whether the caller supports `timer` (then the 2xx says `Require: timer`).
    pub caller_supports: bool,
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// No session timer.
    None,
    /// A session timer the device takes.
    Timer(SessionTimer),
    /// An interval below [`MIN_SE`]: 422.
    TooSmall,
}

/// What `request` (an INVITE, re-INVITE or UPDATE) asks for.
pub fn asked(request: &SipMessage) -> Asked {
    let Some(value) = request.header("Session-Expires").or_else(|| request.header("x")) else {
        return Asked::None;
    };
    let mut parts = value.split(';').map(str::trim);
    let Some(interval) = parts.next().and_then(|n| n.parse::<u32>().ok()) else { return Asked::None };
    if interval < MIN_SE {
        return Asked::TooSmall;
    }
    let caller_supports = request
        .header_values("Supported")
        .iter()
        .chain(request.header_values("k").iter())
        .any(|o| o.eq_ignore_ascii_case("timer"));
    let named = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("refresher").then(|| v.trim().to_ascii_lowercase())
    });
    let refresher = match named.as_deref() {
        Some("uac") => Refresher::Uac,
        Some("uas") => Refresher::Uas,
        _ if caller_supports => Refresher::Uac,
        _ => Refresher::Uas,
    };
    Asked::Timer(SessionTimer { interval, refresher, caller_supports })
}

impl SessionTimer {
    /// The `Session-Expires` value of the 2xx (and of the device's refreshes).
    pub fn header(&self) -> String {
        let side = match self.refresher {
            Refresher::Uac => "uac",
            Refresher::Uas => "uas",
        };
        format!("{};refresher={side}", self.interval)
    }

    /// Puts the timer's headers on `response`, the 2xx answering the request that asked.
    pub fn answer(&self, response: &mut SipMessage) {
        response.set_header("Session-Expires", self.header());
        if self.caller_supports {
            response.set_header("Require", "timer");
        }
    }

    /// How long after the last refresh the device's next one is due (it refreshes), or the
    /// session ends without one (the caller refreshes); in device time, before `--time-scale`.
    pub fn due_after(&self) -> Duration {
        let interval = u64::from(self.interval);
        Duration::from_secs(match self.refresher {
            Refresher::Uas => interval / 2,
            Refresher::Uac => interval - (interval / 3).min(32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invite(headers: &str) -> SipMessage {
        let text = format!(
            "INVITE sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:door@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             {headers}Content-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.as_bytes()).expect("parse")
    }

    #[test]
    fn the_refresher_is_named_or_the_caller_that_supports_timer() {
        let t = |h: &str| match asked(&invite(h)) {
            Asked::Timer(t) => (t.interval, t.refresher, t.caller_supports),
            other => panic!("{other:?}"),
        };
        assert_eq!(t("Session-Expires: 1800;refresher=uas\r\n"), (1800, Refresher::Uas, false));
        assert_eq!(t("Session-Expires: 90\r\nSupported: 100rel, timer\r\n"), (90, Refresher::Uac, true));
        assert_eq!(t("Session-Expires: 120\r\n"), (120, Refresher::Uas, false));
        assert_eq!(t("x: 300;refresher=UAC\r\nk: timer\r\n"), (300, Refresher::Uac, true));
    }

    #[test]
    fn too_small_absent_and_malformed_intervals() {
        assert_eq!(asked(&invite("Session-Expires: 89\r\n")), Asked::TooSmall);
        assert_eq!(asked(&invite("")), Asked::None);
        assert_eq!(asked(&invite("Session-Expires: soon\r\n")), Asked::None);
    }

    #[test]
    fn refreshes_at_half_and_expiry_a_third_early_at_most_32_s() {
        let timer = |interval, refresher| SessionTimer { interval, refresher, caller_supports: true };
        assert_eq!(timer(90, Refresher::Uas).due_after(), Duration::from_secs(45));
        assert_eq!(timer(90, Refresher::Uac).due_after(), Duration::from_secs(60));
        assert_eq!(timer(1800, Refresher::Uac).due_after(), Duration::from_secs(1768));
        assert_eq!(timer(1800, Refresher::Uas).header(), "1800;refresher=uas");
    }
}
