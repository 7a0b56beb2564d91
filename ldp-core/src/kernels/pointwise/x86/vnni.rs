//! x86-64 AVX-512 VNNI int8 pointwise kernel (`vpdpbusd`), with an `i8` or an `i16` output;
//! bit-identical to [`crate::quant::kernels::pointwise_reference`].
//!
//! `vpdpbusd` multiplies 4 unsigned bytes by 4 signed bytes, adds the four products (each within
//! `±255·128`, their sum within `±2^17`) and adds that to an `i32` lane **without saturation**,
//! so it is exact modulo `2^32`, like the reference's `wrapping_add`. The activations are
//! signed, so they enter as `u = x + 128` (`x ^ 0x80`) and the surplus is taken out of the bias:
//! `Σ u·w = Σ x·w + 128·Σ w`, hence `acc = (bias − 128·Σ_i w[o][i]) + Σ_i u_i·w[o][i]` equals the
//! reference's `bias + Σ x·w` modulo `2^32` — every step is a wrapping `i32` addition, and the
//! requantization (`Rq`) only reads those 32 bits. `Σ_i w[o][i]` is computed per panel with
//! the same instruction (`vpdpbusd` of a vector of ones).
//!
//! Layout: a panel of 32 output channels is packed into `[⌈c_in/4⌉][32][4]` bytes (word `j` of
//! output `o` holds channels `4j..4j+4`, zero-padded past `c_in`; 32-bit 8×8 transposes), so
//! one zmm holds 16 outputs' 4-channel words; a tile of 12 pixels has its rows converted to
//! `u8` once into a small buffer (shared by a group of up to 4 panels, packed together, so that
//! each pixel row is converted once per 128 outputs), then per 4 channels: two panel loads,
//! twelve `vpbroadcastd` and 24 `vpdpbusd` into 12 × 32 `i32` accumulators (24 zmm) holding
//! the outputs in order. The epilogue is the AVX2 kernel's (bias, `Rq`, saturation, table) on
//! 8 lanes at a time. When 32 does not divide `c_out` the last panel overlaps the one before
//! (outputs computed twice get the same value). Takes `c_out ≥ 32` and `c_in ≤ 2048` (the four
//! panels are 256 KiB, in `kernels::workspace`); other shapes go to the AVX2 kernel
//! ([`super::int8`]).
//!
//! The AVX-512 intrinsics are stable since Rust 1.89: with an older compiler (`ldp_avx512` unset
//! by `build.rs`) the entry points run the AVX2 kernel.
// Everything using the 1.89 intrinsics is behind `cfg(ldp_avx512)` (rustc ≥ 1.89, build.rs).
#![allow(clippy::incompatible_msrv)]
#![cfg_attr(not(ldp_avx512), allow(unused_imports, dead_code))]

use core::arch::x86_64::*;

use super::int8::Out;
use super::transpose8;
use crate::error::Error;
use crate::kernels::cpu;
use crate::kernels::isa::x86::Rq;
use crate::quant::kernels::ConvQ;

/// Outputs per panel (two zmm of `i32`).
const NR: usize = 32;
/// Pixels per register tile.
const MR: usize = 12;
/// Largest `c_in` of this kernel.
const PK_MAX: usize = 2048;
/// Panels per group (one conversion of the pixel rows per group).
const G: usize = 4;

/// `true` when this kernel takes the shape (else the caller runs the next kernel).
fn takes(c_in: usize, c_out: usize) -> bool {
    c_out >= NR && c_in <= PK_MAX
}

/// `true` when this kernel can run a layer of this shape here: built with the AVX-512
/// intrinsics, a CPU with AVX-512 VNNI that [`cpu::x86_level`] allows, a shape it takes.
fn runs(c_in: usize, c_out: usize) -> bool {
    cfg!(ldp_avx512) && takes(c_in, c_out) && cpu::x86_vnni()
}

/// The panels of the group that starts at output `o` (a multiple of 32): [`group_of`].
fn group(o: usize, c_out: usize) -> ([usize; G], usize) {
    group_of::<NR, G>(o, c_out)
}

