//! 16-bit activations with int8 weights ("16x8", TFLite's `EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8`
//! mode) for MobileVLM V2 — the int8 blob variant with header flag
//! [`crate::blob::specs::FLAG_ACT16`].
//!
//! **Why.** V2 has no LayerNorm, so heavy-tailed inputs (MobileVLM's CLIP features, the
//! issue's Student-t(3) inputs with outlier channels) keep their tails all the way to the
//! output, and a static int8 range must either clip an unseen extreme or waste resolution on
//! it. With 16-bit activations the quantizer leaves 16× headroom over the calibrated range
//! (2^11 steps over it; 4–8× where a wide Linear's accumulator budget saturates its input early,
//! keeping at least 2^10 steps) and still has 4–8× finer steps than int8. `ldp-quant` picks
//! this variant for V2 when the calibration inputs are heavy-tailed (`--activations auto`, the default); weights stay int8
//! per output channel, so the blob is the size of the int8 one.
//!
//! **The scheme** (all integer, the determinism rule of [`super::fixed`]):
//! * activations `i16`, symmetric (zero point 0), per tensor, saturated to `±32767` — and to
//!   `±Q` for a tensor that feeds a pointwise conv of `K` input channels, with
//!   `K · 127 · Q ≤ 2^30` (`Q_X`, `Q_H1` in `quant.meta`), and biases within `±2^29` (bias
//!   shifts ≤ 14), so the `i32` accumulators cannot overflow (checked when the blob is parsed);
//! * convs: the int8 weights, `i16` biases with a bias shift, `u8` per-channel multipliers and
//!   one shift of the int8 path ([`ConvQ`], zero points 0): `y = sat16(round(acc · mult[o] /
//!   2^shift))`;
//! * GELU ([`Gelu16`]): a 513-entry `i16` table over a fixed real interval `[-T, T]` (the
//!   quantizer uses `T = 6`), indexed by the input's position in 1/128 steps of the table
//!   (one fixed-point multiply), linear interpolation between entries; left of the table its
//!   first entry (GELU → 0), right of it the identity (GELU(x) → x) requantized;
//! * average pool: `div_round(Σx, count)` (the input's scale); ADD: TFLite's single rounding
//!   `round((a·m_a + b·m_b) / 2^shift)` in `i64`.

use super::fixed::requant;
use super::graph::{idx, split16, Params};
use super::kernels::{finish, AddQ, ConvQ};
use crate::blob::{Model, ModelConfig};
use crate::error::{check_len, Error};
use crate::kernels::depthwise::int8::check_dw;
use crate::kernels::depthwise::int8::depthwise_sums;
use crate::kernels::depthwise::DwShape;
use crate::kernels::pointwise::int8::check_pw;
use crate::kernels::pointwise::int8::pointwise_sums;
use crate::kernels::pool::int8::pool_means;

/// Largest 16-bit activation magnitude (symmetric range).
pub const MAX16: i32 = 32767;
/// Entries of the GELU table.
pub const GELU16_LEN: usize = 513;
/// The accumulator budget of the products: `K · 127 · Q ≤ 2^30` for a pointwise conv input.
pub const PRODUCT_BUDGET: i64 = 1 << 30;
/// Largest bias magnitude of a 16-bit-activation blob (`i16 · 2^14`: the reader allows bias
/// shifts up to 14 in these blobs).
pub const BIAS_LIMIT: i64 = 1 << 29;

#[inline(always)]
fn sat(v: i32, q: i32) -> i16 {
    let q = q.clamp(0, MAX16);
    v.clamp(-q, q) as i16
}

/// The GELU of the 16-bit path (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Gelu16<'a> {
    /// 513 output values (output units) at the table's nodes.
    pub lut: &'a [i16],
    /// Position multiplier: the input's position in 1/128 table steps is
    /// `round(q · pos_mult / 2^pos_shift)`, 0 at the table's centre.
    pub pos_mult: i32,
    /// Position shift (`1..=62`).
    pub pos_shift: i32,
    /// Identity multiplier right of the table: `y = round(q · id_mult / 2^id_shift)`.
    pub id_mult: i32,
    /// Identity shift (`1..=62`).
    pub id_shift: i32,
    /// Output saturation (`1..=32767`).
    pub clamp: i32,
}

impl Gelu16<'_> {
    /// GELU of one value.
    #[inline(always)]
    pub fn apply(&self, q: i16) -> i16 {
        let s = self.pos_shift.clamp(1, 62) as u32;
        let u = (q as i64 * self.pos_mult as i64 + (1i64 << (s - 1))) >> s;
        let p = u + 256 * 128;
        let v = if p < 0 {
            self.lut[0] as i32
        } else if p >= 512 * 128 {
            requant(q as i32, self.id_mult, self.id_shift)
        } else {
            let (i, f) = ((p >> 7) as usize, (p & 127) as i32);
            let (a, b) = (self.lut[i] as i32, self.lut[i + 1] as i32);
            a + (((b - a) * f + 64) >> 7)
        };
        sat(v, self.clamp)
    }

    fn check(&self) -> Result<(), Error> {
        check_len("gelu16 table", self.lut, GELU16_LEN)
    }
}

