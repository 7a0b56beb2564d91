//! x86-64 AVX-VNNI int8 pointwise kernel (`vpdpbusd` on ymm registers, VEX-encoded), with an
//! `i8` or an `i16` output; bit-identical to [`crate::quant::kernels::pointwise_reference`].
//!
//! For CPUs with AVX2 and AVX-VNNI but no AVX-512 VNNI (Intel's Alder Lake and later client
//! cores, the Sierra Forest Xeons), where the AVX2 kernel ([`super::int8`]) would multiply with
//! `vpmaddwd` and add with `vpaddd`: one `vpdpbusd` does 32 exact multiply-accumulates.
//!
//! The arithmetic is the AVX-512 VNNI kernel's ([`super::vnni`]): activations enter as
//! `u = x ^ 0x80 = x + 128`, and `128·Σ_i w[o][i]` (computed with the same instruction on a
//! vector of ones) is taken out of the bias, so every step is a wrapping `i32` addition and the
//! requantization reads the same 32 bits as the reference's.
//!
//! Layout: a panel of 16 output channels is packed into `[⌈c_in/4⌉][16][4]` bytes
//! (`vnni::pack_panel_w`), two ymm per 4 channels. A tile of 6 pixels has its rows
//! converted to `u8` once into a small buffer, shared by a group of up to 4 panels (64
//! outputs); then per 4 channels: two panel loads, six broadcasts and 12 `vpdpbusd` into
//! 6 × 16 `i32` accumulators (12 of the 16 ymm registers). The epilogue is the AVX2 kernel's
//! (bias, `Rq`, saturation, table) on 8 lanes. When 16 does not divide `c_out` the last panel
//! overlaps the one before (outputs computed twice get the same value). Takes `c_out ≥ 16`
//! and `c_in ≤ 2048` (the four panels and the rows: 140 KiB, in `kernels::workspace` with
//! `std`); other shapes go to the AVX2 kernel.
//!
//! The AVX-VNNI intrinsics are stable since Rust 1.89: with an older compiler (`ldp_avx512`
//! unset by `build.rs`) this kernel never runs.
// Everything using the 1.89 intrinsics is behind `cfg(ldp_avx512)` (rustc ≥ 1.89, build.rs).
#![allow(clippy::incompatible_msrv)]
#![cfg_attr(not(ldp_avx512), allow(unused_imports, dead_code))]

use core::arch::x86_64::*;

use super::int8::Out;
use crate::error::Error;
use crate::kernels::cpu;
use crate::kernels::isa::x86::Rq;
use crate::quant::kernels::ConvQ;

/// Outputs per panel (two ymm of `i32`).
const NR: usize = 16;
/// Pixels per register tile.
const MR: usize = 6;
/// Largest `c_in` of this kernel.
const PK_MAX: usize = 2048;
/// Panels per group (one conversion of the pixel rows per group).
const G: usize = 4;
/// Words of a packed panel buffer (`c_in ≤ PK_MAX`).
const PANEL_WORDS: usize = PK_MAX / 4 * NR;
/// Words of a converted pixel row.
const ROW_WORDS: usize = PK_MAX / 4;
/// Words of [`run`]'s workspace: `G` panels, then `MR` converted pixel rows.
const WS_WORDS: usize = G * PANEL_WORDS + MR * ROW_WORDS;

/// `true` when this kernel takes the shape (else the caller runs the next kernel).
fn takes(c_in: usize, c_out: usize) -> bool {
    c_out >= NR && c_in <= PK_MAX
}

/// `true` when this kernel can run a layer of this shape here: built with the 1.89
/// intrinsics, a CPU with AVX-VNNI that [`cpu::x86_level`] allows, a shape it takes.
fn runs(c_in: usize, c_out: usize) -> bool {
    cfg!(ldp_avx512) && takes(c_in, c_out) && cpu::x86_avxvnni()
}

