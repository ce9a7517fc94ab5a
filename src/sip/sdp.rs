//! SDP offer/answer for audio (RFC 3264, RFC 4566), sans I/O: read a peer's offer or answer
//! (its direction, a refused stream on port 0, `fmtp`, SDES keys), pick a codec from the
//! device's priority list, write our offer or answer with the direction that answers theirs
//! (hold), and decide SRTP from the account's MediaEncryption (RFC 4568).
//!
//! A small reader of our own: the device needs one audio stream's address, formats and
//! direction, and must refuse malformed text without panicking; `sdp-types` would bring a
//! whole session model for the same four fields.

use std::net::IpAddr;

pub use crate::media::Codec;
use crate::model::sip_account::MediaEncryption;
use crate::rtp::srtp::{MasterKey, SUITE};

/// The audio part of a peer's session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteAudio {
    /// Where the peer receives RTP.
    pub address: IpAddr,
    /// Its RTP port (0: audio refused).
    pub port: u16,
    /// Offered formats: payload type and encoding name, in the peer's order.
    pub formats: Vec<(u8, String)>,
    /// The stream's direction (media level over session level; sendrecv when absent).
    pub direction: Direction,
    /// `a=fmtp` parameters by payload type.
    pub fmtp: Vec<(u8, String)>,
    /// Whether the transport protocol is secure RTP (`RTP/SAVP`, `RTP/SAVPF`).
    pub savp: bool,
    /// The `a=crypto` lines (RFC 4568): tag, suite, key parameters.
    pub crypto: Vec<(u32, String, String)>,
}

impl RemoteAudio {
    /// The first SDES key in the suite the device does, with its tag.
    pub fn usable_key(&self) -> Option<(u32, MasterKey)> {
        self.crypto
            .iter()
            .filter(|(_, suite, _)| suite == SUITE)
            .find_map(|(tag, _, params)| Some((*tag, MasterKey::from_key_params(params)?)))
    }
}

/// Our SDES line (RFC 4568): the tag it offers or answers and our key; with `savp` the stream
/// is `RTP/SAVP` (encrypted or nothing), without it `RTP/AVP` carrying the key as an optional
/// extra (best effort: a peer without SRTP answers plain).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sdes {
    /// The crypto attribute's tag.
    pub tag: u32,
    /// Our master key.
    pub key: MasterKey,
    /// `RTP/SAVP` rather than `RTP/AVP`.
    pub savp: bool,
}

/// Why the device refuses media a peer describes, as far as encryption goes (answered 488).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecurityError {
    /// SRTPMandatory and the peer offers no key the device can use (or signalling is not TLS).
    #[error("SRTP is mandatory and the offer has no usable SDES key over TLS")]
    SrtpRequired,
    /// The peer requires SRTP (`RTP/SAVP`) and the device may not, or cannot, do it.
    #[error("the offer is RTP/SAVP and the device does no SRTP on this call")]
    SrtpRefused,
}

/// Our SDES answer to an offer, under `mode` (the accounts' MediaEncryption) on signalling that
/// is TLS or not: `Some` (our key, and the peer's) to encrypt, `None` for plain RTP. SDES keys
/// travel in the SDP, so they are used only over TLS, as the spec requires.
pub fn answer_security(
    mode: MediaEncryption,
    tls: bool,
    offer: &RemoteAudio,
) -> Result<Option<(Sdes, MasterKey)>, SecurityError> {
    let key = offer.usable_key().filter(|_| tls && mode != MediaEncryption::None);
    match (key, mode) {
        (Some((tag, remote)), _) => Ok(Some((Sdes { tag, key: MasterKey::random(), savp: offer.savp }, remote))),
        (None, MediaEncryption::SrtpMandatory) => Err(SecurityError::SrtpRequired),
        (None, _) if offer.savp => Err(SecurityError::SrtpRefused),
        (None, _) => Ok(None),
    }
}

/// The SDES line of our offer under `mode`: none without encryption or over plain
/// signalling, `RTP/SAVP` when mandatory, `RTP/AVP` with a key when best effort.
pub fn offer_security(mode: MediaEncryption, tls: bool) -> Option<Sdes> {
    let savp = match mode {
        MediaEncryption::None => return None,
        _ if !tls => return None,
        MediaEncryption::SrtpMandatory => true,
        MediaEncryption::SrtpBestEffort => false,
    };
    Some(Sdes { tag: 1, key: MasterKey::random(), savp })
}

