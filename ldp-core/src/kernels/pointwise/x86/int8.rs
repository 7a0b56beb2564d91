//! x86-64 AVX2 int8 pointwise kernel, with an `i8` or an `i16` output ([`ConvOut`]).
//!
//! Rows of up to 512 input channels take the packed form (`packed`, below). Otherwise the
//! dot-product form, no packing: 16 input channels of a pixel row and of a weight row are
//! sign-extended to i16 (`vpmovsxbw`) and multiplied pairwise into i32 (`vpmaddwd`: 16 exact
//! MACs per instruction), in a register tile of 4 outputs × 2 pixels (8 accumulators: with 4 × 3
//! the 16 ymm registers do not suffice and the loop spills, 25% slower at 2048 channels). The
//! four accumulators of a pixel are reduced together (`vphaddd`, two pixels per register), and
//! bias, requantization (`Rq`, exact 64-bit products, bit-identical to [`requant`]) and
//! saturation run on 8 lanes; the optional table is applied to the 4 stored bytes. When 4 does
//! not divide `c_out` the last tile overlaps the one before. Every product of two int8 fits i16·i16 → i32
//! and pair sums fit i32 (|a·b + c·d| ≤ 2·128²), and i32 addition wraps exactly like the
//! reference's `wrapping_add`, so the result equals the reference bit for bit whatever the order.
//!
//! Both output types share all of the above; only the store differs (`Out`): `i8` saturates
//! twice (`vpackssdw`, `vpacksswb`) and applies the table, `i16` saturates once (`vpackssdw`,
//! the reference's `clamp(-32768, 32767)`) and stores 2 bytes per output.

use core::arch::x86_64::*;

use crate::error::{check_dims, check_len, Error};
use crate::kernels::cpu;
pub(crate) use crate::kernels::isa::x86::{apply_lut, sat16, Rq};
use crate::quant::fixed::requant;
use crate::quant::kernels::{ConvOut, ConvQ};

/// Runs the AVX2 kernel if the CPU has it (else `false`). The shapes are checked again here
/// (O(1)); `false` when they do not hold or `pixels` is not the pixel count of `x`.
pub(crate) fn pointwise(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    pixels: usize,
) -> bool {
    if !cpu::x86_avx2_fma() || check(x, c_in, q, c_out, y) != Ok(pixels) {
        return false;
    }
    // SAFETY: AVX2 is present and `check` just verified x.len() = pixels·c_in,
    // weight = c_out·c_in, bias (or none)/mult = c_out, lut = 256, y = pixels·c_out, all
    // products without overflow.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    true
}

/// AVX2 int8 pointwise conv with a 16-bit output ([`ConvOut`]); `false` when not taken (the
/// caller runs the portable kernel). Shapes validated by the caller (no table).
pub(crate) fn pointwise_i16(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    pixels: usize,
) -> bool {
    if !cpu::x86_avx2_fma() || check(x, c_in, q, c_out, y) != Ok(pixels) {
        return false;
    }
    // SAFETY: AVX2 is present and `check` just verified x.len() = pixels·c_in,
    // weight = c_out·c_in, bias (or none)/mult = c_out, no table, y = pixels·c_out, all
    // products without overflow.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    true
}

/// The AVX2 kernel with its own shape checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn pointwise_avx2(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), Error> {
    let pixels = check(x, c_in, q, c_out, y)?;
    // SAFETY: features per the contract, shapes checked just above.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    Ok(())
}

/// The AVX2 kernel with a 16-bit output ([`ConvOut`]) and its own shape checks, for tests and
/// benchmarks.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn pointwise_i16_avx2(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
) -> Result<(), Error> {
    let pixels = check(x, c_in, q, c_out, y)?;
    // SAFETY: features per the contract, shapes checked just above.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    Ok(())
}

/// The shape checks of the public entries; returns the pixel count.
pub(crate) fn check<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &[Y],
) -> Result<usize, Error> {
    if c_in == 0 || c_out == 0 || x.len() % c_in != 0 {
        return Err(Error::InvalidConfig("int8 pointwise: bad shape"));
    }
    let pixels = x.len() / c_in;
    check_dims("int8 weight", q.weight, &[c_in, c_out])?;
    crate::quant::kernels::check_bias_mult(q, c_out)?;
    if let Some(t) = q.lut {
        if core::mem::size_of::<Y>() != 1 {
            return Err(Error::InvalidConfig(
                "int8 pointwise: a 16-bit output takes no table",
            ));
        }
        check_len("int8 lut", t, 256)?;
    }
    check_dims("int8 pointwise output", y, &[pixels, c_out])?;
    Ok(pixels)
}