/// Runs the AVX-VNNI kernel if the CPU has AVX-VNNI, [`cpu::x86_level`] allows it and the
/// shape suits it (else `false`). The shapes are checked again here (O(1)).
pub(crate) fn pointwise<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) -> bool {
    if !runs(c_in, c_out) || super::int8::check(x, c_in, q, c_out, y) != Ok(pixels) {
        return false;
    }
    // SAFETY: AVX-VNNI and AVX2 are present (checked above); `check` just verified
    // x.len() = pixels·c_in, weight = c_out·c_in, bias/mult = c_out, y = pixels·c_out without
    // overflow; the shape is one this kernel takes.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    true
}

/// The AVX-VNNI kernel with its own shape checks, for tests and benchmarks (`i8` output,
/// optional table). Shapes it does not take (`c_out < 16` or `c_in > 2048`) run the AVX2
/// kernel.
///
/// # Safety
/// The CPU must support AVX2, FMA, F16C and AVX-VNNI (`is_x86_feature_detected!("avxvnni")`).
pub unsafe fn pointwise_avxvnni(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), Error> {
    // SAFETY: the contract is `forced`'s.
    unsafe { forced(x, c_in, q, c_out, y) }
}

/// The AVX-VNNI kernel with a 16-bit output and its own shape checks, for tests and
/// benchmarks. Shapes it does not take run the AVX2 kernel.
///
/// # Safety
/// As [`pointwise_avxvnni`].
pub unsafe fn pointwise_i16_avxvnni(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
) -> Result<(), Error> {
    // SAFETY: the contract is `forced`'s.
    unsafe { forced(x, c_in, q, c_out, y) }
}

/// The kernel (or, for shapes it does not take, the AVX2 one) with its own shape checks.
///
/// # Safety
/// AVX2, FMA, F16C and AVX-VNNI available.
unsafe fn forced<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
) -> Result<(), Error> {
    let pixels = super::int8::check(x, c_in, q, c_out, y)?;
    // SAFETY: features per the contract, shapes checked just above.
    unsafe {
        if cfg!(ldp_avx512) && takes(c_in, c_out) {
            run(x, c_in, q, c_out, y, pixels);
        } else {
            super::int8::run(x, c_in, q, c_out, y, pixels);
        }
    }
    Ok(())
}

/// Epilogue parameters of a panel: the 16 biases with `128·Σw` taken out and the 16
/// multipliers (8 lanes per register), the layer's [`Rq`].
#[cfg(ldp_avx512)]
type PanelOut = ([__m256i; 2], [__m256i; 2], Rq);

/// Converts pixel rows `p0..p0+M` to `u8` (`x ^ 0x80`) into `xt` (rows of `PK_MAX` bytes),
/// zero-padded to `4·⌈c_in/4⌉` bytes.
///
/// # Safety
/// `p0 + M ≤ pixels`, `x.len() = pixels·c_in`, `c_in ≤ PK_MAX`, `M ≤ MR`, `xt` holds
/// `MR·ROW_WORDS` words; AVX2 available.
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn convert<const M: usize>(x: &[i8], c_in: usize, xt: &mut [u32], p0: usize) {
    let kg = c_in.div_ceil(4);
    let c32 = c_in / 32 * 32;
    // SAFETY: rows p0..p0+M of x hold c_in bytes (32-byte loads at i + 32 ≤ c32); xt rows of
    // PK_MAX bytes receive 4·kg ≤ PK_MAX bytes.
    unsafe {
        let flip = _mm256_set1_epi8(-128);
        for m in 0..M {
            let xr = x.as_ptr().add((p0 + m) * c_in);
            let tr = xt.as_mut_ptr().add(m * ROW_WORDS) as *mut u8;
            let mut i = 0;
            while i < c32 {
                let v = _mm256_loadu_si256(xr.add(i) as *const __m256i);
                _mm256_storeu_si256(tr.add(i) as *mut __m256i, _mm256_xor_si256(v, flip));
                i += 32;
            }
            while i < 4 * kg {
                *tr.add(i) = if i < c_in {
                    (*xr.add(i) as u8) ^ 0x80
                } else {
                    0
                };
                i += 1;
            }
        }
    }
}