/// GELU in place ([`Gelu16::apply`] of every value; with AVX-512 16 values at a time, the same
/// bits).
pub fn gelu16_inplace(x: &mut [i16], g: &Gelu16<'_>) -> Result<(), Error> {
    g.check()?;
    let gelu = |b: &mut [i16]| {
        #[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
        let b = match crate::kernels::cpu::x86_avx512() {
            true => {
                // SAFETY: AVX-512 F/BW/VL/DQ and AVX2 are present (`x86_avx512`); the table
                // holds 513 entries (`check` above).
                let n = unsafe { gelu16_avx512(b, g) };
                &mut b[n..]
            }
            false => b,
        };
        for v in b.iter_mut() {
            *v = g.apply(*v);
        }
        Ok(())
    };
    #[cfg(feature = "std")]
    {
        // Elementwise: bands of values on the host's threads, the same bits.
        let n = crate::kernels::threads::bands(x.len(), 16);
        if n > 1 {
            return crate::kernels::threads::split_inplace(x, 1, n, gelu);
        }
    }
    gelu(x)
}

/// [`Gelu16::apply`] on 16 values at a time: the position `u = round(q·pos_mult / 2^s)` in 64-bit
/// lanes (exact; clamped to `-32769..=32768`, which keeps both sides' classification, before it
/// is narrowed to 32 bits), the two table entries of each position by one 32-bit gather at
/// `lut + 2i` (`i ≤ 511`: inside the 513 entries), the interpolation, the identity's
/// requantization right of the table ([`Rq16`](crate::kernels::isa::x86::Rq16)) and the
/// saturation, each as the scalar code computes it. Left of the table the position clamps to
/// entry 0 with no fraction, which is the scalar code's `lut[0]`. Returns how many values it
/// did (whole vectors of 16); the caller does the rest.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ and AVX2 available; `g.lut.len() = 513`.
#[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2")]
unsafe fn gelu16_avx512(x: &mut [i16], g: &Gelu16<'_>) -> usize {
    use core::arch::x86_64::*;
    let s = g.pos_shift.clamp(1, 62) as u32;
    let c = g.clamp.clamp(0, MAX16);
    let chunks = x.chunks_exact_mut(16);
    let done = chunks.len() * 16;
    // SAFETY (whole block): register operations; 32-byte loads and stores of each 16-value
    // chunk; the gather reads 4 bytes at `lut + 2i` with `0 ≤ i ≤ 511`, inside the 1026 bytes
    // of the 513-entry table (the contract).
    unsafe {
        let pm = _mm512_set1_epi32(g.pos_mult);
        let k = _mm512_set1_epi64(1i64 << (s - 1));
        let cnt = _mm_cvtsi32_si128(s as i32);
        let (lo64, hi64) = (_mm512_set1_epi64(-32769), _mm512_set1_epi64(32768));
        let idm = _mm512_set1_epi32(g.id_mult);
        let idm_odd = _mm512_srli_epi64::<32>(idm);
        let rq = crate::kernels::isa::x86::Rq16::new(g.id_shift, 0);
        let off = _mm512_set1_epi32(256 * 128);
        let (top, f_mask, half) = (
            _mm512_set1_epi32(512 * 128),
            _mm512_set1_epi32(127),
            _mm512_set1_epi32(64),
        );
        let (cp, cn) = (_mm512_set1_epi32(c), _mm512_set1_epi32(-c));
        let zero = _mm512_setzero_si512();
        for ch in chunks {
            let q = _mm512_cvtepi16_epi32(_mm256_loadu_si256(ch.as_ptr().cast()));
            let pe = _mm512_mul_epi32(q, pm);
            let po = _mm512_mul_epi32(_mm512_srli_epi64::<32>(q), pm);
            let pe = _mm512_sra_epi64(_mm512_add_epi64(pe, k), cnt);
            let po = _mm512_sra_epi64(_mm512_add_epi64(po, k), cnt);
            let pe = _mm512_min_epi64(_mm512_max_epi64(pe, lo64), hi64);
            let po = _mm512_min_epi64(_mm512_max_epi64(po, lo64), hi64);
            let u = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64::<32>(po));
            let p = _mm512_add_epi32(u, off);
            let above = _mm512_cmpge_epi32_mask(p, top);
            let pin = _mm512_min_epi32(_mm512_max_epi32(p, zero), _mm512_set1_epi32(512 * 128 - 1));
            let i = _mm512_srai_epi32::<7>(pin);
            let f = _mm512_and_si512(pin, f_mask);
            let ab = _mm512_i32gather_epi32::<2>(i, g.lut.as_ptr().cast());
            let a = _mm512_srai_epi32::<16>(_mm512_slli_epi32::<16>(ab));
            let b = _mm512_srai_epi32::<16>(ab);
            let d = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_sub_epi32(b, a), f), half);
            let v = _mm512_add_epi32(a, _mm512_srai_epi32::<7>(d));
            let v = _mm512_mask_mov_epi32(v, above, rq.apply(q, idm, idm_odd));
            let v = _mm512_max_epi32(_mm512_min_epi32(v, cp), cn);
            _mm256_storeu_si256(ch.as_mut_ptr().cast(), _mm512_cvtepi32_epi16(v));
        }
    }
    done
}

/// `-32768` → `-32767`: an `i16`-range saturation narrowed to [`MAX16`]'s symmetric range.
#[cfg(any(ldp_arm_dsp, target_arch = "aarch64"))]
fn narrow16(y: &mut [i16]) {
    for v in y.iter_mut() {
        *v = (*v).max(-MAX16 as i16);
    }
}

/// Requantizes a conv accumulator of output channel `o` to a 16-bit activation.
#[inline(always)]
pub(crate) fn out16(acc: i32, o: usize, q: &ConvQ<'_>) -> i16 {
    sat(requant(acc, q.mult_at(o), q.shift), MAX16)
}

