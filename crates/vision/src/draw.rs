//! Boxes and labels drawn onto a frame for the preview.

use font8x8::legacy::BASIC_LEGACY;
use vigil_detect::BBox;
use vigil_frame::Track;

use crate::jpeg::RgbImage;

/// One box to draw, with its caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlay {
    pub bbox: BBox,
    pub color: [u8; 3],
    pub label: String,
}

const PALETTE: [[u8; 3]; 8] = [
    [255, 64, 64],
    [64, 200, 64],
    [64, 128, 255],
    [255, 200, 0],
    [255, 0, 255],
    [0, 220, 220],
    [255, 128, 0],
    [160, 100, 255],
];

/// The overlay for a set of tracks: colour by class, caption `id label`.
#[must_use]
pub fn overlays(tracks: &[Track], labels: &[String]) -> Vec<Overlay> {
    tracks
        .iter()
        .map(|t| Overlay {
            bbox: t.bbox,
            color: PALETTE[t.class as usize % PALETTE.len()],
            label: format!(
                "{} {}",
                t.id,
                labels
                    .get(t.class as usize)
                    .map_or_else(|| t.class.to_string(), Clone::clone)
            ),
        })
        .collect()
}

const THICKNESS: u32 = 2;
const GLYPH: u32 = 8;

/// Draws each overlay: a rectangle outline and its label on a filled strip above the box.
pub fn draw_overlay(img: &mut RgbImage, overlays: &[Overlay]) {
    for o in overlays {
        let b = o
            .bbox
            .clamp(img.width as f32 - 1.0, img.height as f32 - 1.0);
        let (x1, y1, x2, y2) = (b.x1 as u32, b.y1 as u32, b.x2 as u32, b.y2 as u32);
        for t in 0..THICKNESS {
            fill(img, x1, y1 + t, x2, y1 + t, o.color);
            fill(
                img,
                x1,
                y2.saturating_sub(t),
                x2,
                y2.saturating_sub(t),
                o.color,
            );
            fill(img, x1 + t, y1, x1 + t, y2, o.color);
            fill(
                img,
                x2.saturating_sub(t),
                y1,
                x2.saturating_sub(t),
                y2,
                o.color,
            );
        }
        let text_w = o.label.len() as u32 * GLYPH + 2;
        let ty = y1.saturating_sub(GLYPH + 2);
        fill(img, x1, ty, x1 + text_w, ty + GLYPH + 1, o.color);
        for (i, ch) in o.label.bytes().enumerate() {
            text_glyph(img, x1 + 1 + i as u32 * GLYPH, ty + 1, ch);
        }
    }
}

/// Fills the inclusive rectangle, clipped to the image.
fn fill(img: &mut RgbImage, x1: u32, y1: u32, x2: u32, y2: u32, color: [u8; 3]) {
    if img.width == 0 || img.height == 0 {
        return;
    }
    let (x2, y2) = (x2.min(img.width - 1), y2.min(img.height - 1));
    for y in y1..=y2 {
        for x in x1..=x2 {
            let i = ((y * img.width + x) * 3) as usize;
            img.pixels[i..i + 3].copy_from_slice(&color);
        }
    }
}

fn text_glyph(img: &mut RgbImage, x0: u32, y0: u32, ch: u8) {
    let glyph = BASIC_LEGACY
        .get(usize::from(ch))
        .copied()
        .unwrap_or_default();
    for (dy, row) in glyph.iter().enumerate() {
        for dx in 0..GLYPH {
            if row >> dx & 1 == 1 {
                let (x, y) = (x0 + dx, y0 + dy as u32);
                fill(img, x, y, x, y, [0, 0, 0]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlays_caption_id_and_label() {
        let t = Track {
            id: 12,
            class: 0,
            score: 0.9,
            bbox: BBox::new(0.0, 0.0, 5.0, 5.0),
            hits: 1,
            misses: 0,
            lost: 0,
        };
        let o = overlays(&[t], &["person".to_owned()]);
        assert_eq!(o[0].label, "12 person");
        let unlabeled = overlays(&[Track { class: 9, ..t }], &[]);
        assert_eq!(unlabeled[0].label, "12 9");
    }

    #[test]
    fn draws_outline_and_label_inside_the_image_only() {
        let mut img = RgbImage {
            width: 40,
            height: 40,
            pixels: vec![255; 40 * 40 * 3],
        };
        let red = [255, 0, 0];
        let o = Overlay {
            bbox: BBox::new(10.0, 20.0, 30.0, 60.0),
            color: red,
            label: "7 person".into(),
        };
        draw_overlay(&mut img, &[o]);
        let at = |x: u32, y: u32| &img.pixels[((y * 40 + x) * 3) as usize..][..3];
        assert_eq!(at(10, 25), red);
        assert_eq!(at(20, 25), [255, 255, 255]);
        assert_eq!(at(39, 39), [255, 255, 255]);
        // The label strip above the box holds black glyph pixels.
        assert!((10..40).any(|x| (10..19).any(|y| at(x, y) == [0, 0, 0])));
    }
}
