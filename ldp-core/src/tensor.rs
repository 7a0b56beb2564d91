//! Layouts. `ldp-core` works channels-last (NHWC, which is also MobileVLM's token order
//! `[N, C]`); PyTorch's convolutions are NCHW. These helpers convert one image.

use crate::error::{check_dims, Error};

/// Copies NCHW `src` (`[c][h][w]`) into NHWC `dst` (`[h][w][c]`).
pub fn nchw_to_nhwc<T: Copy>(
    src: &[T],
    dst: &mut [T],
    c: usize,
    h: usize,
    w: usize,
) -> Result<(), Error> {
    check_dims("nchw source", src, &[c, h, w])?;
    check_dims("nhwc destination", dst, &[c, h, w])?;
    for ch in 0..c {
        for p in 0..h * w {
            dst[p * c + ch] = src[ch * h * w + p];
        }
    }
    Ok(())
}

/// Copies NHWC `src` (`[h][w][c]`) into NCHW `dst` (`[c][h][w]`).
pub fn nhwc_to_nchw<T: Copy>(
    src: &[T],
    dst: &mut [T],
    c: usize,
    h: usize,
    w: usize,
) -> Result<(), Error> {
    check_dims("nhwc source", src, &[c, h, w])?;
    check_dims("nchw destination", dst, &[c, h, w])?;
    for ch in 0..c {
        for p in 0..h * w {
            dst[ch * h * w + p] = src[p * c + ch];
        }
    }
    Ok(())
}

/// A 16-byte aligned wrapper for a blob or arena in a `static`:
/// `static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("model.ldp"));`
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);