/// Reference pointwise conv, 16-bit activations × int8 weights: `x: [pixels][c_in]` →
/// `y: [pixels][c_out]`, `y = sat16(round((bias + Σ x·w) · mult / 2^shift))` (the int8
/// reference's loop, `kernels::pointwise::int8::pointwise_sums`).
pub fn pointwise16_reference(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
) -> Result<(), Error> {
    let pixels = check_pw(x, c_in, q, c_out, y)?;
    pointwise_sums(x, c_in, q, c_out, pixels, |p, o, acc| {
        y[p * c_out + o] = out16(acc, o, q)
    });
    Ok(())
}

/// Tiled [`pointwise16_reference`]: on x86-64 with AVX2 a 2-pixel × 4-output `vpmaddwd` kernel
/// (`kernels::pointwise::x86::int16`), on Cortex-M with the DSP extension the `SMLAD` kernel of
/// `kernels::pointwise::arm_dsp` (16-bit staging, `i16` output), on AArch64 the `SMLAL` kernel
/// of `kernels::pointwise::neon::int16`, elsewhere 4 output channels per pass over a pixel's
/// inputs in portable Rust. The DSP and NEON kernels are checked against the reference by the
/// firmware self-test (`a16_pointwise`). Bit-identical to the reference
/// (integer sums are exact in any order; wrapping, like the reference, for hostile blobs).
pub fn pointwise16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
) -> Result<(), Error> {
    let pixels = check_pw(x, c_in, q, c_out, y)?;
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::bands(pixels, c_in.saturating_mul(c_out));
        if n > 1 {
            return crate::kernels::threads::split_rows(x, c_in, y, c_out, n, |xb, yb| {
                pointwise16_one(xb, c_in, q, c_out, yb, xb.len() / c_in);
                Ok(())
            });
        }
    }
    pointwise16_one(x, c_in, q, c_out, y, pixels);
    Ok(())
}

/// [`pointwise16`] on the calling thread; shapes validated.
fn pointwise16_one(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    pixels: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::pointwise::x86::int16::pointwise16(x, c_in, q, c_out, y, pixels) {
        return;
    }
    // The DSP and NEON kernels saturate to the `i16` range with the output zero point added
    // (the int8 kernels' 16-bit output); with this path's zero point 0 that equals [`out16`]
    // except at -32768, narrowed here.
    #[cfg(ldp_arm_dsp)]
    if q.out_zero == 0
        && crate::kernels::pointwise::arm_dsp::pointwise16(x, c_in, q, c_out, y, pixels)
    {
        narrow16(y);
        return;
    }
    #[cfg(target_arch = "aarch64")]
    if q.out_zero == 0
        && crate::kernels::pointwise::neon::int16::pointwise16(x, c_in, q, c_out, y, pixels)
    {
        narrow16(y);
        return;
    }
    pointwise16_tiled(x, c_in, q, c_out, pixels, |i, o, acc| {
        y[i] = out16(acc, o, q)
    });
}

/// The portable tiled loop of the 16-bit-input pointwise convs: 4 output channels per pass over
/// a pixel's inputs; `emit(index, o, acc)` with `acc = bias_at(o) + Σ x·w` (wrapping, exact in
/// any order) and `index = p·c_out + o`. Shapes validated by the caller.
#[inline(always)]
fn pointwise16_tiled(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    pixels: usize,
    mut emit: impl FnMut(usize, usize, i32),
) {
    let o4 = c_out / 4 * 4;
    for p in 0..pixels {
        let xr = &x[p * c_in..(p + 1) * c_in];
        let base = p * c_out;
        let mut o = 0;
        while o < o4 {
            let w = &q.weight[o * c_in..(o + 4) * c_in];
            let (w0, rest) = w.split_at(c_in);
            let (w1, rest) = rest.split_at(c_in);
            let (w2, w3) = rest.split_at(c_in);
            let (mut a0, mut a1, mut a2, mut a3) = (0i32, 0i32, 0i32, 0i32);
            for i in 0..c_in {
                let xv = xr[i] as i32;
                a0 = a0.wrapping_add(xv * w0[i] as i32);
                a1 = a1.wrapping_add(xv * w1[i] as i32);
                a2 = a2.wrapping_add(xv * w2[i] as i32);
                a3 = a3.wrapping_add(xv * w3[i] as i32);
            }
            for (k, a) in [a0, a1, a2, a3].into_iter().enumerate() {
                emit(base + o + k, o + k, q.bias_at(o + k).wrapping_add(a));
            }
            o += 4;
        }
        for o in o4..c_out {
            let w = &q.weight[o * c_in..(o + 1) * c_in];
            let mut a = 0i32;
            for i in 0..c_in {
                a = a.wrapping_add(xr[i] as i32 * w[i] as i32);
            }
            emit(base + o, o, q.bias_at(o).wrapping_add(a));
        }
    }
}

/// Wrapping dot product of `x` and `w` (the shorter length), the scalar part of the 16-bit
/// pointwise kernels.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
pub(crate) fn dot16(x: &[i16], w: &[i8]) -> i32 {
    x.iter()
        .zip(w)
        .fold(0i32, |a, (&x, &w)| a.wrapping_add(x as i32 * w as i32))
}