/// One output of the scalar paths: [`ConvOut::finish`] of the requantized sum.
#[inline(always)]
fn out<Y: ConvOut>(acc: i32, o: usize, q: &ConvQ<'_>) -> Y {
    Y::finish(
        q.out_zero.wrapping_add(requant(
            acc.wrapping_add(q.bias_at(o)),
            q.mult_at(o),
            q.shift,
        )),
        q.lut,
    )
}

/// The store step of the vector epilogues, per output element; the lanes hold
/// `out_zero + requant(..)` (wrapping) before saturation.
pub(crate) trait Out: ConvOut {
    /// Saturates lanes 0..4 of `r` into `y[a..a + 4]` and lanes 4..8 into `y[b..b + 4]` (`a`
    /// written first, so `a == b` stores lanes 4..8), then applies the table.
    ///
    /// # Safety
    /// AVX2 available.
    unsafe fn store4x2(y: &mut [Self], a: usize, b: usize, r: __m256i, lut: Option<&[i8]>);

    /// Saturates the 16 lanes of `r0` then `r1` into `y[at..at + 16]`, then applies the table.
    ///
    /// # Safety
    /// `at + 16 ≤ y.len()`; AVX2 available.
    unsafe fn store16(y: &mut [Self], at: usize, r0: __m256i, r1: __m256i, lut: Option<&[i8]>);
}

impl Out for i8 {
    #[inline(always)]
    unsafe fn store4x2(y: &mut [i8], a: usize, b: usize, r: __m256i, lut: Option<&[i8]>) {
        // SAFETY: register-only AVX2 operations; the stores go through bounds-checked slices.
        unsafe {
            let r = _mm256_packs_epi16(_mm256_packs_epi32(r, r), _mm256_setzero_si256());
            let v0 = _mm256_cvtsi256_si32(r);
            let v1 = _mm_cvtsi128_si32(_mm256_extracti128_si256::<1>(r));
            for (at, v) in [(a, v0), (b, v1)] {
                let dst = &mut y[at..at + 4];
                dst.copy_from_slice(&v.to_le_bytes().map(|b| b as i8));
                apply_lut(dst, lut);
            }
        }
    }

    #[inline(always)]
    unsafe fn store16(y: &mut [i8], at: usize, r0: __m256i, r1: __m256i, lut: Option<&[i8]>) {
        // Bounds-checked first: the raw store below writes exactly these 16 bytes.
        let dst: &mut [i8; 16] = (&mut y[at..at + 16]).try_into().expect("16-byte slice");
        // SAFETY: `dst` is 16 writable bytes; register-only AVX2 operations otherwise.
        unsafe { _mm_storeu_si128(dst.as_mut_ptr() as *mut __m128i, sat16(r0, r1)) };
        apply_lut(dst, lut);
    }
}

impl Out for i16 {
    #[inline(always)]
    unsafe fn store4x2(y: &mut [i16], a: usize, b: usize, r: __m256i, _lut: Option<&[i8]>) {
        // SAFETY: register-only AVX2 operations; each 8-byte store goes to a 4-element slice
        // taken with bounds checks.
        unsafe {
            // Per 128-bit half: [s0 s1 s2 s3 s0 s1 s2 s3] saturated to i16.
            let t = _mm256_packs_epi32(r, r);
            for (at, h) in [
                (a, _mm256_castsi256_si128(t)),
                (b, _mm256_extracti128_si256::<1>(t)),
            ] {
                let dst = &mut y[at..at + 4];
                _mm_storel_epi64(dst.as_mut_ptr() as *mut __m128i, h);
            }
        }
    }

    #[inline(always)]
    unsafe fn store16(y: &mut [i16], at: usize, r0: __m256i, r1: __m256i, _lut: Option<&[i8]>) {
        // Bounds-checked first: the raw store below writes exactly these 16 `i16`s.
        let dst: &mut [i16; 16] = (&mut y[at..at + 16]).try_into().expect("16-element slice");
        // SAFETY: register-only AVX2 operations; `dst` is 16 writable `i16` (32 bytes).
        unsafe {
            // vpackssdw packs within 128-bit halves: [r0 0..4, r1 0..4 | r0 4..8, r1 4..8];
            // the 64-bit permute (0, 2, 1, 3) restores the order.
            let t = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_packs_epi32(r0, r1));
            _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, t);
        }
    }
}