/// A media direction attribute (RFC 3264 section 5.1, 6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    /// Both ways.
    #[default]
    SendRecv,
    /// The writer only sends (the peer puts us on hold).
    SendOnly,
    /// The writer only receives.
    RecvOnly,
    /// Neither way.
    Inactive,
}

impl Direction {
    fn parse(attribute: &str) -> Option<Direction> {
        Some(match attribute {
            "sendrecv" => Direction::SendRecv,
            "sendonly" => Direction::SendOnly,
            "recvonly" => Direction::RecvOnly,
            "inactive" => Direction::Inactive,
            _ => return None,
        })
    }

    /// The attribute text.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an answer takes to an offer with this one (RFC 3264 section 6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether the peer that wrote this direction wants to receive our media.
    pub fn peer_receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }
}

/// What both sides agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The audio codec.
    pub codec: Codec,
    /// Its payload type on the wire.
    pub payload_type: u8,
    /// The telephone-event payload type, when both sides have it.
    pub telephone_event: Option<u8>,
}

/// Why a session description was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// An `m=` line with a bad port.
    #[error("bad m= port")]
    BadPort,
    /// An `m=` line without a transport protocol.
    #[error("m= without protocol")]
    NoProtocol,
    /// A malformed `a=rtpmap`.
    #[error("bad rtpmap")]
    BadRtpmap,
    /// No `m=audio`.
    #[error("no audio stream")]
    NoAudio,
    /// No `c=` line for the audio.
    #[error("no connection address")]
    NoAddress,
}

/// Most `a=crypto` lines kept from one description.
const MAX_CRYPTO_LINES: usize = 8;

/// Reads the first audio stream of an SDP body.
pub fn parse(sdp: &str) -> Result<RemoteAudio, SdpError> {
    let mut session_address: Option<IpAddr> = None;
    let mut media_address: Option<IpAddr> = None;
    let mut in_audio = false;
    let mut audio: Option<(u16, Vec<u8>)> = None;
    let mut names: Vec<(u8, String)> = Vec::new();
    let (mut session_direction, mut media_direction) = (None, None);
    let mut fmtp = Vec::new();
    let (mut savp, mut crypto) = (false, Vec::new());
    for line in sdp.lines().map(str::trim_end) {
        let Some((kind, value)) = line.split_once('=') else { continue };
        match kind {
            "m" => {
                in_audio = false;
                if audio.is_none() {
                    let mut f = value.split_whitespace();
                    if f.next() == Some("audio") {
                        let port: u16 =
                            f.next().and_then(|p| p.split('/').next()?.parse().ok()).ok_or(SdpError::BadPort)?;
                        let proto = f.next().ok_or(SdpError::NoProtocol)?;
                        savp = proto.starts_with("RTP/SAVP");
                        let pts = f.filter_map(|pt| pt.parse::<u8>().ok()).filter(|pt| *pt < 128).collect();
                        audio = Some((port, pts));
                        in_audio = true;
                    }
                }
            }
            "c" => {
                let address = value.split_whitespace().nth(2).and_then(|a| a.split('/').next()?.parse().ok());
                match (in_audio, audio.is_some()) {
                    (true, _) => media_address = address,
                    (false, false) => session_address = address,
                    _ => {}
                }
            }
            "a" if in_audio => {
                if let Some(map) = value.strip_prefix("rtpmap:") {
                    let (pt, encoding) = map.split_once(' ').ok_or(SdpError::BadRtpmap)?;
                    if let (Ok(pt), Some(name)) = (pt.parse::<u8>(), encoding.split('/').next()) {
                        names.push((pt, name.to_owned()));
                    }
                } else if let Some(params) = value.strip_prefix("fmtp:") {
                    if let Some((pt, p)) = params.split_once(' ').and_then(|(pt, p)| Some((pt.parse::<u8>().ok()?, p)))
                    {
                        fmtp.push((pt, p.trim().to_owned()));
                    }
                } else if let Some(line) = value.strip_prefix("crypto:") {
                    let mut f = line.split_whitespace();
                    if let (Some(Ok(tag)), Some(suite), Some(params)) =
                        (f.next().map(str::parse::<u32>), f.next(), f.next())
                    {
                        if crypto.len() < MAX_CRYPTO_LINES {
                            crypto.push((tag, suite.to_owned(), params.to_owned()));
                        }
                    }
                } else if let Some(d) = Direction::parse(value.trim()) {
                    media_direction = Some(d);
                }
            }
            "a" if audio.is_none() => session_direction = Direction::parse(value.trim()).or(session_direction),
            _ => {}
        }
    }
    let (port, pts) = audio.ok_or(SdpError::NoAudio)?;
    let address = media_address.or(session_address).ok_or(SdpError::NoAddress)?;
    let formats = pts
        .into_iter()
        .map(|pt| {
            let name = names.iter().find(|(p, _)| *p == pt).map(|(_, n)| n.clone()).unwrap_or_else(|| match pt {
                0 => "PCMU".to_owned(),
                8 => "PCMA".to_owned(),
                _ => String::new(),
            });
            (pt, name)
        })
        .collect();
    let direction = media_direction.or(session_direction).unwrap_or_default();
    Ok(RemoteAudio { address, port, formats, direction, fmtp, savp, crypto })
}