/// The 2-pixel × 4-output tile driver of the vector 16-bit pointwise kernels (x86-64 AVX2 and
/// AVX-512 VNNI, AArch64 NEON). For each pixel pair and group of 4 output channels,
/// `dot4(xa, xb, rows)` returns the wrapping sums of the two pixel rows against the 4 weight
/// rows over their first `k` channels, and `k`; the channels from `k`, the outputs past the last
/// multiple of 4 and a last odd pixel are summed here with [`dot16`]. `finish(acc, o)` turns
/// output `o`'s sum (bias not included) into the output. Integer sums wrap, so any split of
/// the channels gives the reference's value. Shapes validated by the caller (`check_pw`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn tiles16<Y>(
    x: &[i16],
    c_in: usize,
    w: &[i8],
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    dot4: impl Fn(&[i16], &[i16], [&[i8]; 4]) -> ([i32; 4], [i32; 4], usize),
    finish: impl Fn(i32, usize) -> Y,
) {
    let (o4, p2) = (c_out / 4 * 4, pixels / 2 * 2);
    let row = |o: usize| &w[o * c_in..(o + 1) * c_in];
    let mut p = 0;
    while p < pixels {
        let xa = &x[p * c_in..(p + 1) * c_in];
        if p < p2 {
            let xb = &x[(p + 1) * c_in..(p + 2) * c_in];
            let mut o = 0;
            while o < o4 {
                let rows = [row(o), row(o + 1), row(o + 2), row(o + 3)];
                let (sa, sb, k) = dot4(xa, xb, rows);
                for j in 0..4 {
                    let (ta, tb) = (
                        dot16(&xa[k..], &rows[j][k..]),
                        dot16(&xb[k..], &rows[j][k..]),
                    );
                    y[p * c_out + o + j] = finish(sa[j].wrapping_add(ta), o + j);
                    y[(p + 1) * c_out + o + j] = finish(sb[j].wrapping_add(tb), o + j);
                }
                o += 4;
            }
            for o in o4..c_out {
                y[p * c_out + o] = finish(dot16(xa, row(o)), o);
                y[(p + 1) * c_out + o] = finish(dot16(xb, row(o)), o);
            }
            p += 2;
        } else {
            for o in 0..c_out {
                y[p * c_out + o] = finish(dot16(xa, row(o)), o);
            }
            p += 1;
        }
    }
}

/// Reference pointwise conv of a 16-bit model input ([`crate::blob::specs::FLAG_INPUT16`],
/// zero point 0) to an int8 activation: `y = T[sat8(z_out + round(acc · mult / 2^shift))]`
/// with the optional table `T`, exactly the int8 conv's output stage.
pub fn pointwise_in16_reference(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), Error> {
    let pixels = check_pw(x, c_in, q, c_out, y)?;
    pointwise_sums(x, c_in, q, c_out, pixels, |p, o, acc| {
        y[p * c_out + o] = finish(acc, o, q)
    });
    Ok(())
}

/// [`pointwise_in16_reference`], bit-identical: on Cortex-M with the DSP extension the int8
/// SMLAD kernel with 16-bit input staging (`kernels::pointwise::arm_dsp`), on x86-64 with AVX2
/// the `vpmaddwd` kernel of the 16-bit path (`kernels::pointwise::x86::int16`), on AArch64 the
/// `SMLAL` kernel of `kernels::pointwise::neon::int16`, elsewhere the portable tiled loop (4
/// outputs per pass).
pub fn pointwise_in16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), Error> {
    let pixels = check_pw(x, c_in, q, c_out, y)?;
    #[cfg(ldp_arm_dsp)]
    if crate::kernels::pointwise::arm_dsp::pointwise_in16(x, c_in, q, c_out, y, pixels) {
        return Ok(());
    }
    #[cfg(target_arch = "x86_64")]
    if crate::kernels::pointwise::x86::int16::pointwise_in16(x, c_in, q, c_out, y, pixels) {
        return Ok(());
    }
    #[cfg(target_arch = "aarch64")]
    if crate::kernels::pointwise::neon::int16::pointwise_in16(x, c_in, q, c_out, y, pixels) {
        return Ok(());
    }
    pointwise16_tiled(x, c_in, q, c_out, pixels, |i, o, acc| {
        y[i] = finish(acc, o, q)
    });
    Ok(())
}

/// Bilinear resize of a 16-bit model input (zero point 0) to an int8 activation, the skip of an
/// `ldp` blob with a 16-bit input: `y = sat8(z_out + round(Σ w_k·x_k · mult[c] / 2^(20 +
/// shift)))`, the arithmetic of [`super::kernels::resize_bilinear_reference`] (`i64`: the
/// sums stay below `2^52`).
#[allow(clippy::too_many_arguments)]
pub fn resize_bilinear_in16(
    x: &[i16],
    h: usize,
    w: usize,
    c: usize,
    mult: &[i16],
    shift: i32,
    out_zero: i32,
    y: &mut [i8],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    crate::kernels::resize::int8::resize_sums(
        x,
        (h, w, c),
        &[0],
        mult,
        shift,
        out_zero,
        y,
        (ho, wo),
    )
}

/// Reference depthwise 3×3 conv (padding 1, stride 1 or 2), 16-bit activations × int8 weights
/// (the int8 reference's loop, `kernels::depthwise::int8::depthwise_sums`, input zero point 0).
pub fn depthwise16_reference(
    s: DwShape,
    x: &[i16],
    q: &ConvQ<'_>,
    y: &mut [i16],
) -> Result<(), Error> {
    check_dw(s, x, q, y)?;
    depthwise_sums(s, x, q, |i, c, acc| y[i] = out16(acc, c, q));
    Ok(())
}

/// Channels per block of [`depthwise16`].
const DW16_BLOCK: usize = 16;
/// Channels of [`depthwise16_body`] staged at a time: 16 blocks (9 KiB of taps on the stack)
/// on x86-64 hosts, where the pixels-outside order it allows pays (`perf`: −22 % of samples on
/// V1's 2048-channel maps); one block (0.6 KiB) on the devices, whose stacks are small.
const DW16_CHUNK: usize = if cfg!(all(target_arch = "x86_64", feature = "std")) {
    256
} else {
    DW16_BLOCK
};