/// Sum of the 8 lanes of `v` (wrapping).
///
/// # Safety
/// AVX2 available.
#[inline(always)]
unsafe fn hsum(v: __m256i) -> i32 {
    // SAFETY: register-only AVX2/SSE2 operations.
    unsafe {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
        _mm_cvtsi128_si32(s)
    }
}

/// Outputs `o0..o0+TO` of pixels `p0..p0+TP`.
///
/// # Safety
/// `o0 + TO ≤ c_out`, `p0 + TP ≤ pixels`, shapes validated; AVX2 available.
#[inline(always)]
unsafe fn tile<Y: Out, const TO: usize, const TP: usize>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    o0: usize,
    p0: usize,
) {
    let full = c_in / 16 * 16;
    // SAFETY (whole body): rows o0..o0+TO of the weights and p0..p0+TP of x are in bounds, and
    // every 16-byte load starts at i ≤ full - 16 inside its row.
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); TP]; TO];
        let xs: [*const i8; TP] = core::array::from_fn(|p| x.as_ptr().add((p0 + p) * c_in));
        let ws: [*const i8; TO] = core::array::from_fn(|o| q.weight.as_ptr().add((o0 + o) * c_in));
        let mut i = 0;
        while i < full {
            let xv: [__m256i; TP] = core::array::from_fn(|p| {
                _mm256_cvtepi8_epi16(_mm_loadu_si128(xs[p].add(i) as *const __m128i))
            });
            for o in 0..TO {
                let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(ws[o].add(i) as *const __m128i));
                for p in 0..TP {
                    acc[o][p] = _mm256_add_epi32(acc[o][p], _mm256_madd_epi16(xv[p], wv));
                }
            }
            i += 16;
        }
        for o in 0..TO {
            for p in 0..TP {
                let mut s = hsum(acc[o][p]);
                for j in full..c_in {
                    s = s.wrapping_add(*xs[p].add(j) as i32 * *ws[o].add(j) as i32);
                }
                y[(p0 + p) * c_out + o0 + o] = out(s, o0 + o, q);
            }
        }
    }
}

/// Outputs `o0..o0+4` of pixels `p0..p0+TP` (`TP` in 1..=2), with the vectorized epilogue:
/// the four accumulators of a pixel are reduced with `vphaddd` (two pixels per register), then
/// bias, [`Rq`] and [`Out::store4x2`] (saturation, a 4-element store per pixel, the optional
/// table).
///
/// # Safety
/// `o0 + 4 ≤ c_out`, `p0 + TP ≤ pixels`, shapes validated; AVX2 available.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile4<Y: Out, const TP: usize>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    o0: usize,
    p0: usize,
    rq: Rq,
) {
    let full = c_in / 16 * 16;
    // SAFETY (whole body): rows o0..o0+4 of the weights and p0..p0+TP of x are in bounds, every
    // 16-byte load starts at i ≤ full - 16 inside its row; bias/mult are read at o0..o0+4 and
    // y at (p0+p)·c_out + o0 .. +4, all inside the validated lengths.
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); TP]; 4];
        let xs: [*const i8; TP] = core::array::from_fn(|p| x.as_ptr().add((p0 + p) * c_in));
        let ws: [*const i8; 4] = core::array::from_fn(|o| q.weight.as_ptr().add((o0 + o) * c_in));
        let mut i = 0;
        while i < full {
            let xv: [__m256i; TP] = core::array::from_fn(|p| {
                _mm256_cvtepi8_epi16(_mm_loadu_si128(xs[p].add(i) as *const __m128i))
            });
            for o in 0..4 {
                let wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(ws[o].add(i) as *const __m128i));
                for p in 0..TP {
                    acc[o][p] = _mm256_add_epi32(acc[o][p], _mm256_madd_epi16(xv[p], wv));
                }
            }
            i += 16;
        }
        // Per pixel: [a0 a1 a2 a3] partial sums in each 128-bit half.
        let h: [__m256i; TP] = core::array::from_fn(|p| {
            _mm256_hadd_epi32(
                _mm256_hadd_epi32(acc[0][p], acc[1][p]),
                _mm256_hadd_epi32(acc[2][p], acc[3][p]),
            )
        });
        let (b4, m4) = (q.bias_n::<4>(o0), q.mult_n::<4>(o0));
        let bias = _mm256_broadcastsi128_si256(_mm_loadu_si128(b4.as_ptr() as *const __m128i));
        let mult = _mm256_broadcastsi128_si256(_mm_loadu_si128(m4.as_ptr() as *const __m128i));
        let mut p = 0;
        while p < TP {
            let p1 = if p + 1 < TP { p + 1 } else { p };
            // [pixel p: s0..s3 | pixel p1: s0..s3]
            let mut s = _mm256_add_epi32(
                _mm256_permute2x128_si256::<0x20>(h[p], h[p1]),
                _mm256_permute2x128_si256::<0x31>(h[p], h[p1]),
            );
            if full < c_in {
                let mut t = [0i32; 8];
                for (k, tk) in t.iter_mut().enumerate() {
                    let (pp, o) = (if k < 4 { p } else { p1 }, k % 4);
                    for j in full..c_in {
                        *tk = tk.wrapping_add(*xs[pp].add(j) as i32 * *ws[o].add(j) as i32);
                    }
                }
                s = _mm256_add_epi32(s, _mm256_loadu_si256(t.as_ptr() as *const __m256i));
            }
            let r = rq.apply(_mm256_add_epi32(s, bias), mult);
            let (a, b) = ((p0 + p) * c_out + o0, (p0 + p1) * c_out + o0);
            Y::store4x2(y, a, b, r, q.lut);
            p += 2;
        }
    }
}

