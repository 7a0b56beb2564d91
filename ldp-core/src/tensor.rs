//! Layouts. `ldp-core` works channels-last (NHWC, which is also MobileVLM's token order
//! `[N, C]`); PyTorch's convolutions are NCHW. These helpers convert one image.

use crate::error::{check_len, Error};

/// Copies NCHW `src` (`[c][h][w]`) into NHWC `dst` (`[h][w][c]`).
pub fn nchw_to_nhwc<T: Copy>(
    src: &[T],
    dst: &mut [T],
    c: usize,
    h: usize,
    w: usize,
) -> Result<(), Error> {
    let n = checked_len(c, h, w)?;
    check_len("nchw source", src, n)?;
    check_len("nhwc destination", dst, n)?;
    // `src` is a `[c][hw]` matrix, `dst` its transpose: blocked so that both sides stay in cache.
    transpose(src, dst, c, h * w);
    Ok(())
}

/// `c·h·w`, or an error when it overflows.
fn checked_len(c: usize, h: usize, w: usize) -> Result<usize, Error> {
    c.checked_mul(h)
        .and_then(|v| v.checked_mul(w))
        .ok_or(Error::InvalidConfig("layout: size overflows usize"))
}

/// `dst[j][i] = src[i][j]` for a `rows × cols` row-major `src` (lengths checked by the caller),
/// in blocks of 8 × 8: full blocks through fixed-size arrays (register shuffles, no bounds
/// checks), edge blocks element by element. The inner loop runs along the shorter side, so the
/// cache lines it half-fills (`min(rows, cols)` of them) are still in L1 when the next block
/// fills their other half.
fn transpose<T: Copy>(src: &[T], dst: &mut [T], rows: usize, cols: usize) {
    const B: usize = 8;
    let block = |dst: &mut [T], i0: usize, j0: usize| {
        let (i1, j1) = ((i0 + B).min(rows), (j0 + B).min(cols));
        if i1 - i0 == B && j1 - j0 == B {
            let blk: [[T; B]; B] = core::array::from_fn(|i| {
                let r = &src[(i0 + i) * cols + j0..][..B];
                core::array::from_fn(|j| r[j])
            });
            for j in 0..B {
                let d = &mut dst[(j0 + j) * rows + i0..][..B];
                for i in 0..B {
                    d[i] = blk[i][j];
                }
            }
        } else {
            for i in i0..i1 {
                let row = &src[i * cols + j0..i * cols + j1];
                for (dj, &v) in row.iter().enumerate() {
                    dst[(j0 + dj) * rows + i] = v;
                }
            }
        }
    };
    if rows <= cols {
        for j0 in (0..cols).step_by(B) {
            for i0 in (0..rows).step_by(B) {
                block(dst, i0, j0);
            }
        }
    } else {
        for i0 in (0..rows).step_by(B) {
            for j0 in (0..cols).step_by(B) {
                block(dst, i0, j0);
            }
        }
    }
}

/// Copies NHWC `src` (`[h][w][c]`) into NCHW `dst` (`[c][h][w]`).
pub fn nhwc_to_nchw<T: Copy>(
    src: &[T],
    dst: &mut [T],
    c: usize,
    h: usize,
    w: usize,
) -> Result<(), Error> {
    let n = checked_len(c, h, w)?;
    check_len("nhwc source", src, n)?;
    check_len("nchw destination", dst, n)?;
    transpose(src, dst, h * w, c);
    Ok(())
}

/// A 16-byte aligned wrapper for a blob or arena in a `static`:
/// `static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("model.ldp"));`
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);

#[cfg(test)]
mod layout_tests {
    extern crate std;
    use super::*;

    /// The blocked transposes against the element-by-element definition, on sizes around the
    /// 16 × 16 block, and their round trip.
    #[test]
    fn layout_conversions_match_definition() {
        for (c, h, w) in [
            (1, 1, 1),
            (3, 5, 7),
            (16, 4, 4),
            (17, 3, 11),
            (128, 8, 8),
            (33, 1, 40),
        ] {
            let n = c * h * w;
            let x: std::vec::Vec<u32> = (0..n as u32).collect();
            let mut y = std::vec![0u32; n];
            nchw_to_nhwc(&x, &mut y, c, h, w).unwrap();
            for ch in 0..c {
                for p in 0..h * w {
                    assert_eq!(y[p * c + ch], x[ch * h * w + p]);
                }
            }
            let mut z = std::vec![0u32; n];
            nhwc_to_nchw(&y, &mut z, c, h, w).unwrap();
            assert_eq!(z, x);
        }
        let mut y = [0u32; 4];
        assert!(nchw_to_nhwc(&[0u32; 4], &mut y, usize::MAX, 2, 2).is_err());
        assert!(nhwc_to_nchw(&[0u32; 3], &mut y, 1, 2, 2).is_err());
    }
}