/// [`depthwise16_reference`], bit-identical, in portable Rust that the compiler vectorizes: per
/// chunk of channels (one block of 16 on devices, 16 blocks on x86-64 hosts), the blocks' 9
/// taps transposed onto the stack (`[9][16]` `i32`s each), then per output row and pixel, per
/// block and valid tap a fixed-length multiply-add over the block (integer sums are exact in
/// any order; wrapping, like the reference, for hostile blobs). No heap; 0.6 KiB of stack on
/// devices, 10 KiB on hosts.
/// On x86-64 with AVX-512 (`std`; [`crate::kernels::cpu::x86_avx512`]) the same code runs
/// compiled for AVX-512 (16-lane blocks in one register; integer arithmetic, the same bits).
pub fn depthwise16(s: DwShape, x: &[i16], q: &ConvQ<'_>, y: &mut [i16]) -> Result<(), Error> {
    check_dw(s, x, q, y)?;
    #[cfg(feature = "std")]
    {
        // Bands of output rows on the host's threads (each output from the shared input
        // alone: the same bits).
        let band = |oy0, _oy1, yb: &mut [i16]| {
            depthwise16_rows(s, x, q, oy0, yb);
            true
        };
        if let Some(r) = crate::kernels::threads::depthwise_bands(s, y, band) {
            return r;
        }
    }
    depthwise16_rows(s, x, q, 0, y);
    Ok(())
}

/// Output rows from `oy0` on into `y` (which holds whole output rows from there: the
/// AVX-512 build where the CPU has it, else the portable body). Shapes checked by `check_dw`.
fn depthwise16_rows(s: DwShape, x: &[i16], q: &ConvQ<'_>, oy0: usize, y: &mut [i16]) {
    #[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
    if crate::kernels::cpu::x86_avx512() {
        // SAFETY: AVX-512 F/BW/VL/DQ and AVX2 are present (`x86_avx512`).
        unsafe { depthwise16_avx512(s, x, q, oy0, y) };
        return;
    }
    depthwise16_body(s, x, q, oy0, y, |acc, c0, d| {
        for (j, v) in d.iter_mut().enumerate() {
            *v = out16(acc[j], c0 + j, q);
        }
    });
}

/// [`depthwise16_body`] compiled for AVX-512, with the output stage of a whole channel block
/// ([`out16`] of 16 accumulators) on 16 lanes: [`Rq16`](crate::kernels::isa::x86::Rq16) (the
/// reference's 64-bit rounding shift, exactly), the `±MAX16` clamp, `vpmovsdw`.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ and AVX2 available; shapes as checked by `check_dw`.
#[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2")]
unsafe fn depthwise16_avx512(s: DwShape, x: &[i16], q: &ConvQ<'_>, oy0: usize, y: &mut [i16]) {
    use core::arch::x86_64::*;
    // SAFETY: register-only AVX-512 operations (available per the contract).
    let rq = unsafe { crate::kernels::isa::x86::Rq16::new(q.shift, 0) };
    depthwise16_body(s, x, q, oy0, y, |acc, c0, d| {
        // Checked slices: the raw loads and the store below touch exactly these.
        let m16: &[u8; DW16_BLOCK] = q.mult[c0..c0 + DW16_BLOCK]
            .try_into()
            .expect("16 multipliers");
        let d: &mut [i16; DW16_BLOCK] = d.try_into().expect("16 outputs");
        // SAFETY: AVX-512 F/BW available (this closure inherits the enclosing function's
        // features); 16-byte and 64-byte loads of `m16` and `acc`, a 32-byte store to `d`.
        unsafe {
            let m = _mm512_cvtepu8_epi32(_mm_loadu_si128(m16.as_ptr().cast()));
            let a = _mm512_loadu_si512(acc.as_ptr().cast());
            let r = rq.apply(a, m, _mm512_srli_epi64::<32>(m));
            crate::kernels::isa::x86::store_sat16(d, r);
        }
    })
}

