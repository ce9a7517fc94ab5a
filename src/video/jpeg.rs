//! Motion JPEG over RTP (RFC 2435): each picture encoded as a baseline 4:2:0 JPEG with the
//! standard Huffman tables (by `jpeg-encoder`), then sent as its entropy-coded scan behind the
//! RFC's 8-byte header, type 1 (4:2:0), Q 255 with the quantization tables in the first packet
//! of each picture, so a receiver rebuilds the JPEG headers itself.
//!
//! The JPEG is taken apart by hand: the RFC sends only pieces of it, and no maintained crate
//! packetizes JPEG for RTP.

use super::pattern::Picture;

/// Payload type of JPEG (static, RFC 3551).
pub const PAYLOAD_TYPE: u8 = 26;
/// Quality of the encoded pictures.
const QUALITY: u8 = 70;
/// RFC 2435 type 1: 4:2:0 (two by two luma blocks per chroma block).
const TYPE_420: u8 = 1;
/// Q values from 128 carry their quantization tables in-band.
const Q_IN_BAND: u8 = 255;

/// The pieces of a baseline JPEG the RFC sends: quantization tables (luma, chroma; zigzag
/// order, 8-bit) and the entropy-coded scan.
struct JpegParts<'a> {
    tables: Vec<&'a [u8]>,
    scan: &'a [u8],
}

/// The RTP payloads of `picture` (sides multiples of 8, at most 2040), none longer than `max`.
pub fn payloads(picture: &Picture, max: usize) -> Result<Vec<Vec<u8>>, String> {
    let (w, h) = (picture.width, picture.height);
    let (Ok(w8), Ok(h8)) = (u8::try_from(w / 8), u8::try_from(h / 8)) else {
        return Err(format!("{w}x{h} is too large for RTP JPEG"));
    };
    let jpeg = encode(picture)?;
    let parts = parts(&jpeg).ok_or("the encoder's JPEG could not be taken apart")?;
    let mut tables = Vec::with_capacity(4 + 128);
    tables.extend_from_slice(&[0, 0]); // MBZ, precision: 8-bit tables
    let length: usize = parts.tables.iter().map(|t| t.len()).sum();
    tables.extend_from_slice(&u16::try_from(length).map_err(|_| "quantization tables too long")?.to_be_bytes());
    for table in &parts.tables {
        tables.extend_from_slice(table);
    }
    let mut out = Vec::new();
    let mut offset = 0usize;
    while offset < parts.scan.len() || out.is_empty() {
        let mut packet = Vec::with_capacity(max);
        let offset_bytes = u32::try_from(offset).map_err(|_| "picture too large")?.to_be_bytes();
        packet.push(0); // type-specific
        packet.extend_from_slice(&offset_bytes[1..]);
        packet.extend_from_slice(&[TYPE_420, Q_IN_BAND, w8, h8]);
        if offset == 0 {
            packet.extend_from_slice(&tables);
        }
        let room = max.saturating_sub(packet.len()).max(1);
        let end = (offset + room).min(parts.scan.len());
        packet.extend_from_slice(&parts.scan[offset..end]);
        offset = end;
        out.push(packet);
    }
    Ok(out)
}

/// `picture` as a baseline JPEG, 4:2:0, standard Huffman tables.
fn encode(picture: &Picture) -> Result<Vec<u8>, String> {
    let (w, h, cw) = (picture.width, picture.height, picture.width / 2);
    let mut ycbcr = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let c = (y / 2) * cw + x / 2;
            ycbcr.extend_from_slice(&[picture.y[y * w + x], picture.u[c], picture.v[c]]);
        }
    }
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else { return Err(format!("{w}x{h} too large")) };
    let mut jpeg = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, QUALITY);
    encoder.set_sampling_factor(jpeg_encoder::SamplingFactor::R_4_2_0);
    encoder.encode(&ycbcr, w16, h16, jpeg_encoder::ColorType::Ycbcr).map_err(|e| e.to_string())?;
    Ok(jpeg)
}

/// Walks a baseline JPEG's segments for its 8-bit quantization tables and its scan.
fn parts(jpeg: &[u8]) -> Option<JpegParts<'_>> {
    let mut at = 2; // after SOI
    let mut tables = Vec::new();
    while at + 4 <= jpeg.len() {
        if jpeg[at] != 0xFF {
            return None;
        }
        let marker = jpeg[at + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        let segment = jpeg.get(at + 4..at + 2 + length)?;
        match marker {
            // DQT: one or more tables, each a precision/id byte and 64 values.
            0xDB => {
                for table in segment.chunks(65) {
                    if table.len() != 65 || table[0] >> 4 != 0 {
                        return None; // 16-bit tables are not sent by RFC 2435 type 1
                    }
                    tables.push(&table[1..]);
                }
            }
            // SOF1..SOF15 other than baseline: the RFC carries baseline only.
            0xC1..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return None,
            // DRI: restart markers would need RFC 2435 types 64-127.
            0xDD => return None,
            // SOS: the scan runs to the EOI at the end.
            0xDA => {
                let scan = jpeg.get(at + 2 + length..jpeg.len().checked_sub(2)?)?;
                return (tables.len() == 2).then_some(JpegParts { tables, scan });
            }
            _ => {}
        }
        at += 2 + length;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_goes_out_as_rfc_2435_type_1_with_its_tables_first() {
        let picture = Picture::test_pattern(320, 240, 3, &["JPEG".to_owned()]);
        let packets = payloads(&picture, 1400).expect("packets");
        assert!(packets.len() > 1, "a 320x240 picture takes more than one packet");
        let first = &packets[0];
        assert_eq!(&first[..8], &[0, 0, 0, 0, TYPE_420, Q_IN_BAND, 40, 30]);
        assert_eq!(&first[8..12], &[0, 0, 0, 128], "two 64-byte tables follow");
        let mut offset = 0;
        for (i, p) in packets.iter().enumerate() {
            assert!(p.len() <= 1400);
            let at = u32::from_be_bytes([0, p[1], p[2], p[3]]) as usize;
            assert_eq!(at, offset, "packet {i} continues where the last ended");
            offset += p.len() - if i == 0 { 8 + 4 + 128 } else { 8 };
        }
        let jpeg = encode(&picture).expect("jpeg");
        let scan = parts(&jpeg).expect("parts").scan;
        assert_eq!(offset, scan.len(), "the whole scan is sent");
        assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9]);
    }

    #[test]
    fn what_the_rfc_cannot_carry_is_refused() {
        assert!(parts(&[0xFF, 0xD8, 0xFF, 0xC2, 0, 2]).is_none(), "progressive");
        assert!(parts(&[0xFF, 0xD8, 0xFF, 0xDD, 0, 4, 0, 8]).is_none(), "restart interval");
        assert!(parts(&[0xFF, 0xD8, 0x00]).is_none(), "not a segment");
        assert!(payloads(&Picture::test_pattern(2048, 16, 0, &[]), 1400).is_err(), "wider than 2040");
    }
}