/// # Safety
/// Shapes validated; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn run<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) {
    // Pixel blocks keep a block of x in L1/L2 while all weight rows stream past it.
    const PB: usize = 48;
    // SAFETY: AVX2 available (this function's contract).
    let rq = unsafe { Rq::new(q.shift, q.out_zero) };
    if c_in <= PK_MAX && c_out >= NR {
        // SAFETY: AVX2 available; shapes validated, c_in ≤ PK_MAX, c_out ≥ NR.
        unsafe { packed(x, c_in, q, c_out, y, pixels, rq) };
        return;
    }
    let mut pb = 0;
    while pb < pixels {
        let pe = (pb + PB).min(pixels);
        let mut o = 0;
        // SAFETY: every tile stays inside o < c_out and p < pe ≤ pixels.
        unsafe {
            while o < c_out && c_out >= 4 {
                // When 4 does not divide c_out the last tile overlaps the one before: the
                // outputs computed twice get the same value.
                let ot = o.min(c_out - 4);
                let mut p = pb;
                while p + 2 <= pe {
                    tile4::<Y, 2>(x, c_in, q, c_out, y, ot, p, rq);
                    p += 2;
                }
                if p < pe {
                    tile4::<Y, 1>(x, c_in, q, c_out, y, ot, p, rq);
                }
                o += 4;
            }
            while o < c_out {
                let mut p = pb;
                while p + 3 <= pe {
                    tile::<Y, 1, 3>(x, c_in, q, c_out, y, o, p);
                    p += 3;
                }
                while p < pe {
                    tile::<Y, 1, 1>(x, c_in, q, c_out, y, o, p);
                    p += 1;
                }
                o += 1;
            }
        }
        pb = pe;
    }
}

/// Outputs per packed panel (two ymm of `i32`).
const NR: usize = 16;
/// Pixels per packed register tile.
const MR: usize = 6;
/// Largest `c_in` of the packed kernel (panel: `PK_MAX/2 · NR` i16 pairs = 16 KiB of stack).
const PK_MAX: usize = 512;