/// The body of [`depthwise16`]: output rows `oy0..oy0 + y.len() / (wo·c)` into `y`, which holds
/// just those rows; shapes checked by `check_dw`. `fin(acc, c0, d)` writes the outputs `d` of
/// a whole block of 16 channels from `c0` ([`out16`] of each accumulator); partial blocks use
/// [`out16`] directly.
#[inline(always)]
fn depthwise16_body(
    s: DwShape,
    x: &[i16],
    q: &ConvQ<'_>,
    oy0: usize,
    y: &mut [i16],
    fin: impl Fn(&[i32; DW16_BLOCK], usize, &mut [i16]),
) {
    let wo = s.wo();
    let rows = y.len().checked_div(wo * s.c).unwrap_or(0);
    // Chunks of `DW16_CHUNK` channels, their blocks' taps and biases staged once; then output
    // rows; in a row, pixels outside the chunk's channel blocks, so that a pixel's nine taps
    // are read as contiguous runs of the chunk's channels. With the blocks outside (each row
    // swept once per block), a block's taps are `c` values apart: at 2048 channels 4 KiB, all
    // in one L1 set (as the f32 kernel measured, `kernels/depthwise/x86/mod.rs`).
    let mut cs = 0;
    while cs < s.c {
        let ce = (cs + DW16_CHUNK).min(s.c);
        let mut wt = [[[0i32; DW16_BLOCK]; 9]; DW16_CHUNK / DW16_BLOCK];
        let mut bias = [[0i32; DW16_BLOCK]; DW16_CHUNK / DW16_BLOCK];
        for ch in cs..ce {
            let (b, j) = ((ch - cs) / DW16_BLOCK, (ch - cs) % DW16_BLOCK);
            for (t, row) in wt[b].iter_mut().enumerate() {
                row[j] = q.weight[ch * 9 + t] as i32;
            }
            bias[b][j] = q.bias_at(ch);
        }
        for oy in oy0..(oy0 + rows).min(s.ho()) {
            for ox in 0..wo {
                for b in 0..(ce - cs).div_ceil(DW16_BLOCK) {
                    let c0 = cs + b * DW16_BLOCK;
                    let nb = DW16_BLOCK.min(ce - c0);
                    let mut acc = bias[b];
                    for ky in 0..3 {
                        let iy = (oy * s.stride + ky) as isize - 1;
                        if iy < 0 || iy >= s.h as isize {
                            continue;
                        }
                        for kx in 0..3 {
                            let ix = (ox * s.stride + kx) as isize - 1;
                            if ix < 0 || ix >= s.w as isize {
                                continue;
                            }
                            let at = (iy as usize * s.w + ix as usize) * s.c + c0;
                            let w = &wt[b][ky * 3 + kx];
                            if nb == DW16_BLOCK {
                                let xs = &x[at..at + DW16_BLOCK];
                                for j in 0..DW16_BLOCK {
                                    acc[j] = acc[j].wrapping_add((xs[j] as i32).wrapping_mul(w[j]));
                                }
                            } else {
                                let xs = &x[at..at + nb];
                                for ((a, &v), &wj) in acc.iter_mut().zip(xs).zip(w) {
                                    *a = a.wrapping_add((v as i32).wrapping_mul(wj));
                                }
                            }
                        }
                    }
                    let o = ((oy - oy0) * wo + ox) * s.c + c0;
                    if nb == DW16_BLOCK {
                        fin(&acc, c0, &mut y[o..o + DW16_BLOCK]);
                    } else {
                        for j in 0..nb {
                            y[o + j] = out16(acc[j], c0 + j, q);
                        }
                    }
                }
            }
        }
        cs = ce;
    }
}

/// Adaptive average pool `[h][w][c]` → `[ho][wo][c]` (the input's scale):
/// `y = div_round(Σx, count)` (the int8 pool with zero point 0, 16-bit saturation).
#[allow(clippy::too_many_arguments)]
pub fn avg_pool16(
    x: &[i16],
    h: usize,
    w: usize,
    c: usize,
    y: &mut [i16],
    ho: usize,
    wo: usize,
) -> Result<(), Error> {
    pool_means(x, h, w, c, 0, y, ho, wo, |v| sat(v, MAX16))
}

/// `a = a + b`: [`AddQ::sum`] (zero points 0), saturated to 16 bits.
/// With AVX-512, 16 pairs at a time (the same bits) when both zero points lie within `±2^15`.
pub fn add16_inplace(a: &mut [i16], b: &[i16], q: &AddQ) -> Result<(), Error> {
    check_len("16-bit add operand", b, a.len())?;
    elementwise(a, |i0, ab| {
        let bb = b.get(i0..i0 + ab.len()).ok_or(BAND)?;
        #[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
        let (ab, bb) = match crate::kernels::cpu::x86_avx512() && add16_vector_ok(q) {
            true => {
                // SAFETY: AVX-512 F/BW/VL/DQ and AVX2 present (`x86_avx512`); `bb` is as long
                // as `ab` (cut from the checked operand); zero points within ±2^15.
                let n = unsafe { add16_avx512(ab, bb, q) };
                (&mut ab[n..], &bb[n..])
            }
            false => (ab, bb),
        };
        for (x, &y) in ab.iter_mut().zip(bb) {
            *x = sat(q.sum(*x as i32, y as i32), MAX16);
        }
        Ok(())
    })
}

/// Whether the vector ADD takes `q`: `x − z` must fit the 32-bit operand of `vpmuldq` for every
/// `i16` `x`.
#[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
fn add16_vector_ok(q: &AddQ) -> bool {
    const Z: i32 = 1 << 15;
    (-Z..=Z).contains(&q.a_zero) && (-Z..=Z).contains(&q.b_zero)
}

/// [`AddQ::sum`] then the `±MAX16` saturation on 16 pairs at a time: `(x − z)·m` of each operand
/// as an exact 64-bit product (`vpmuldq`: `|x − z| < 2^17` here), their wrapping 64-bit sum, the
/// 64-bit rounding shift (`requant64`), the low 32 bits plus the output zero point (wrapping), as
/// the scalar code computes them ([`Rq16::finish`](crate::kernels::isa::x86::Rq16::finish)).
/// Returns how many pairs it did (whole vectors of 16); the caller does the rest.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ and AVX2 available; `b.len() ≥ a.len()`; [`add16_vector_ok`].
#[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2")]
unsafe fn add16_avx512(a: &mut [i16], b: &[i16], q: &AddQ) -> usize {
    use core::arch::x86_64::*;
    let mut n = 0;
    // SAFETY (whole block): register operations; 32-byte loads of each 16-pair chunk of `a`
    // and `b` (`b` at least as long), 32-byte stores to the chunk of `a`.
    unsafe {
        let (za, zb) = (_mm512_set1_epi32(q.a_zero), _mm512_set1_epi32(q.b_zero));
        let (ma, mb) = (_mm512_set1_epi32(q.a_mult), _mm512_set1_epi32(q.b_mult));
        let rq = crate::kernels::isa::x86::Rq16::new(q.shift, q.out_zero);
        for (ca, cb) in a.chunks_exact_mut(16).zip(b.chunks_exact(16)) {
            let xa = _mm512_cvtepi16_epi32(_mm256_loadu_si256(ca.as_ptr().cast()));
            let xb = _mm512_cvtepi16_epi32(_mm256_loadu_si256(cb.as_ptr().cast()));
            let (da, db) = (_mm512_sub_epi32(xa, za), _mm512_sub_epi32(xb, zb));
            let even = _mm512_add_epi64(_mm512_mul_epi32(da, ma), _mm512_mul_epi32(db, mb));
            let odd = _mm512_add_epi64(
                _mm512_mul_epi32(_mm512_srli_epi64::<32>(da), ma),
                _mm512_mul_epi32(_mm512_srli_epi64::<32>(db), mb),
            );
            let dst: &mut [i16; 16] = ca.try_into().expect("16 values");
            crate::kernels::isa::x86::store_sat16(dst, rq.finish(even, odd));
            n += 16;
        }
    }
    n
}

