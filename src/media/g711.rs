//! G.711 µ-law (PCMU) and A-law (PCMA), by the ITU-T G.711 segment rules. Written here because
//! each is a dozen lines and no maintained crate offers only this.

const BIAS: i32 = 0x84;
const CLIP: i32 = 32_635;

/// Encodes one 16-bit linear sample as µ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let mut s = i32::from(sample);
    let sign = if s < 0 {
        s = -s;
        0x80
    } else {
        0
    };
    s = s.min(CLIP) + BIAS;
    let mut exponent = 7;
    let mut mask = 0x4000;
    while exponent > 0 && s & mask == 0 {
        exponent -= 1;
        mask >>= 1;
    }
    let mantissa = (s >> (exponent + 3)) & 0x0F;
    !((sign | (exponent << 4) | mantissa) as u8)
}

/// Decodes one µ-law byte to a 16-bit linear sample.
pub fn ulaw_decode(byte: u8) -> i16 {
    let u = !byte;
    let exponent = i32::from((u >> 4) & 0x07);
    let mantissa = i32::from(u & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << exponent) - BIAS;
    if u & 0x80 != 0 {
        -magnitude as i16
    } else {
        magnitude as i16
    }
}

/// Encodes one 16-bit linear sample as A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let (sign, magnitude) = if sample >= 0 { (0xD5u8, i32::from(sample)) } else { (0x55u8, -i32::from(sample) - 1) };
    let magnitude = magnitude.min(32_767);
    let byte = if magnitude < 256 {
        (magnitude >> 4) as u8
    } else {
        let exponent = 31 - (magnitude as u32).leading_zeros() - 7; // 1..=7
        let mantissa = (magnitude >> (exponent + 3)) & 0x0F;
        ((exponent << 4) as u8) | mantissa as u8
    };
    byte ^ sign
}

/// Decodes one A-law byte to a 16-bit linear sample.
pub fn alaw_decode(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = i32::from((a >> 4) & 0x07);
    let mantissa = i32::from(a & 0x0F);
    let magnitude = if exponent == 0 { (mantissa << 4) + 8 } else { ((mantissa << 4) + 0x108) << (exponent - 1) };
    if a & 0x80 != 0 {
        magnitude as i16
    } else {
        -magnitude as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alaw_known_values_and_round_trip() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        for s in (-32_000i16..32_000).step_by(101) {
            let back = alaw_decode(alaw_encode(s));
            let tolerance = (i32::from(s).abs() / 16).max(16);
            assert!((i32::from(back) - i32::from(s)).abs() <= tolerance, "{s} -> {back}");
        }
    }

    #[test]
    fn known_values_and_round_trip_within_one_step() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        for s in (-32_000i16..32_000).step_by(97) {
            let back = ulaw_decode(ulaw_encode(s));
            // A µ-law step is at most 1/16 of the segment's magnitude.
            let tolerance = (i32::from(s).abs() / 16).max(8);
            assert!((i32::from(back) - i32::from(s)).abs() <= tolerance, "{s} -> {back}");
        }
    }
}