/// Picks the first codec of `preference` (device priority list, SDP names) that the peer has.
pub fn negotiate(remote: &RemoteAudio, preference: &[String]) -> Option<Negotiated> {
    let (payload_type, codec) = preference.iter().filter_map(|name| Codec::from_sdp_name(name)).find_map(|codec| {
        remote.formats.iter().find(|(_, n)| Codec::from_sdp_name(n) == Some(codec)).map(|(pt, _)| (*pt, codec))
    })?;
    let wants_events = preference.iter().any(|n| n.eq_ignore_ascii_case("telephone-event"));
    let telephone_event = remote
        .formats
        .iter()
        .find(|(_, n)| wants_events && n.eq_ignore_ascii_case("telephone-event"))
        .map(|(pt, _)| *pt);
    Some(Negotiated { codec, payload_type, telephone_event })
}

/// Writes a session description offering `formats` (payload type, name) on `port`, with
/// `direction` and our SDES key when `sdes` says; `version` is the `o=` line's version,
/// raised with each new description.
pub fn write(
    (session_id, version): (u64, u64),
    address: IpAddr,
    port: u16,
    formats: &[(u8, &str)],
    direction: Direction,
    sdes: Option<&Sdes>,
) -> String {
    let ip = if address.is_ipv4() { "IP4" } else { "IP6" };
    let pts: Vec<String> = formats.iter().map(|(pt, _)| pt.to_string()).collect();
    let mut sdp = format!(
        "v=0\r\no=doorsim {session_id} {version} IN {ip} {address}\r\ns=doorsim\r\nc=IN {ip} {address}\r\nt=0 0\r\n\
         m=audio {port} {} {}\r\n",
        if sdes.is_some_and(|s| s.savp) { "RTP/SAVP" } else { "RTP/AVP" },
        pts.join(" ")
    );
    if let Some(s) = sdes {
        sdp.push_str(&format!("a=crypto:{} {SUITE} {}\r\n", s.tag, s.key.key_params()));
    }
    for (pt, name) in formats {
        sdp.push_str(&format!("a=rtpmap:{pt} {name}/8000\r\n"));
        if name.eq_ignore_ascii_case("telephone-event") {
            sdp.push_str(&format!("a=fmtp:{pt} 0-15\r\n"));
        }
    }
    sdp.push_str(&format!("a=ptime:20\r\na={}\r\n", direction.as_str()));
    sdp
}