/// A band of an elementwise kernel outside its operand (cannot happen: the bands are cut
/// from a buffer of the checked length).
const BAND: Error = Error::InvalidConfig("elementwise: band outside the operand");

/// Runs `f(first, band)` over `out`: with the `std` feature in bands of elements on the host's
/// threads when it is large enough (each element computed alone: same bits), else whole.
fn elementwise<T: Send>(
    out: &mut [T],
    f: impl Fn(usize, &mut [T]) -> Result<(), Error> + Sync,
) -> Result<(), Error> {
    #[cfg(feature = "std")]
    {
        let n = crate::kernels::threads::bands(out.len(), crate::kernels::threads::ELEM_COST);
        if n > 1 {
            return crate::kernels::threads::split_inplace_at(out, 1, n, f);
        }
    }
    f(0, out)
}

/// Quantizes f32 values: `q = clamp(roundf(x / scale) as i32, ±clamp)` (`as i32` saturates and
/// maps NaN to 0 on every target).
/// With AVX-512, 16 values at a time (the same bits).
pub fn quantize16(x: &[f32], scale: f32, clamp: i32, xq: &mut [i16]) -> Result<(), Error> {
    check_len("quantized input", xq, x.len())?;
    elementwise(xq, |i0, qb| {
        let xb = x.get(i0..i0 + qb.len()).ok_or(BAND)?;
        #[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
        let (xb, qb) = match crate::kernels::cpu::x86_avx512() {
            true => {
                // SAFETY: AVX-512 F/BW/VL/DQ and AVX2 present (`x86_avx512`); `xb` is as long
                // as `qb`.
                let n = unsafe { quantize16_avx512(xb, scale, clamp, qb) };
                (&xb[n..], &mut qb[n..])
            }
            false => (xb, qb),
        };
        for (v, q) in xb.iter().zip(qb.iter_mut()) {
            *q = sat(libm::roundf(*v / scale) as i32, clamp);
        }
        Ok(())
    })
}

/// [`quantize16`] on 16 values at a time: the IEEE division (`vdivps`, correctly rounded like
/// the scalar `/`), `roundf` as truncation plus one away from zero where the exact remainder is
/// at least ½, the saturation as a float clamp to `±clamp` (the values are integers by then),
/// NaN to 0 (the scalar `as i32`). Returns how many values it did (whole vectors of 16); the
/// caller does the rest.
///
/// # Safety
/// AVX-512 F/BW/VL/DQ and AVX2 available; `x.len() ≥ q.len()`.
#[cfg(all(target_arch = "x86_64", feature = "std", ldp_avx512))]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512dq,avx512bw,avx512vl,avx2")]
unsafe fn quantize16_avx512(x: &[f32], scale: f32, clamp: i32, q: &mut [i16]) -> usize {
    use core::arch::x86_64::*;
    let c = clamp.clamp(0, MAX16);
    let n16 = q.len() / 16 * 16;
    let q16 = &mut q[..n16];
    // SAFETY (whole block): register operations; 64-byte loads of `x` and 32-byte stores to `q`
    // at i + 16 ≤ n16 ≤ q.len() ≤ x.len().
    unsafe {
        let sc = _mm512_set1_ps(scale);
        let (cp, cn) = (_mm512_set1_ps(c as f32), _mm512_set1_ps(-(c as f32)));
        let (half, one) = (_mm512_set1_ps(0.5), _mm512_set1_ps(1.0));
        let sign = _mm512_set1_ps(-0.0);
        let mut i = 0;
        while i < n16 {
            let d = _mm512_div_ps(_mm512_loadu_ps(x.as_ptr().add(i)), sc);
            let t = _mm512_roundscale_ps::<{ _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC }>(d);
            let frac = _mm512_sub_ps(d, t);
            let away = _mm512_cmp_ps_mask::<_CMP_GE_OQ>(_mm512_abs_ps(frac), half);
            let step = _mm512_or_ps(one, _mm512_and_ps(d, sign));
            let r = _mm512_mask_add_ps(t, away, t, step);
            let r = _mm512_min_ps(_mm512_max_ps(r, cn), cp);
            let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(d, d);
            let v = _mm512_maskz_cvtps_epi32(!nan, r);
            _mm256_storeu_si256(q16.as_mut_ptr().add(i).cast(), _mm512_cvtepi32_epi16(v));
            i += 16;
        }
    }
    n16
}