/// One tile: pixels `p0..p0+M` (already converted into `xt`), outputs `o0..o0+16`.
///
/// # Safety
/// `p0 + M ≤ pixels`, `o0 + 16 ≤ c_out`, shapes validated; `panel` holds `kg·16` packed words
/// of this panel, `kg = ⌈c_in/4⌉ ≤ PK_MAX/4`; `xt` holds the converted rows ([`convert`]);
/// AVX2 and AVX-VNNI available.
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<Y: Out, const M: usize>(
    c_in: usize,
    panel: &[u32],
    xt: &[u32],
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    o0: usize,
    p0: usize,
    (bias, mult, rq): PanelOut,
) {
    let kg = c_in.div_ceil(4);
    // SAFETY (whole body): panel words are read for j < kg, xt words for j < kg in rows < M;
    // y is written at (p0+m)·c_out + o0 .. +16 ≤ (p0+m+1)·c_out.
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); 2]; M];
        let xs: [*const u32; M] = core::array::from_fn(|m| xt.as_ptr().add(m * ROW_WORDS));
        let wp = panel.as_ptr() as *const __m256i;
        for j in 0..kg {
            let w0 = _mm256_loadu_si256(wp.add(2 * j));
            let w1 = _mm256_loadu_si256(wp.add(2 * j + 1));
            for m in 0..M {
                let u = _mm256_set1_epi32(*xs[m].add(j) as i32);
                acc[m][0] = _mm256_dpbusd_avx_epi32(acc[m][0], u, w0);
                acc[m][1] = _mm256_dpbusd_avx_epi32(acc[m][1], u, w1);
            }
        }
        for (m, a) in acc.iter().enumerate() {
            let r0 = rq.apply(_mm256_add_epi32(a[0], bias[0]), mult[0]);
            let r1 = rq.apply(_mm256_add_epi32(a[1], bias[1]), mult[1]);
            Y::store16(y, (p0 + m) * c_out + o0, r0, r1, q.lut);
        }
    }
}

/// `bias − 128·Σ_i w[o][i]` of the 16 outputs of a packed panel (`o0..o0+16`), `Σ_i w[o][i]`
/// computed exactly with `vpdpbusd` of a vector of ones; then the panel's epilogue registers.
///
/// # Safety
/// `o0 + 16 ≤ c_out`, bias/mult validated for `c_out`; `panel` holds `kg·16` packed words;
/// AVX2 and AVX-VNNI available.
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn panel_out(q: &ConvQ<'_>, o0: usize, panel: &[u32], kg: usize, rq: Rq) -> PanelOut {
    // SAFETY: panel words j < kg (2 ymm each); 8-lane loads inside 16-element arrays.
    unsafe {
        let ones = _mm256_set1_epi8(1);
        let wp = panel.as_ptr() as *const __m256i;
        let mut sw = [_mm256_setzero_si256(); 2];
        for j in 0..kg {
            sw[0] = _mm256_dpbusd_avx_epi32(sw[0], ones, _mm256_loadu_si256(wp.add(2 * j)));
            sw[1] = _mm256_dpbusd_avx_epi32(sw[1], ones, _mm256_loadu_si256(wp.add(2 * j + 1)));
        }
        let mut sws = [0i32; NR];
        _mm256_storeu_si256(sws.as_mut_ptr() as *mut __m256i, sw[0]);
        _mm256_storeu_si256(sws.as_mut_ptr().add(8) as *mut __m256i, sw[1]);
        let b = q.bias_n::<NR>(o0);
        let bc: [i32; NR] = core::array::from_fn(|t| b[t].wrapping_sub(sws[t] << 7));
        let mu = q.mult_n::<NR>(o0);
        let bias: [__m256i; 2] =
            core::array::from_fn(|t| _mm256_loadu_si256(bc.as_ptr().add(8 * t) as *const __m256i));
        let mult: [__m256i; 2] =
            core::array::from_fn(|t| _mm256_loadu_si256(mu.as_ptr().add(8 * t) as *const __m256i));
        (bias, mult, rq)
    }
}

