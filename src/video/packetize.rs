//! RTP payloads of H.264 NAL units (RFC 6184, packetization mode 1): a unit that fits goes in
//! one packet as it is (single NAL unit packet), a larger one is cut into FU-A fragments.

/// NAL unit type of a fragmentation unit A.
const FU_A: u8 = 28;

/// The RTP payloads carrying `nal`, none longer than `max` bytes (at least 3).
pub fn payloads(nal: &[u8], max: usize) -> Vec<Vec<u8>> {
    let Some((&header, body)) = nal.split_first() else { return Vec::new() };
    if nal.len() <= max {
        return vec![nal.to_vec()];
    }
    let indicator = (header & 0xE0) | FU_A;
    let chunk = max.max(3) - 2;
    let count = body.len().div_ceil(chunk);
    body.chunks(chunk)
        .enumerate()
        .map(|(i, part)| {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i + 1 == count { 0x40 } else { 0 };
            let mut p = Vec::with_capacity(part.len() + 2);
            p.extend_from_slice(&[indicator, start | end | (header & 0x1F)]);
            p.extend_from_slice(part);
            p
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_units_go_whole_and_large_ones_in_fu_a_fragments_that_rebuild_them() {
        assert_eq!(payloads(&[0x67, 1, 2], 10), vec![vec![0x67, 1, 2]]);
        assert!(payloads(&[], 10).is_empty());
        let nal: Vec<u8> = std::iter::once(0x65).chain((0..3000u32).map(|i| i as u8)).collect();
        let parts = payloads(&nal, 1200);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= 1200 && p[0] == (0x60 | FU_A)));
        assert_eq!(parts[0][1], 0x80 | 5, "start bit and the unit's type");
        assert_eq!(parts[1][1], 5);
        assert_eq!(parts[2][1], 0x40 | 5, "end bit");
        let mut rebuilt = vec![(parts[0][0] & 0xE0) | (parts[0][1] & 0x1F)];
        for p in &parts {
            rebuilt.extend_from_slice(&p[2..]);
        }
        assert_eq!(rebuilt, nal);
    }
}
