//! The passport QR: drawn as SVG for the screen, and read back from images and camera frames
//! (with `rqrr`, in Rust, so no phone-vendor scanning service is needed).

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

/// An SVG image of `text` as a QR code (error correction Q, a 4-module quiet zone), scaled by the
/// UI. The credential is upper-case Base45, so the encoder picks the compact alphanumeric mode.
pub fn svg(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::Q).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(256, 256)
            .quiet_zone(true)
            .dark_color(svg::Color("#111111"))
            .light_color(svg::Color("#ffffff"))
            .build(),
    )
}

/// The text of the first QR code found in a grey-scale frame (`width` × `height`, one byte per
/// pixel, row by row), e.g. a camera frame. `None` when there is none or the sizes do not match.
pub fn decode_luma(width: usize, height: usize, luma: &[u8]) -> Option<String> {
    if width == 0 || height == 0 || luma.len() != width.checked_mul(height)? {
        return None;
    }
    let mut img =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| luma[y * width + x]);
    img.detect_grids()
        .into_iter()
        .find_map(|g| g.decode().ok().map(|(_, text)| text))
}

/// The text of the first QR code in an image file's bytes (PNG or JPEG).
pub fn decode_image(bytes: &[u8]) -> Option<String> {
    let img = image::load_from_memory(bytes).ok()?.to_luma8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    decode_luma(w, h, img.as_raw())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Render `text` the way the screen shows it, as a grey-scale raster.
    fn raster(text: &str, scale: usize) -> (usize, Vec<u8>) {
        let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::Q).unwrap();
        let n = code.width();
        let quiet = 4;
        let size = (n + 2 * quiet) * scale;
        let mut px = vec![255u8; size * size];
        for y in 0..n {
            for x in 0..n {
                if code[(x, y)] == qrcode::Color::Dark {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            px[((y + quiet) * scale + dy) * size + (x + quiet) * scale + dx] = 0;
                        }
                    }
                }
            }
        }
        (size, px)
    }

    #[test]
    fn a_png_of_the_code_decodes_to_the_same_text() {
        let text = "UP2:TEST+CODE 0123456789ABCDEFGHIJ$%*+-./:";
        let (size, px) = raster(text, 4);
        let img = image::GrayImage::from_raw(size as u32, size as u32, px).unwrap();
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        assert_eq!(decode_image(&png).as_deref(), Some(text));
        assert_eq!(decode_image(b"not an image"), None);
        assert_eq!(decode_luma(10, 10, &[0; 5]), None);
    }
}