/// The panels of `W` outputs of the group that starts at output `o` (a multiple of `W`): the
/// first output of each (the last one overlapping the one before when `W` does not divide
/// `c_out`) and how many there are (at most `N`). Panel `g` of the group is panel `o/W + g` of
/// the layer.
pub(super) fn group_of<const W: usize, const N: usize>(
    o: usize,
    c_out: usize,
) -> ([usize; N], usize) {
    let mut o0s = [0usize; N];
    let mut ng = 0;
    while ng < N && o + ng * W < c_out {
        o0s[ng] = (o + ng * W).min(c_out.saturating_sub(W));
        ng += 1;
    }
    (o0s, ng)
}

/// Runs the VNNI kernel if the CPU has AVX-512 VNNI, [`cpu::x86_level`] allows it and the
/// shape suits it (else `false`). Shapes validated by the caller.
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
    // SAFETY: AVX-512 F/BW/VL/DQ/VNNI and AVX2 are present (checked above); `check` just
    // verified x.len() = pixels·c_in, weight = c_out·c_in, bias/mult = c_out, y = pixels·c_out
    // without overflow; the shape is one this kernel takes.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    true
}

/// The VNNI kernel with its own shape checks, for tests and benchmarks (`i8` output, optional
/// table). Shapes it does not take (`c_out < 32` or `c_in > 2048`) run the AVX2 kernel.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL, DQ and VNNI, AVX2, FMA and F16C
/// (`is_x86_feature_detected!`).
pub unsafe fn pointwise_vnni(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
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

/// The VNNI kernel with a 16-bit output and its own shape checks, for tests and benchmarks.
/// Shapes it does not take (`c_out < 32` or `c_in > 2048`) run the AVX2 kernel.
///
/// # Safety
/// As [`pointwise_vnni`].
pub unsafe fn pointwise_i16_vnni(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
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

/// Packs outputs `o0..o0+32` into `panel` as `[kg][32]` words ([`pack_panel_w`]).
///
/// # Safety
/// As [`pack_panel_w`] with `W = 32`.
#[cfg(ldp_avx512)]
#[inline(always)]
pub(super) unsafe fn pack_panel(weight: &[i8], c_in: usize, o0: usize, panel: &mut [u32]) {
    // SAFETY: per this function's contract.
    unsafe { pack_panel_w::<NR>(weight, c_in, o0, panel) }
}

/// Packs outputs `o0..o0+W` (`W` a multiple of 8) into `panel` as `[kg][W]` words
/// (`kg = ⌈c_in/4⌉`), word `j` of output `o` = channels `4j..4j+4` of row `o0 + o`, zero-padded
/// past `c_in`: the layout of `vpdpbusd`'s signed operand, `W/16` zmm or `W/8` ymm per step.
///
/// # Safety
/// `o0 + W ≤ c_out`, `weight.len() = c_out·c_in`, `panel.len() ≥ kg·W`; AVX2 available.
#[cfg(ldp_avx512)]
#[inline(always)]
pub(super) unsafe fn pack_panel_w<const W: usize>(
    weight: &[i8],
    c_in: usize,
    o0: usize,
    panel: &mut [u32],
) {
    let kw = c_in / 4; // full words per row
    let kw8 = kw / 8 * 8;
    let kg = c_in.div_ceil(4);
    let pp = panel.as_mut_ptr();
    for l0 in (0..W).step_by(8) {
        // SAFETY: rows o0+l0..o0+l0+8 < c_out; 32-byte loads at byte 4·jj with jj + 8 ≤ kw stay
        // inside a row; stores go to panel[(jj+j)·W + l0 .. +8] with jj + j < kw ≤ kg.
        unsafe {
            let rows: [*const i8; 8] =
                core::array::from_fn(|i| weight.as_ptr().add((o0 + l0 + i) * c_in));
            let mut jj = 0;
            while jj < kw8 {
                let mut r: [__m256; 8] =
                    core::array::from_fn(|i| _mm256_loadu_ps(rows[i].add(4 * jj) as *const f32));
                transpose8(&mut r);
                for (j, v) in r.iter().enumerate() {
                    _mm256_storeu_ps(pp.add((jj + j) * W + l0) as *mut f32, *v);
                }
                jj += 8;
            }
        }
        for i in 0..8 {
            let row = &weight[(o0 + l0 + i) * c_in..(o0 + l0 + i + 1) * c_in];
            for j in kw8..kg {
                let mut b = [0u8; 4];
                for (t, bt) in b.iter_mut().enumerate() {
                    if let Some(&v) = row.get(4 * j + t) {
                        *bt = v as u8;
                    }
                }
                panel[j * W + l0 + i] = u32::from_le_bytes(b);
            }
        }
    }
}

/// Epilogue parameters of a panel: the 32 biases with `128·Σw` taken out, the 32 multipliers
/// (8 lanes per register), the layer's [`Rq`].
#[cfg(ldp_avx512)]
type PanelOut = ([__m256i; 4], [__m256i; 4], Rq);

/// Converts pixel rows `p0..p0+M` to `u8` (`x ^ 0x80`) into `xt` (rows of `PK_MAX` bytes),
/// zero-padded to `4·⌈c_in/4⌉` bytes.
///
/// # Safety
/// `p0 + M ≤ pixels`, `x.len() = pixels·c_in`, `c_in ≤ PK_MAX`, `M ≤ MR`, `xt` holds
/// `MR·PK_MAX/4` words; AVX-512 F/BW available.
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn convert<const M: usize>(x: &[i8], c_in: usize, xt: &mut [u32], p0: usize) {
    let kg = c_in.div_ceil(4);
    let c64 = c_in / 64 * 64;
    // SAFETY: rows p0..p0+M of x hold c_in bytes (64-byte loads at i + 64 ≤ c64); xt rows of
    // PK_MAX bytes receive 4·kg ≤ PK_MAX bytes.
    unsafe {
        let flip = _mm512_set1_epi8(-128);
        for m in 0..M {
            let xr = x.as_ptr().add((p0 + m) * c_in);
            let tr = xt.as_mut_ptr().add(m * (PK_MAX / 4)) as *mut u8;
            let mut i = 0;
            while i < c64 {
                let v = _mm512_loadu_si512(xr.add(i) as *const __m512i);
                _mm512_storeu_si512(tr.add(i) as *mut __m512i, _mm512_xor_si512(v, flip));
                i += 64;
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

/// One tile: pixels `p0..p0+M` (already converted into `xt`), outputs `o0..o0+32`.
///
/// # Safety
/// `p0 + M ≤ pixels`, `o0 + 32 ≤ c_out`, shapes validated; `panel` holds `kg·32` packed words
/// of this panel, `kg = ⌈c_in/4⌉ ≤ PK_MAX/4`; `xt` holds the converted rows ([`convert`]);
/// AVX-512 F/BW/VNNI and AVX2 available.
#[cfg(ldp_avx512)]
#[inline(always)]
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
    // y is written at (p0+m)·c_out + o0 .. +32 ≤ (p0+m+1)·c_out.
    unsafe {
        let mut acc = [[_mm512_setzero_si512(); 2]; M];
        let xs: [*const u32; M] = core::array::from_fn(|m| xt.as_ptr().add(m * (PK_MAX / 4)));
        let wp = panel.as_ptr() as *const __m512i;
        for j in 0..kg {
            let w0 = _mm512_loadu_si512(wp.add(2 * j));
            let w1 = _mm512_loadu_si512(wp.add(2 * j + 1));
            for m in 0..M {
                let u = _mm512_set1_epi32(*xs[m].add(j) as i32);
                acc[m][0] = _mm512_dpbusd_epi32(acc[m][0], u, w0);
                acc[m][1] = _mm512_dpbusd_epi32(acc[m][1], u, w1);
            }
        }
        for (m, a) in acc.iter().enumerate() {
            let h = [
                _mm512_castsi512_si256(a[0]),
                _mm512_extracti64x4_epi64::<1>(a[0]),
                _mm512_castsi512_si256(a[1]),
                _mm512_extracti64x4_epi64::<1>(a[1]),
            ];
            // Written out, not `array::from_fn`: a closure LLVM may leave outlined runs the
            // intrinsics as calls, without the target features.
            let r = [
                rq.apply(_mm256_add_epi32(h[0], bias[0]), mult[0]),
                rq.apply(_mm256_add_epi32(h[1], bias[1]), mult[1]),
                rq.apply(_mm256_add_epi32(h[2], bias[2]), mult[2]),
                rq.apply(_mm256_add_epi32(h[3], bias[3]), mult[3]),
            ];
            let at = (p0 + m) * c_out + o0;
            Y::store16(y, at, r[0], r[1], q.lut);
            Y::store16(y, at + 16, r[2], r[3], q.lut);
        }
    }
}

/// Converts pixel rows `p0..p0+M` once, then runs them against each of the `ng` packed panels
/// of the group.
///
/// # Safety
/// As [`convert`] and [`tile`], for every panel `g < ng` (`o0s[g] + 32 ≤ c_out`, `panels[g]`
/// packed for it).
#[cfg(ldp_avx512)]
#[inline(always)]
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

/// `bias − 128·Σ_i w[o][i]` of the 32 outputs of a packed panel (`o0..o0+32`): the bias with
/// the activations' `+128` offset taken out, `Σ_i w[o][i]` computed exactly with `vpdpbusd` of a
/// vector of ones.
///
/// # Safety
/// `o0 + 32 ≤ c_out`, bias/mult validated for `c_out`; `panel` holds `kg·32` packed words;
/// AVX-512 F/BW/VNNI available.
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn panel_bias(q: &ConvQ<'_>, o0: usize, panel: &[u32], kg: usize) -> [i32; NR] {
    // SAFETY: panel words j < kg (2 zmm each); register operations otherwise.
    unsafe {
        let ones = _mm512_set1_epi8(1);
        let wp = panel.as_ptr() as *const __m512i;
        let mut sw = [_mm512_setzero_si512(); 2];
        for j in 0..kg {
            sw[0] = _mm512_dpbusd_epi32(sw[0], ones, _mm512_loadu_si512(wp.add(2 * j)));
            sw[1] = _mm512_dpbusd_epi32(sw[1], ones, _mm512_loadu_si512(wp.add(2 * j + 1)));
        }
        let mut sws = [0i32; NR];
        _mm512_storeu_si512(sws.as_mut_ptr() as *mut __m512i, sw[0]);
        _mm512_storeu_si512(sws.as_mut_ptr().add(16) as *mut __m512i, sw[1]);
        let b = q.bias_n::<NR>(o0);
        core::array::from_fn(|t| b[t].wrapping_sub(sws[t] << 7))
    }
}

/// The epilogue registers of the panel of outputs `o0..o0+32` from its corrected biases.
///
/// # Safety
/// `o0 + 32 ≤ c_out` (mult validated for `c_out`); AVX2 available.
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn panel_out(q: &ConvQ<'_>, o0: usize, bc: &[i32; NR], rq: Rq) -> PanelOut {
    let mu = q.mult_n::<NR>(o0);
    // SAFETY: 8-lane loads inside the 32-element arrays.
    unsafe {
        let bias: [__m256i; 4] =
            core::array::from_fn(|t| _mm256_loadu_si256(bc.as_ptr().add(8 * t) as *const __m256i));
        let mult: [__m256i; 4] =
            core::array::from_fn(|t| _mm256_loadu_si256(mu.as_ptr().add(8 * t) as *const __m256i));
        (bias, mult, rq)
    }
}

/// All pixels, in tiles of 12 (then 8, 4, 2, 1), against the `ng` panels of a group.
///
/// # Safety
/// As [`tiles`].
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn all_pixels<Y: Out>(
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
    pixels: usize,
) {
    let mut p = 0;
    // SAFETY (whole loop): per this function's contract; every tile stays inside p < pixels.
    unsafe {
        while p < pixels {
            let (pn, left) = (panels, pixels - p);
            p += if left >= 12 {
                tiles::<Y, 12>(x, c_in, pn, outs, o0s, ng, xt, q, c_out, y, p);
                12
            } else if left >= 8 {
                tiles::<Y, 8>(x, c_in, pn, outs, o0s, ng, xt, q, c_out, y, p);
                8
            } else if left >= 4 {
                tiles::<Y, 4>(x, c_in, pn, outs, o0s, ng, xt, q, c_out, y, p);
                4
            } else if left >= 2 {
                tiles::<Y, 2>(x, c_in, pn, outs, o0s, ng, xt, q, c_out, y, p);
                2
            } else {
                tiles::<Y, 1>(x, c_in, pn, outs, o0s, ng, xt, q, c_out, y, p);
                1
            };
        }
    }
}

/// The kernel, on this thread's workspace (`kernels::workspace`).
///
/// # Safety
/// Shapes validated, `c_out ≥ 32`, `c_in ≤ PK_MAX`; AVX-512 F/BW/VL/DQ/VNNI, AVX2, FMA and F16C
/// available.
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

/// Words of a packed panel buffer (`c_in ≤ PK_MAX`).
const PANEL_WORDS: usize = PK_MAX / 4 * NR;
/// Words of [`run`]'s workspace: `G` panels, then the converted pixel rows.
const WS_WORDS: usize = G * PANEL_WORDS + MR * (PK_MAX / 4);

/// [`run`] on its workspace.
///
/// # Safety
/// As [`run`]; `ws.len() ≥ WS_WORDS`.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
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
    // SAFETY (whole body): AVX-512 VNNI and AVX2 available (this function's contract); each
    // panel holds kg·32 ≤ PK_MAX/4·32 words; every o0 + 32 ≤ c_out, so bias/mult reads are in
    // bounds; the tiles stay inside p < pixels.
    unsafe {
        let rq = Rq::new(q.shift, q.out_zero);
        let zero = _mm256_setzero_si256();
        let mut o = 0;
        while o < c_out {
            let (o0s, ng) = group(o, c_out);
            let mut outs: [PanelOut; G] = [([zero; 4], [zero; 4], rq); G];
            for (g, panel) in panels.chunks_exact_mut(PANEL_WORDS).take(ng).enumerate() {
                pack_panel(q.weight, c_in, o0s[g], panel);
                let bc = panel_bias(q, o0s[g], panel, kg);
                outs[g] = panel_out(q, o0s[g], &bc, rq);
            }
            let refs: [&[u32]; G] =
                core::array::from_fn(|g| &panels[g * PANEL_WORDS..(g + 1) * PANEL_WORDS]);
            all_pixels(x, c_in, &refs, &outs, &o0s, ng, xt, q, c_out, y, pixels);
            o += ng * NR;
        }
    }
}

/// A layer's weights packed once, for a layer run in several calls (the chunks of the fused
/// pointwise → LayerNorm): the panels the kernel otherwise packs on every call, and their
/// biases with the activation offset taken out. Host builds only (`std`: a heap buffer of
/// about `c_out`·`4⌈c_in/4⌉` bytes). Opaque: made and used inside the crate.
#[cfg(feature = "std")]
pub struct Packed {
    /// Segments of `kg·32 + 32` words, one per panel `i` (outputs `min(32i, c_out − 32)..+32`):
    /// the packed panel, then its 32 corrected biases (`i32` bits).
    words: std::vec::Vec<u32>,
    c_in: usize,
    c_out: usize,
    /// Address and length of the weights packed (a packing is used only with its own weights).
    src: (usize, usize),
}

#[cfg(feature = "std")]
impl Packed {
    /// Whether this packing was made from `q`'s weights with this shape (and is complete).
    fn matches(&self, q: &ConvQ<'_>, c_in: usize, c_out: usize) -> bool {
        let np = c_out.div_ceil(NR);
        self.c_in == c_in
            && self.c_out == c_out
            && self.src == (q.weight.as_ptr() as usize, q.weight.len())
            && Some(self.words.len()) == segment(c_in).checked_mul(np)
    }
}

/// Words per panel of a [`Packed`]: the panel's `⌈c_in/4⌉·32`, then 32 biases.
#[cfg(feature = "std")]
fn segment(c_in: usize) -> usize {
    c_in.div_ceil(4) * NR + NR
}

/// Packs `q`'s weights once ([`Packed`]) when this kernel would run the layer (VNNI present
/// and allowed, the AMX kernel not taking it, a shape this kernel takes, valid lengths); `None`
/// otherwise.
#[cfg(feature = "std")]
pub(crate) fn pack_all(q: &ConvQ<'_>, c_in: usize, c_out: usize) -> Option<Packed> {
    if !runs(c_in, c_out)
        || super::amx::takes_layer(c_in, c_out)
        || Some(q.weight.len()) != c_in.checked_mul(c_out)
        || q.mult.len() != c_out
    {
        return None;
    }
    #[cfg(ldp_avx512)]
    {
        let (kg, seg) = (c_in.div_ceil(4), segment(c_in));
        let np = c_out.div_ceil(NR);
        let mut words = std::vec![0u32; np.checked_mul(seg)?];
        // Panels in bands on the threads (each panel packed once, by one thread).
        let n = crate::kernels::threads::threads().min(np);
        let _ = crate::kernels::threads::split_inplace_at(&mut words, seg, n, |i0, band| {
            for (i, s) in band.chunks_exact_mut(seg).enumerate() {
                let o0 = ((i0 + i) * NR).min(c_out - NR);
                let (panel, bias) = s.split_at_mut(kg * NR);
                // SAFETY: AVX-512 VNNI and AVX2 present (`x86_vnni`); o0 + 32 ≤ c_out; weights
                // of c_out·c_in and mult of c_out checked above (bias through `bias_n`, which
                // reads only what is there); the panel holds kg·32 words.
                let bc = unsafe { pack_one(q, c_in, o0, panel, kg) };
                for (b, v) in bias.iter_mut().zip(bc) {
                    *b = v as u32;
                }
            }
            Ok::<(), ()>(())
        });
        Some(Packed {
            words,
            c_in,
            c_out,
            src: (q.weight.as_ptr() as usize, q.weight.len()),
        })
    }
    #[cfg(not(ldp_avx512))]
    None
}

/// [`pack_panel`] then [`panel_bias`], with the features enabled.
///
/// # Safety
/// As [`pack_panel`] and [`panel_bias`]; AVX-512 F/BW/VNNI and AVX2 available.
#[cfg(all(ldp_avx512, feature = "std"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2")]
unsafe fn pack_one(
    q: &ConvQ<'_>,
    c_in: usize,
    o0: usize,
    panel: &mut [u32],
    kg: usize,
) -> [i32; NR] {
    // SAFETY: per this function's contract.
    unsafe {
        pack_panel(q.weight, c_in, o0, panel);
        panel_bias(q, o0, panel, kg)
    }
}

/// [`pointwise`] with the panels packed beforehand ([`pack_all`]): `false` (nothing written)
/// unless the CPU has AVX-512 VNNI, the shape suits this kernel, the lengths are valid and
/// `pre` was packed from these weights with this shape.
#[cfg(feature = "std")]
pub(crate) fn pointwise_packed<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    pre: &Packed,
) -> bool {
    if !runs(c_in, c_out)
        || !pre.matches(q, c_in, c_out)
        || super::int8::check(x, c_in, q, c_out, y) != Ok(pixels)
    {
        return false;
    }
    #[cfg(ldp_avx512)]
    // SAFETY: as in `pointwise`; `pre` holds ⌈c_out/32⌉ complete panels of this shape (`matches`).
    unsafe {
        run_packed(x, c_in, q, c_out, y, pixels, pre)
    };
    true
}

/// [`run`] over the panels of `pre`, its pixel rows in this thread's workspace.
///
/// # Safety
/// As [`run`]; `pre.matches(q, c_in, c_out)`.
#[cfg(all(ldp_avx512, feature = "std"))]
unsafe fn run_packed<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    pre: &Packed,
) {
    crate::kernels::workspace::with::<u32, { MR * (PK_MAX / 4) }, _>(|xt| {
        // SAFETY: this function's contract; `xt` holds MR·PK_MAX/4 words.
        unsafe { run_packed_in(x, c_in, q, c_out, y, pixels, pre, xt) }
    })
}

/// [`run_packed`] with its pixel-row buffer.
///
/// # Safety
/// As [`run_packed`]; `xt.len() ≥ MR·PK_MAX/4`.
#[cfg(all(ldp_avx512, feature = "std"))]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn run_packed_in<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    pre: &Packed,
    xt: &mut [u32],
) {
    let (kg, seg) = (c_in.div_ceil(4), segment(c_in));
    // SAFETY (whole body): as in `run`; the segment of panel i of `pre` is words
    // i·seg .. (i+1)·seg, all present (`matches`).
    unsafe {
        let rq = Rq::new(q.shift, q.out_zero);
        let zero = _mm256_setzero_si256();
        let mut o = 0;
        while o < c_out {
            let (o0s, ng) = group(o, c_out);
            let mut outs: [PanelOut; G] = [([zero; 4], [zero; 4], rq); G];
            let mut refs: [&[u32]; G] = [&[]; G];
            for g in 0..ng {
                let i = o / NR + g;
                let (panel, bias) = pre.words[i * seg..(i + 1) * seg].split_at(kg * NR);
                let bc: [i32; NR] = core::array::from_fn(|t| bias[t] as i32);
                refs[g] = panel;
                outs[g] = panel_out(q, o0s[g], &bc, rq);
            }
            all_pixels(x, c_in, &refs, &outs, &o0s, ng, xt, q, c_out, y, pixels);
            o += ng * NR;
        }
    }
}

/// Without AVX-512 support in the compiler: the AVX2 kernel.
///
/// # Safety
/// As the AVX-512 version (shapes validated; AVX2 available).
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