/// Our offer from the device's codec priority list: known codecs, then telephone-event on 101.
pub fn offer_formats(preference: &[String]) -> Vec<(u8, &'static str)> {
    let mut formats: Vec<(u8, &'static str)> =
        preference.iter().filter_map(|n| Codec::from_sdp_name(n)).map(|c| (c.payload_type(), c.name())).collect();
    if preference.iter().any(|n| n.eq_ignore_ascii_case("telephone-event")) {
        formats.push((101, "telephone-event"));
    }
    formats
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIPP_OFFER: &str =
        "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn reads_an_offer_and_prefers_the_device_order() {
        let remote = parse(SIPP_OFFER).expect("valid");
        assert_eq!(remote.port, 6000);
        assert_eq!(remote.formats, vec![(8, "PCMA".into()), (0, "PCMU".into()), (101, "telephone-event".into())]);
        let prefs = ["PCMU".to_owned(), "PCMA".to_owned(), "telephone-event".to_owned()];
        let n = negotiate(&remote, &prefs).expect("common codec");
        assert_eq!((n.codec, n.payload_type, n.telephone_event), (Codec::Pcmu, 0, Some(101)));
        let only_a = negotiate(&remote, &["PCMA".to_owned()]).expect("PCMA");
        assert_eq!((only_a.codec, only_a.telephone_event), (Codec::Pcma, None));
    }

    #[test]
    fn no_common_codec_or_no_audio() {
        let remote = parse("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 18\r\n").expect("valid");
        assert_eq!(negotiate(&remote, &["PCMU".to_owned()]), None);
        assert!(parse("v=0\r\nm=video 4000 RTP/AVP 96\r\n").is_err());
        assert!(parse("v=0\r\nm=audio 4000 RTP/AVP 0\r\n").is_err(), "no address");
    }

    #[test]
    fn hold_directions_are_read_at_media_over_session_level() {
        let held = SIPP_OFFER.replace("m=audio", "a=sendonly\r\nm=audio");
        assert_eq!(parse(&held).expect("valid").direction, Direction::SendOnly);
        let inactive = format!("{SIPP_OFFER}a=inactive\r\n");
        assert_eq!(parse(&inactive).expect("valid").direction, Direction::Inactive);
        let both = format!("{held}a=sendrecv\r\n");
        assert_eq!(parse(&both).expect("valid").direction, Direction::SendRecv, "media level wins");
        assert_eq!(Direction::SendOnly.answer(), Direction::RecvOnly);
        assert!(!Direction::SendOnly.peer_receives() && !Direction::Inactive.peer_receives());
        let refused = SIPP_OFFER.replace("m=audio 6000", "m=audio 0");
        assert_eq!(parse(&refused).expect("valid").port, 0);
    }

    #[test]
    fn writes_what_it_reads() {
        let prefs = ["PCMA".to_owned(), "PCMU".to_owned(), "telephone-event".to_owned()];
        let sdp =
            write((7, 7), "127.0.0.1".parse().expect("ip"), 4000, &offer_formats(&prefs), Direction::SendRecv, None);
        let back = parse(&sdp).expect("parses");
        assert_eq!(back.port, 4000);
        assert_eq!(back.direction, Direction::SendRecv);
        assert_eq!(back.fmtp, vec![(101, "0-15".to_owned())]);
        assert_eq!(back.formats.iter().map(|(pt, _)| *pt).collect::<Vec<_>>(), [8, 0, 101]);
        assert!(!back.savp && back.crypto.is_empty());
    }

    #[test]
    fn sdes_keys_are_written_and_read() {
        let sdes = Sdes { tag: 3, key: MasterKey::random(), savp: true };
        let sdp =
            write((1, 1), "127.0.0.1".parse().expect("ip"), 4000, &[(0, "PCMU")], Direction::SendRecv, Some(&sdes));
        assert!(sdp.contains("m=audio 4000 RTP/SAVP 0\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:"), "{sdp}");
        let back = parse(&sdp).expect("parses");
        assert!(back.savp);
        assert_eq!(back.usable_key(), Some((3, sdes.key)));
        let other_suite = sdp.replace("AES_CM_128_HMAC_SHA1_80", "AEAD_AES_256_GCM");
        assert_eq!(parse(&other_suite).expect("parses").usable_key(), None);
    }

    #[test]
    fn media_encryption_decides_srtp_as_the_spec_says() {
        let key = MasterKey::random();
        let plain = parse(SIPP_OFFER).expect("plain");
        let with_key = |savp: bool| {
            let profile = if savp { "RTP/SAVP" } else { "RTP/AVP" };
            let sdp = SIPP_OFFER.replace("RTP/AVP", profile)
                + &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 {}\r\n", key.key_params());
            parse(&sdp).expect("offer")
        };
        use MediaEncryption::{None as Off, SrtpBestEffort as Best, SrtpMandatory as Must};
        // Mandatory: a key over TLS, or 488.
        assert_eq!(answer_security(Must, true, &plain), Err(SecurityError::SrtpRequired));
        assert_eq!(answer_security(Must, false, &with_key(true)), Err(SecurityError::SrtpRequired), "not over UDP");
        let (ours, theirs) = answer_security(Must, true, &with_key(true)).expect("ok").expect("srtp");
        assert_eq!((ours.tag, ours.savp, theirs), (1, true, key));
        // Best effort: a key when there is one, plain otherwise.
        assert_eq!(answer_security(Best, true, &plain), Ok(None));
        assert!(answer_security(Best, true, &with_key(false)).expect("ok").is_some_and(|(s, _)| !s.savp));
        // None: plain, and an RTP/SAVP offer is refused.
        assert_eq!(answer_security(Off, true, &with_key(false)), Ok(None));
        assert_eq!(answer_security(Off, true, &with_key(true)), Err(SecurityError::SrtpRefused));
        assert_eq!(offer_security(Off, true), None);
        assert_eq!(offer_security(Must, false), None, "no keys over plain signalling");
        assert!(offer_security(Must, true).is_some_and(|s| s.savp));
        assert!(offer_security(Best, true).is_some_and(|s| !s.savp));
    }
}
