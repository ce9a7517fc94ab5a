//! The generated picture: colour bars, a bar sweeping across with the frame count, and text
//! lines (device name, time, call state) drawn with an 8x8 bitmap font, in I420 (YUV 4:2:0),
//! the format H.264 encoders take.

use font8x8::UnicodeFonts;

/// One I420 picture: a full-size luma plane and two quarter-size chroma planes.
#[derive(Debug, Clone)]
pub struct Picture {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// Luma, `width * height` bytes.
    pub y: Vec<u8>,
    /// Blue-difference chroma, `width/2 * height/2` bytes.
    pub u: Vec<u8>,
    /// Red-difference chroma, `width/2 * height/2` bytes.
    pub v: Vec<u8>,
}

/// The eight classic bars (white, yellow, cyan, green, magenta, red, blue, black) as BT.601
/// limited-range (Y, U, V) at 75 %.
const BARS: [(u8, u8, u8); 8] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
    (16, 128, 128),
];

impl Picture {
    /// The test pattern of frame `frame` at `width` x `height` (both even), with `lines` of
    /// text drawn over a dark band at the bottom.
    pub fn test_pattern(width: usize, height: usize, frame: u64, lines: &[String]) -> Picture {
        let (cw, ch) = (width / 2, height / 2);
        let mut p = Picture { width, height, y: vec![0; width * height], u: vec![128; cw * ch], v: vec![128; cw * ch] };
        for x in 0..width {
            let (y, u, v) = BARS[x * BARS.len() / width];
            for row in 0..height {
                p.y[row * width + x] = y;
            }
            if x % 2 == 0 {
                for row in 0..ch {
                    p.u[row * cw + x / 2] = u;
                    p.v[row * cw + x / 2] = v;
                }
            }
        }
        // A bar sweeping across once every 64 frames: the picture visibly moves.
        let bar_width = (width / 32).max(2);
        let bar_x = (frame % 64) as usize * (width - bar_width) / 63;
        p.fill(bar_x, 0, bar_width, height / 2, 235);
        let scale = (height / 160).max(1);
        let line_height = 10 * scale;
        let band = lines.len() * line_height + 2 * scale;
        let top = height.saturating_sub(band);
        p.fill(0, top, width, height - top, 16);
        for (i, line) in lines.iter().enumerate() {
            p.text(4 * scale, top + scale + i * line_height, scale, line);
        }
        p
    }

    /// Sets a luma rectangle (clipped to the picture) and greys its chroma.
    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, luma: u8) {
        let (x, y) = (x.min(self.width), y.min(self.height));
        let (x_end, y_end) = ((x + w).min(self.width), (y + h).min(self.height));
        let cw = self.width / 2;
        for row in y..y_end {
            self.y[row * self.width + x..row * self.width + x_end].fill(luma);
            let c = (row / 2) * cw;
            self.u[c + x / 2..c + x_end.div_ceil(2).min(cw)].fill(128);
            self.v[c + x / 2..c + x_end.div_ceil(2).min(cw)].fill(128);
        }
    }

    /// Draws `text` in white with its top-left corner at (x, y), each font pixel `scale`
    /// pixels square; what does not fit is cut off.
    fn text(&mut self, x: usize, y: usize, scale: usize, text: &str) {
        for (i, c) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS.get(c).unwrap_or([0; 8]);
            for (gy, bits) in glyph.iter().enumerate() {
                for gx in 0..8 {
                    if bits & (1 << gx) != 0 {
                        self.fill(x + (i * 8 + gx) * scale, y + gy * scale, scale, scale, 235);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_has_bars_text_and_moves() {
        let a = Picture::test_pattern(640, 480, 0, &["DOOR 12:00:00".to_owned()]);
        let b = Picture::test_pattern(640, 480, 1, &["DOOR 12:00:00".to_owned()]);
        assert_eq!((a.y.len(), a.u.len(), a.v.len()), (640 * 480, 320 * 240, 320 * 240));
        assert_ne!(a.y, b.y, "the sweeping bar moves");
        assert_eq!(a.y[479 * 640 + 600], 16, "the text band is dark");
        let band = &a.y[(480 - 30) * 640..];
        assert!(band.iter().filter(|&&l| l == 235).count() > 100, "text is drawn in the band");
        let other = Picture::test_pattern(640, 480, 0, &["DOOR 12:00:01".to_owned()]);
        assert_ne!(a.y, other.y, "the text is in the picture");
    }

    #[test]
    fn odd_sizes_and_long_text_stay_inside() {
        let p = Picture::test_pattern(162, 120, 5, &["x".repeat(200), "y".repeat(3)]);
        assert_eq!(p.y.len(), 162 * 120);
    }
}
