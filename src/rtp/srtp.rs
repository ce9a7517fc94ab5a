//! SRTP keyed by SDES (RFC 3711, RFC 4568): the `AES_CM_128_HMAC_SHA1_80` suite every SIP phone
//! offers, one master key per direction as `a=crypto` carries them. The cipher and the
//! authentication are webrtc-rs's `webrtc-srtp`; this module only keys it and keeps both
//! directions of a call together.

use base64::Engine as _;
use bytes::Bytes;
use rand::RngCore;
use webrtc_srtp::context::Context;
use webrtc_srtp::option::srtp_replay_protection;
use webrtc_srtp::protection_profile::ProtectionProfile;

/// The crypto suite the device offers and accepts.
pub const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";
/// Bytes of the master key.
const KEY_LEN: usize = 16;
/// Bytes of the master salt.
const SALT_LEN: usize = 14;
/// Packets remembered to refuse replays (RFC 3711 section 3.3.2 asks for at least 64).
const REPLAY_WINDOW: usize = 128;

/// A master key and salt (30 bytes), as `a=crypto`'s `inline:` parameter carries them.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey([u8; KEY_LEN + SALT_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn random() -> MasterKey {
        let mut key = [0u8; KEY_LEN + SALT_LEN];
        rand::thread_rng().fill_bytes(&mut key);
        MasterKey(key)
    }

    /// The key of `a=crypto` key parameters (`inline:<base64>[|lifetime]`); `None` when they
    /// are malformed, use a master key index (MKI, which the device does not do), or hold
    /// several keys.
    pub fn from_key_params(params: &str) -> Option<MasterKey> {
        let inline = params.trim().strip_prefix("inline:")?;
        let mut parts = inline.split('|');
        let encoded = parts.next()?;
        // A lifetime may follow; an MKI (`n:len`) may not.
        if parts.any(|p| p.contains(':')) || inline.contains(';') {
            return None;
        }
        let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
        Some(MasterKey(bytes.try_into().ok()?))
    }

    /// The key parameters of `a=crypto`: `inline:<base64>`.
    pub fn key_params(&self) -> String {
        format!("inline:{}", base64::engine::general_purpose::STANDARD.encode(self.0))
    }

    fn context(&self) -> Result<Context, String> {
        let (key, salt) = self.0.split_at(KEY_LEN);
        let replay = Some(srtp_replay_protection(REPLAY_WINDOW));
        Context::new(key, salt, ProtectionProfile::Aes128CmHmacSha1_80, replay, None).map_err(|e| e.to_string())
    }
}

/// The sending direction of a call's SRTP, keyed with our key.
pub struct Protector(Context);

/// The receiving direction of a call's SRTP, keyed with the peer's key.
pub struct Opener(Context);

impl std::fmt::Debug for Protector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Protector(..)")
    }
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Opener(..)")
    }
}

/// Both directions of a call whose keys are `local` (ours) and `remote` (the peer's).
pub fn keyed(local: &MasterKey, remote: &MasterKey) -> Result<(Protector, Opener), String> {
    Ok((Protector(local.context()?), Opener(remote.context()?)))
}

impl Protector {
    /// An RTP packet encrypted and authenticated; `None` if it is not RTP.
    pub fn protect(&mut self, rtp: &[u8]) -> Option<Bytes> {
        self.0.encrypt_rtp(rtp).ok()
    }
}

impl Opener {
    /// A received SRTP packet checked and decrypted; `None` when it fails authentication, is
    /// a replay, or is not SRTP.
    pub fn open(&mut self, srtp: &[u8]) -> Option<Bytes> {
        self.0.decrypt_rtp(srtp).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;

    #[test]
    fn keys_read_what_they_write_and_refuse_what_the_device_does_not_do() {
        let key = MasterKey::random();
        assert_eq!(MasterKey::from_key_params(&key.key_params()), Some(key));
        let lifetime = format!("{}|2^31", key.key_params());
        assert_eq!(MasterKey::from_key_params(&lifetime), Some(key));
        assert_eq!(MasterKey::from_key_params(&format!("{}|2^20|1:4", key.key_params())), None, "MKI");
        assert_eq!(MasterKey::from_key_params("inline:c2hvcnQ="), None, "too short");
        assert_eq!(MasterKey::from_key_params("uri:https://example.com/key"), None);
        assert_eq!(MasterKey::from_key_params("inline:!!!"), None);
    }

    #[test]
    fn packets_round_trip_between_two_ends_and_tampering_is_caught() {
        let (a, b) = (MasterKey::random(), MasterKey::random());
        let ((mut door, mut door_in), (_, mut phone)) = (keyed(&a, &b).expect("door"), keyed(&b, &a).expect("phone"));
        let header = RtpHeader { marker: false, payload_type: 0, sequence: 7, timestamp: 160, ssrc: 42 };
        let rtp = header.packet(&[0x55; 160]);
        let sent = door.protect(&rtp).expect("protected");
        assert_eq!(sent.len(), rtp.len() + 10, "an 80-bit tag");
        assert_ne!(&sent[12..172], &rtp[12..], "the payload is encrypted");
        assert_eq!(phone.open(&sent).as_deref(), Some(&rtp[..]));
        assert_eq!(phone.open(&sent), None, "a replay is refused");
        let mut forged = door.protect(&header.packet(&[1; 160])).expect("protected").to_vec();
        forged[20] ^= 1;
        assert_eq!(phone.open(&forged), None, "a changed packet fails authentication");
        assert_eq!(door_in.open(&sent), None, "the sender's own key does not open it");
    }
}
