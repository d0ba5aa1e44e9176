//! Boxes and the letterbox transform.

/// An axis-aligned box in pixels, corners inclusive-exclusive: `x1 <= x2`, `y1 <= y2`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    #[must_use]
    pub fn new(x1: f32, y1: f32, x2: f32, y2: f32) -> Self {
        Self { x1, y1, x2, y2 }
    }

    /// A box from its centre and size, as YOLO heads emit them.
    #[must_use]
    pub fn from_center(cx: f32, cy: f32, w: f32, h: f32) -> Self {
        Self::new(cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0)
    }

    #[must_use]
    pub fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Intersection over union; 0 for disjoint or degenerate boxes.
    #[must_use]
    pub fn iou(&self, other: &Self) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }

    #[must_use]
    pub fn is_finite(&self) -> bool {
        self.x1.is_finite() && self.y1.is_finite() && self.x2.is_finite() && self.y2.is_finite()
    }

    /// The box clamped to `[0, w] × [0, h]`.
    #[must_use]
    pub fn clamp(&self, w: f32, h: f32) -> Self {
        Self::new(
            self.x1.clamp(0.0, w),
            self.y1.clamp(0.0, h),
            self.x2.clamp(0.0, w),
            self.y2.clamp(0.0, h),
        )
    }
}

/// One detected object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub class: u32,
    pub score: f32,
    pub bbox: BBox,
}

/// How a `src_w × src_h` frame was placed into the `dst_w × dst_h` network input:
/// network = source · scale + pad. With aspect kept, `scale_x == scale_y`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Letterbox {
    pub src_w: u32,
    pub src_h: u32,
    pub dst_w: u32,
    pub dst_h: u32,
    pub scale_x: f32,
    pub scale_y: f32,
    /// Left padding in network pixels.
    pub pad_x: u32,
    /// Top padding in network pixels.
    pub pad_y: u32,
}

impl Letterbox {
    /// Fits the source into the destination. `keep_aspect` scales both axes alike and pads the
    /// rest; `symmetric` splits that padding evenly (else it all goes right and bottom).
    #[must_use]
    pub fn fit(
        src_w: u32,
        src_h: u32,
        dst_w: u32,
        dst_h: u32,
        keep_aspect: bool,
        symmetric: bool,
    ) -> Self {
        let (sw, sh) = (src_w.max(1) as f32, src_h.max(1) as f32);
        if !keep_aspect {
            return Self {
                src_w,
                src_h,
                dst_w,
                dst_h,
                scale_x: dst_w as f32 / sw,
                scale_y: dst_h as f32 / sh,
                pad_x: 0,
                pad_y: 0,
            };
        }
        let scale = (dst_w as f32 / sw).min(dst_h as f32 / sh);
        let (new_w, new_h) = (
            Self::scaled(sw, scale, dst_w),
            Self::scaled(sh, scale, dst_h),
        );
        let (pad_x, pad_y) = if symmetric {
            ((dst_w - new_w) / 2, (dst_h - new_h) / 2)
        } else {
            (0, 0)
        };
        Self {
            src_w,
            src_h,
            dst_w,
            dst_h,
            scale_x: scale,
            scale_y: scale,
            pad_x,
            pad_y,
        }
    }

    fn scaled(len: f32, scale: f32, limit: u32) -> u32 {
        ((len * scale).round() as u32).clamp(1, limit.max(1))
    }

    /// Width and height of the resized image inside the padding.
    #[must_use]
    pub fn inner_size(&self) -> (u32, u32) {
        (
            Self::scaled(self.src_w as f32, self.scale_x, self.dst_w),
            Self::scaled(self.src_h as f32, self.scale_y, self.dst_h),
        )
    }

    /// Maps a box in network pixels back to source pixels, clamped to the frame.
    #[must_use]
    pub fn to_source(&self, b: &BBox) -> BBox {
        let (px, py) = (self.pad_x as f32, self.pad_y as f32);
        BBox::new(
            (b.x1 - px) / self.scale_x,
            (b.y1 - py) / self.scale_y,
            (b.x2 - px) / self.scale_x,
            (b.y2 - py) / self.scale_y,
        )
        .clamp(self.src_w as f32, self.src_h as f32)
    }

    /// Maps a box in source pixels into network pixels.
    #[must_use]
    pub fn to_network(&self, b: &BBox) -> BBox {
        let (px, py) = (self.pad_x as f32, self.pad_y as f32);
        BBox::new(
            b.x1 * self.scale_x + px,
            b.y1 * self.scale_y + py,
            b.x2 * self.scale_x + px,
            b.y2 * self.scale_y + py,
        )
    }
}

/// The order of a network input's dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TensorLayout {
    Nchw,
    Nhwc,
}

impl TensorLayout {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nchw => "nchw",
            Self::Nhwc => "nhwc",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn letterbox_720p_into_640_pads_top_and_bottom_evenly() {
        let lb = Letterbox::fit(1280, 720, 640, 640, true, true);
        assert_eq!(lb.inner_size(), (640, 360));
        assert_eq!((lb.pad_x, lb.pad_y), (0, 140));
        assert!((lb.scale_x - 0.5).abs() < 1e-6);
    }

    #[test]
    fn iou_of_half_overlap() {
        let a = BBox::new(0.0, 0.0, 2.0, 2.0);
        let b = BBox::new(1.0, 0.0, 3.0, 2.0);
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
        assert!(a.iou(&BBox::new(5.0, 5.0, 6.0, 6.0)).abs() < f32::EPSILON);
    }

    proptest! {
        /// Letterbox then unletterbox returns every in-frame box within 1 px.
        #[test]
        fn letterbox_round_trip_within_a_pixel(
            sw in 16u32..2000, sh in 16u32..2000, dw in 32u32..1024, dh in 32u32..1024,
            keep in any::<bool>(), sym in any::<bool>(),
            fx1 in 0.0f32..1.0, fy1 in 0.0f32..1.0, fx2 in 0.0f32..1.0, fy2 in 0.0f32..1.0,
        ) {
            let lb = Letterbox::fit(sw, sh, dw, dh, keep, sym);
            let (x1, x2) = (fx1.min(fx2) * sw as f32, fx1.max(fx2) * sw as f32);
            let (y1, y2) = (fy1.min(fy2) * sh as f32, fy1.max(fy2) * sh as f32);
            let b = BBox::new(x1, y1, x2, y2);
            let back = lb.to_source(&lb.to_network(&b));
            for (p, q) in [(b.x1, back.x1), (b.y1, back.y1), (b.x2, back.x2), (b.y2, back.y2)] {
                prop_assert!((p - q).abs() <= 1.0, "{b:?} -> {back:?}");
            }
            let (iw, ih) = lb.inner_size();
            prop_assert!(iw + 2 * lb.pad_x <= dw && ih + 2 * lb.pad_y <= dh);
        }
    }
}