/// Dequantizes: `y = q as f32 · s`.
pub fn dequantize16(yq: &[i16], s: f32, y: &mut [f32]) -> Result<(), Error> {
    check_len("output", y, yq.len())?;
    elementwise(y, |i0, yb| {
        let qb = yq.get(i0..i0 + yb.len()).ok_or(BAND)?;
        for (o, &q) in yb.iter_mut().zip(qb) {
            *o = q as f32 * s;
        }
        Ok(())
    })
}

// ---------------------------------------------------------------------------------------------
// The MobileVLM V2 graph.

const fn r16(n: usize) -> usize {
    n.div_ceil(16) * 16
}

/// Bytes of scratch [`forward_i16`] needs: for V2 its graph's 16-bit memory plan, for
/// a graph architecture [`crate::graph::a16::scratch_bytes_i16`].
pub const fn scratch_bytes_i16(cfg: &ModelConfig) -> usize {
    match cfg {
        ModelConfig::Graph(g) => crate::graph::a16::scratch_bytes_i16(g),
        ModelConfig::MobileVlmV1(c) => {
            crate::graph::a16::scratch_bytes_nodes16(crate::graph::mobilevlm_v1::NODES, c.dims())
        }
        ModelConfig::MobileVlmV2(c) => crate::graph::a16::scratch_bytes_nodes16(
            crate::graph::mobilevlm_v2::nodes_for(c.tokens_in()),
            c.dims(),
        ),
        _ => 0,
    }
}

/// Bytes of scratch of the f32-boundary forward pass (plus the 16-bit input and output).
pub const fn scratch_bytes(cfg: &ModelConfig) -> usize {
    scratch_bytes_i16(cfg) + r16(2 * cfg.input_len()) + r16(2 * cfg.output_len())
}

/// Whether `m` is a 16-bit-activation blob.
pub fn is_a16(m: &Model<'_>) -> bool {
    m.header().flags & crate::blob::specs::FLAG_ACT16 != 0
}

fn params<'m, 'a>(m: &'m Model<'a>) -> Result<Params<'m, 'a>, Error> {
    if !is_a16(m) {
        return Err(Error::Unsupported("not a 16-bit-activation blob"));
    }
    Params::new(m)
}

/// The integer forward pass of a 16-bit-activation blob (V2, or a graph architecture:
/// [`crate::graph::a16::forward_i16`]): `i16` input (quantized as [`quantize_input16`] does) to
/// `i16` output. `scratch` needs [`scratch_bytes_i16`] bytes, 2-byte aligned. `trace` sees every
/// activation's name and scale (with empty data).
pub fn forward_i16(
    m: &Model<'_>,
    x: &[i16],
    y: &mut [i16],
    scratch: &mut [u8],
    t: super::Trace<'_>,
) -> Result<(), Error> {
    if let ModelConfig::Graph(_) | ModelConfig::MobileVlmV1(_) = m.config() {
        return crate::graph::a16::forward_i16(m, x, y, scratch, t);
    }
    params(m)?;
    let ModelConfig::MobileVlmV2(c) = m.config() else {
        return Err(Error::Unsupported(
            "16-bit activations exist for MobileVLM V1, V2 and graph architectures only",
        ));
    };
    let nodes = crate::graph::mobilevlm_v2::nodes_for(c.tokens_in());
    crate::graph::a16::forward_nodes16(
        m,
        nodes,
        c.dims(),
        crate::graph::a16::Form16::Appended,
        x,
        y,
        scratch,
        t,
    )
}

/// Quantizes a channels-last f32 input as a 16-bit-activation blob expects.
pub fn quantize_input16(m: &Model<'_>, x: &[f32], xq: &mut [i16]) -> Result<(), Error> {
    if let ModelConfig::Graph(_) | ModelConfig::MobileVlmV1(_) = m.config() {
        return crate::graph::a16::quantize_input16(m, x, xq);
    }
    let p = params(m)?;
    let scale = m.f32s(idx(m, "input.scale", "")?)?;
    check_len("input scale", scale, 1)?;
    check_len("input", x, m.config().input_len())?;
    let q_x = crate::graph::a16::appended::q_x(crate::graph::mobilevlm_v2::NODES);
    quantize16(x, scale[0], p.z(q_x), xq)
}

/// Dequantizes the 16-bit output.
pub fn dequantize_output16(m: &Model<'_>, yq: &[i16], y: &mut [f32]) -> Result<(), Error> {
    if let ModelConfig::Graph(_) | ModelConfig::MobileVlmV1(_) = m.config() {
        return crate::graph::a16::dequantize_output16(m, yq, y);
    }
    let p = params(m)?;
    dequantize16(
        yq,
        p.s(crate::graph::meta::output(
            crate::graph::mobilevlm_v2::NODES,
        )),
        y,
    )
}

/// f32-in, f32-out forward pass of a 16-bit-activation blob (`scratch`: [`scratch_bytes`]).
pub fn forward_f32(
    m: &Model<'_>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [u8],
    trace: super::Trace<'_>,
) -> Result<(), Error> {
    let cfg = m.config();
    let need = scratch_bytes(&cfg);
    if scratch.len() < need {
        return Err(Error::ScratchTooSmall {
            need,
            have: scratch.len(),
        });
    }
    let (work, rest) = scratch.split_at_mut(scratch_bytes_i16(&cfg));
    let (xq, rest) = split16(rest, cfg.input_len())?;
    let (yq, _) = split16(rest, cfg.output_len())?;
    quantize_input16(m, input, xq)?;
    forward_i16(m, xq, yq, work, trace)?;
    dequantize_output16(m, yq, output)
}