/// Converts pixel rows `p0..p0+M` once, then runs them against each of the `ng` packed panels
/// of the group.
///
/// # Safety
/// As [`convert`] and [`tile`], for every panel `g < ng` (`o0s[g] + 16 ≤ c_out`, `panels[g]`
/// packed for it).
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tiles<Y: Out, const M: usize>(
    x: &[i8],
    c_in: usize,
    panels: &[&[u32]; G],
    outs: &[PanelOut; G],
    o0s: &[usize; G],
    ng: usize,
    xt: &mut [u32],
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    p0: usize,
) {
    // SAFETY: per this function's contract.
    unsafe {
        convert::<M>(x, c_in, xt, p0);
        for g in 0..ng {
            tile::<Y, M>(c_in, panels[g], xt, q, c_out, y, o0s[g], p0, outs[g]);
        }
    }
}

/// The kernel, on this thread's workspace (`kernels::workspace`).
///
/// # Safety
/// Shapes validated, `c_out ≥ 16`, `c_in ≤ PK_MAX`; AVX2, FMA, F16C and AVX-VNNI available.
#[cfg(ldp_avx512)]
unsafe fn run<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) {
    crate::kernels::workspace::with::<u32, WS_WORDS, _>(|ws| {
        // SAFETY: this function's contract; `ws` holds WS_WORDS words.
        unsafe { run_in(x, c_in, q, c_out, y, pixels, ws) }
    })
}

/// Without the 1.89 intrinsics: the AVX2 kernel (never reached: [`runs`] is `false` then).
///
/// # Safety
/// As the other version (shapes validated; AVX2 available).
#[cfg(not(ldp_avx512))]
unsafe fn run<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) {
    // SAFETY: per this function's contract.
    unsafe { super::int8::run(x, c_in, q, c_out, y, pixels) }
}

/// [`run`] on its workspace: groups of up to 4 panels, all pixels in tiles of 6 (then 4, 2,
/// 1) against each group.
///
/// # Safety
/// As [`run`]; `ws.len() ≥ WS_WORDS`.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
unsafe fn run_in<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    ws: &mut [u32],
) {
    let kg = c_in.div_ceil(4);
    let (panels, xt) = ws.split_at_mut(G * PANEL_WORDS);
    // SAFETY (whole body): AVX2 and AVX-VNNI available (this function's contract); each panel
    // holds kg·16 ≤ PANEL_WORDS words; every o0 + 16 ≤ c_out, so bias/mult reads are in
    // bounds; the tiles stay inside p < pixels; xt holds MR rows of ROW_WORDS.
    unsafe {
        let rq = Rq::new(q.shift, q.out_zero);
        let zero = _mm256_setzero_si256();
        let mut o = 0;
        while o < c_out {
            let (o0s, ng) = super::vnni::group_of::<NR, G>(o, c_out);
            let mut outs: [PanelOut; G] = [([zero; 2], [zero; 2], rq); G];
            for (g, panel) in panels.chunks_exact_mut(PANEL_WORDS).take(ng).enumerate() {
                super::vnni::pack_panel_w::<NR>(q.weight, c_in, o0s[g], panel);
                outs[g] = panel_out(q, o0s[g], panel, kg, rq);
            }
            let pn: [&[u32]; G] =
                core::array::from_fn(|g| &panels[g * PANEL_WORDS..(g + 1) * PANEL_WORDS]);
            let mut p = 0;
            while p < pixels {
                let left = pixels - p;
                p += if left >= 6 {
                    tiles::<Y, 6>(x, c_in, &pn, &outs, &o0s, ng, xt, q, c_out, y, p);
                    6
                } else if left >= 4 {
                    tiles::<Y, 4>(x, c_in, &pn, &outs, &o0s, ng, xt, q, c_out, y, p);
                    4
                } else if left >= 2 {
                    tiles::<Y, 2>(x, c_in, &pn, &outs, &o0s, ng, xt, q, c_out, y, p);
                    2
                } else {
                    tiles::<Y, 1>(x, c_in, &pn, &outs, &o0s, ng, xt, q, c_out, y, p);
                    1
                };
            }
            o += ng * NR;
        }
    }
}