/// The packed (outer-product) form for short rows (`c_in ≤ 512`, e.g. the seed block's 128
/// channels, where the dot-product form spends a large share in its horizontal reductions).
///
/// A panel of 16 output channels is sign-extended once into `[c_in/2][16][2]` `i16` (pairs of
/// input channels, zero-padded when `c_in` is odd); for each tile of 6 pixels their rows are
/// sign-extended into a small buffer, then per input-channel pair: two panel loads, six
/// broadcasts of a pixel's pair and twelve `vpmaddwd` into 6 × 16 `i32` accumulators that hold
/// the outputs in order — the epilogue is [`Rq`] on 8 lanes straight away, no reduction.
/// Exact: same products, wrapping `i32` sums. When 16 does not divide `c_out` the last panel
/// overlaps the one before.
///
/// # Safety
/// Shapes validated, `c_in ≤ PK_MAX`, `c_out ≥ NR`; AVX2 available.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn packed<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    rq: Rq,
) {
    let k2 = c_in.div_ceil(2);
    let kp = k2 * 2;
    let mut panel = [0i16; PK_MAX * NR];
    let mut xt = [0i16; MR * PK_MAX];
    let mut o = 0;
    while o < c_out {
        let o0 = o.min(c_out - NR);
        for (j, pr) in panel[..k2 * 2 * NR].chunks_exact_mut(2 * NR).enumerate() {
            for oo in 0..NR {
                let row = &q.weight[(o0 + oo) * c_in..(o0 + oo + 1) * c_in];
                pr[2 * oo] = row[2 * j] as i16;
                pr[2 * oo + 1] = row.get(2 * j + 1).map_or(0, |&v| v as i16);
            }
        }
        // SAFETY: o0 + NR ≤ c_out: bias/mult reads in bounds; the tiles below stay inside
        // p < pixels; the buffers hold kp ≤ PK_MAX values per row.
        unsafe {
            let bias = [0, 8]
                .map(|h| _mm256_loadu_si256(q.bias_n::<8>(o0 + h).as_ptr() as *const __m256i));
            let mult = [0, 8]
                .map(|h| _mm256_loadu_si256(q.mult_n::<8>(o0 + h).as_ptr() as *const __m256i));
            let mut p = 0;
            while p + MR <= pixels {
                ptile::<Y, MR>(
                    x,
                    c_in,
                    kp,
                    &panel,
                    &mut xt,
                    q,
                    c_out,
                    y,
                    o0,
                    p,
                    (bias, mult, rq),
                );
                p += MR;
            }
            while p < pixels {
                ptile::<Y, 1>(
                    x,
                    c_in,
                    kp,
                    &panel,
                    &mut xt,
                    q,
                    c_out,
                    y,
                    o0,
                    p,
                    (bias, mult, rq),
                );
                p += 1;
            }
        }
        o += NR;
    }
}

/// Epilogue parameters of a panel: bias and multipliers of its 16 outputs, the layer's [`Rq`].
type PanelOut = ([__m256i; 2], [__m256i; 2], Rq);

/// One tile of the packed kernel: pixels `p0..p0+TP`, outputs `o0..o0+16`.
///
/// # Safety
/// `p0 + TP ≤ pixels`, `o0 + 16 ≤ c_out`, `panel` holds `kp/2` packed pairs of this panel,
/// `kp = 2·⌈c_in/2⌉ ≤ PK_MAX`; AVX2 available.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn ptile<Y: Out, const TP: usize>(
    x: &[i8],
    c_in: usize,
    kp: usize,
    panel: &[i16],
    xt: &mut [i16],
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    o0: usize,
    p0: usize,
    (bias, mult, rq): PanelOut,
) {
    let c16 = c_in / 16 * 16;
    // SAFETY (whole body): rows p0..p0+TP of x hold c_in bytes (16-byte loads at i + 16 ≤ c16);
    // xt rows of PK_MAX i16 receive ≤ kp values; panel pairs are read for j < kp/2; y is
    // written at (p0+p)·c_out + o0 .. +16.
    unsafe {
        for p in 0..TP {
            let xr = x.as_ptr().add((p0 + p) * c_in);
            let tr = xt.as_mut_ptr().add(p * PK_MAX);
            let mut i = 0;
            while i < c16 {
                let v = _mm256_cvtepi8_epi16(_mm_loadu_si128(xr.add(i) as *const __m128i));
                _mm256_storeu_si256(tr.add(i) as *mut __m256i, v);
                i += 16;
            }
            while i < kp {
                *tr.add(i) = if i < c_in { *xr.add(i) as i16 } else { 0 };
                i += 1;
            }
        }
        let mut acc = [[_mm256_setzero_si256(); 2]; TP];
        let xs: [*const i32; TP] =
            core::array::from_fn(|p| xt.as_ptr().add(p * PK_MAX) as *const i32);
        let wp = panel.as_ptr() as *const __m256i;
        for j in 0..kp / 2 {
            let w0 = _mm256_loadu_si256(wp.add(2 * j));
            let w1 = _mm256_loadu_si256(wp.add(2 * j + 1));
            for p in 0..TP {
                let xb = _mm256_set1_epi32(*xs[p].add(j));
                acc[p][0] = _mm256_add_epi32(acc[p][0], _mm256_madd_epi16(xb, w0));
                acc[p][1] = _mm256_add_epi32(acc[p][1], _mm256_madd_epi16(xb, w1));
            }
        }
        for (p, a) in acc.iter().enumerate() {
            let r0 = rq.apply(_mm256_add_epi32(a[0], bias[0]), mult[0]);
            let r1 = rq.apply(_mm256_add_epi32(a[1], bias[1]), mult[1]);
            Y::store16(y, (p0 + p) * c_out + o0, r0, r1, q.lut);
        }
    }
}
