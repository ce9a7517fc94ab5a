//! Session timers (RFC 4028), the device as callee or caller: what a request asks for, what
//! a 2xx answers, and when a refresh or the session's end is due. Sans I/O: the agent keeps
//! the timers and sends the UPDATE or BYE.
//!
//! An INVITE with `Session-Expires` below the device's `Min-SE` (the RFC's 90 s) gets 422
//! naming it. Otherwise the interval is taken as offered, and the refresher is whom the
//! request names, else the caller when it supports `timer`, else the device. On the calls it
//! places the device asks for [`OFFERED_INTERVAL`] and refreshes when the 2xx names it (or no
//! one). The refresher refreshes at half the interval; the other side ends the session (BYE)
//! when no refresh came within the interval minus a third of it (at most 32 s), as section 10
//! of the RFC says. `refresher=uac|uas` always names a side of the transaction that carries
//! it, so the timer itself only remembers whether the device refreshes.

use std::time::Duration;

use super::message::SipMessage;

/// The smallest session interval the device accepts, in seconds (RFC 4028's minimum).
pub const MIN_SE: u32 = 90;

/// The session interval the device asks for on the calls it places (the RFC's recommended).
pub const OFFERED_INTERVAL: u32 = 1800;

/// A session timer agreed for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    /// The session interval, in seconds.
    pub interval: u32,
    /// Whether the device refreshes (else the peer does, and the device watches).
    pub device_refreshes: bool,
    /// Whether the peer supports `timer` (then our 2xx says `Require: timer`).
    pub peer_supports: bool,
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

/// A `Session-Expires` value: the interval and the `refresher` parameter, lower-cased.
pub(super) fn session_expires(message: &SipMessage) -> Option<(u32, Option<String>)> {
    let value = message.header("Session-Expires").or_else(|| message.header("x"))?;
    let mut parts = value.split(';').map(str::trim);
    let interval = parts.next()?.parse::<u32>().ok()?;
    let named = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("refresher").then(|| v.trim().to_ascii_lowercase())
    });
    Some((interval, named))
}

/// What `request` from the peer (an INVITE, re-INVITE or UPDATE) asks for.
pub fn asked(request: &SipMessage) -> Asked {
    let Some((interval, named)) = session_expires(request) else { return Asked::None };
    if interval < MIN_SE {
        return Asked::TooSmall;
    }
    let peer_supports = request
        .header_values("Supported")
        .iter()
        .chain(request.header_values("k").iter())
        .any(|o| o.eq_ignore_ascii_case("timer"));
    // `uac` is the peer, which sent the request.
    let peer_refreshes = match named.as_deref() {
        Some("uac") => true,
        Some("uas") => false,
        _ => peer_supports,
    };
    Asked::Timer(SessionTimer { interval, device_refreshes: !peer_refreshes, peer_supports })
}

/// The session timer a 2xx to the device's own request sets, if it has one: the device
/// refreshes unless the 2xx names the peer (`uas`), as RFC 4028 section 7.2 says.
pub fn answered(response: &SipMessage) -> Option<SessionTimer> {
    let (interval, named) = session_expires(response)?;
    let device_refreshes = named.as_deref() != Some("uas");
    Some(SessionTimer { interval: interval.max(MIN_SE), device_refreshes, peer_supports: true })
}

/// The `Min-SE` a 422 asks for.
pub fn min_se(response: &SipMessage) -> Option<u32> {
    response.header("Min-SE")?.split(';').next()?.trim().parse().ok()
}

impl SessionTimer {
    /// The `Session-Expires` value of our 2xx answering the peer's request.
    pub fn answer_header(&self) -> String {
        let side = if self.device_refreshes { "uas" } else { "uac" };
        format!("{};refresher={side}", self.interval)
    }

    /// The `Session-Expires` value of a refresh the device sends (it stays the refresher).
    pub fn refresh_header(&self) -> String {
        format!("{};refresher=uac", self.interval)
    }

    /// Puts the timer's headers on `response`, the 2xx answering the request that asked.
    pub fn answer(&self, response: &mut SipMessage) {
        response.set_header("Session-Expires", self.answer_header());
        if self.peer_supports {
            response.set_header("Require", "timer");
        }
    }

    /// How long after the last refresh the device's next one is due (it refreshes), or the
    /// session ends without one (the peer refreshes); in device time, before `--time-scale`.
    pub fn due_after(&self) -> Duration {
        let interval = u64::from(self.interval);
        Duration::from_secs(if self.device_refreshes { interval / 2 } else { interval - (interval / 3).min(32) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(start: &str, headers: &str) -> SipMessage {
        let text = format!(
            "{start}\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
             From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:door@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
             {headers}Content-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.as_bytes()).expect("parse")
    }

    fn invite(headers: &str) -> SipMessage {
        message("INVITE sip:door@127.0.0.1 SIP/2.0", headers)
    }

    #[test]
    fn the_refresher_is_named_or_the_caller_that_supports_timer() {
        let t = |h: &str| match asked(&invite(h)) {
            Asked::Timer(t) => (t.interval, t.device_refreshes, t.peer_supports),
            other => panic!("{other:?}"),
        };
        assert_eq!(t("Session-Expires: 1800;refresher=uas\r\n"), (1800, true, false));
        assert_eq!(t("Session-Expires: 90\r\nSupported: 100rel, timer\r\n"), (90, false, true));
        assert_eq!(t("Session-Expires: 120\r\n"), (120, true, false));
        assert_eq!(t("x: 300;refresher=UAC\r\nk: timer\r\n"), (300, false, true));
    }

    #[test]
    fn too_small_absent_and_malformed_intervals() {
        assert_eq!(asked(&invite("Session-Expires: 89\r\n")), Asked::TooSmall);
        assert_eq!(asked(&invite("")), Asked::None);
        assert_eq!(asked(&invite("Session-Expires: soon\r\n")), Asked::None);
    }

    #[test]
    fn a_2xx_to_the_device_makes_it_refresher_unless_it_names_the_peer() {
        let ok = |h: &str| answered(&message("SIP/2.0 200 OK", h)).map(|t| (t.interval, t.device_refreshes));
        assert_eq!(ok("Session-Expires: 1800;refresher=uac\r\n"), Some((1800, true)));
        assert_eq!(ok("Session-Expires: 900\r\n"), Some((900, true)), "no refresher named: the caller");
        assert_eq!(ok("Session-Expires: 90;refresher=uas\r\n"), Some((90, false)));
        assert_eq!(ok(""), None, "the callee has no session timer");
        assert_eq!(min_se(&message("SIP/2.0 422 Session Interval Too Small", "Min-SE: 3600\r\n")), Some(3600));
    }

    #[test]
    fn refreshes_at_half_and_expiry_a_third_early_at_most_32_s() {
        let timer = |interval, device_refreshes| SessionTimer { interval, device_refreshes, peer_supports: true };
        assert_eq!(timer(90, true).due_after(), Duration::from_secs(45));
        assert_eq!(timer(90, false).due_after(), Duration::from_secs(60));
        assert_eq!(timer(1800, false).due_after(), Duration::from_secs(1768));
        assert_eq!(timer(1800, true).answer_header(), "1800;refresher=uas");
        assert_eq!(timer(1800, false).answer_header(), "1800;refresher=uac");
        assert_eq!(timer(1800, true).refresh_header(), "1800;refresher=uac", "the device sends it and stays refresher");
    }
}
