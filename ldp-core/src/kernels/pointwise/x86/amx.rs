//! x86-64 AMX-INT8 int8 pointwise kernel (`tdpbssd`), with an `i8` or an `i16` output;
//! bit-identical to [`crate::quant::kernels::pointwise_reference`].
//!
//! `tdpbssd tmmC, tmmA, tmmB` multiplies signed bytes by signed bytes, sums each group of 4
//! products (each within `±2^14`) and adds the sum to an `i32` element of `C` with wrapping
//! (modular) arithmetic, so every accumulator equals `Σ x·w` modulo `2^32` whatever the order,
//! like the reference's `wrapping_add`: no activation offset (VNNI's `x ^ 0x80`) is needed. The
//! bias is added afterwards (wrapping), and the epilogue computes the reference's requantization
//! exactly (64-bit products and AVX-512's arithmetic 64-bit shift, 16 lanes at a time), its
//! saturation (`vpmovsdb`, `vpmovsdw`) and table (`vpermi2b`), so the results are the
//! reference's bits.
//!
//! Tiles (palette 1): `tmm0..3` are four `C` tiles of `mr` rows × 16 columns (`i32`), `tmm4`,
//! `tmm5` two `A` tiles of `mr` rows × 64 input channels, read **in place** from a row-major
//! `[rows][c_in]` matrix (row stride `c_in`), `tmm6`, `tmm7` two `B` tiles of 16 rows × 64
//! bytes from a packed panel: the VNNI kernel's panel layout (`[⌈c_in/4⌉][32][4]` bytes, word
//! `j` of column `o` = channels `4j..4j+4`) is exactly AMX's packed `B` form, 16 rows per 64
//! channels, columns 0–15 in the first 64 bytes of a 128-byte row and 16–31 in the second. One
//! step of 64 channels is two `A` loads, two `B` loads and four `tdpbssd` (32 rows × 32
//! columns × 64 channels). When 64 does not divide `c_in` the last step's `A` rows are copied
//! into a zero-padded 64-byte buffer (the panel is zero-padded too), so no load reads past the
//! matrix. Two forms:
//!
//! * **More than 32 pixels** (`run_p`): `A` = the pixels (`mr` = 16), `B` = 32 outputs of the
//!   weights, packed per call in groups of 4 panels (128 outputs, 256 KiB of the thread's
//!   workspace); each block of 32 pixels runs against the group's panels. When 32 does not divide the pixel count the
//!   last block overlaps the one before, and when 32 does not divide `c_out` the last panel
//!   overlaps the one before (outputs computed twice get the same value). The epilogue
//!   requantizes 32 outputs of a pixel at a time.
//! * **At most 32 pixels** (`run_t`, e.g. MobileVLM V1's block projections, which run one grid
//!   row at a time): the transpose, `Cᵀ = W·Xᵀ`: `A` = 16 rows of the **weights** read in
//!   place (no weight packing: at a few pixels, packing 4 MiB of weights would cost more than
//!   the arithmetic), `B` = the pixels packed once (rows past the last pixel repeat it). The
//!   epilogue requantizes 32 pixels of an output at a time (its bias and multiplier broadcast)
//!   and writes the 32 × `pixels` block back transposed.
//!
//! Takes `c_out ≥ 32` and `c_in ≤ 2048`; other shapes go to the VNNI or AVX2 kernels. `ldp-core`
//! has no allocator, so the packed weights cannot be kept between calls.
//!
//! **Tile state.** The tile registers are not `asm!` operands. One call configures them
//! (`ldtilecfg`) at its start and releases them (`tilerelease`) at its end, on the calling
//! thread; in between, each `asm!` block computes one `C` block from zeroed tiles to its store,
//! so no tile value lives across Rust code. Rust and LLVM never use the tile registers
//! themselves (no AMX target feature or intrinsic is used), and the OS saves and restores the
//! tile state of the thread across context switches once the process has the tile-data
//! permission, which [`cpu::x86_amx`] guarantees (`arch_prctl` at detection, Linux only; no
//! AMX without the `std` feature).
// Everything using the 1.89 intrinsics is behind `cfg(ldp_avx512)` (rustc ≥ 1.89, build.rs).
#![allow(clippy::incompatible_msrv)]
#![cfg_attr(not(ldp_avx512), allow(unused_imports, dead_code))]

use core::arch::x86_64::*;

use super::int8::Out;
use crate::error::Error;
use crate::kernels::cpu;
#[cfg(ldp_avx512)]
use crate::kernels::isa::x86::Rq16;
use crate::quant::kernels::ConvQ;

/// Outputs per panel (two `B` tiles of 16 outputs).
const NR: usize = 32;
/// Largest `c_in` of this kernel.
const PK_MAX: usize = 2048;
/// Panels per group.
const G: usize = 4;
/// Bytes per packed panel row (32 outputs × 4 channels).
const ROW: usize = NR * 4;
/// Pixel panels of the transposed form: it takes up to `TP·32` pixels.
const TP: usize = 5;
/// Words of a packed panel (`c_in ≤ PK_MAX`).
const PANEL_WORDS: usize = PK_MAX / 4 * NR;
/// Words of the workspace (`kernels::workspace`): the panels of either form (320 KiB; the
/// stack frames keep only the 12 KiB of tail and `C` buffers).
const WS_WORDS: usize = if TP > G { TP } else { G } * PANEL_WORDS;

/// `true` when this kernel takes the shape (else the caller runs the next kernel).
fn takes(c_in: usize, c_out: usize) -> bool {
    c_out >= NR && c_in <= PK_MAX
}

/// `true` when [`pointwise`] would run a layer of this shape (AMX usable and allowed, the
/// shape taken); the VNNI kernel's packing once per layer (`vnni::pack_all`) defers to it.
pub(super) fn takes_layer(c_in: usize, c_out: usize) -> bool {
    cfg!(ldp_avx512) && takes(c_in, c_out) && cpu::x86_amx()
}

/// Runs the AMX kernel if the CPU and OS allow AMX-INT8, [`cpu::x86_level`] allows it and the
/// shape suits it (else `false`). Shapes validated by the caller; re-checked here.
pub(crate) fn pointwise<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) -> bool {
    if !takes_layer(c_in, c_out)
        || super::int8::check(x, c_in, q, c_out, y) != Ok(pixels)
        || pixels == 0
    {
        return false;
    }
    // SAFETY: AMX-INT8 with the tile-data permission and AVX-512/AVX2 are present (`x86_amx`
    // is only true at the `Amx` level); `check` just verified x.len() = pixels·c_in,
    // weight = c_out·c_in, bias/mult = c_out, y = pixels·c_out without overflow; the shape is
    // one this kernel takes.
    unsafe { run(x, c_in, q, c_out, y, pixels) };
    true
}

/// The AMX kernel with its own shape checks, for tests and benchmarks (`i8` output, optional
/// table). Shapes it does not take (`c_out < 32` or `c_in > 2048`) run the VNNI entry
/// ([`super::vnni::pointwise_vnni`], itself falling back to AVX2).
///
/// # Safety
/// The CPU must support AMX-TILE and AMX-INT8, the process must have the tile-data permission,
/// and AVX-512 F, BW, VL, DQ, VNNI and VBMI, AVX2, FMA and F16C must be present: all true when
/// [`cpu::x86_detected`] is [`cpu::X86Level::Amx`].
pub unsafe fn pointwise_amx(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), Error> {
    let pixels = super::int8::check(x, c_in, q, c_out, y)?;
    // SAFETY: features per the contract, shapes checked just above.
    unsafe {
        if cfg!(ldp_avx512) && takes(c_in, c_out) && pixels > 0 {
            run(x, c_in, q, c_out, y, pixels);
            Ok(())
        } else {
            super::vnni::pointwise_vnni(x, c_in, q, c_out, y)
        }
    }
}

/// The AMX kernel with a 16-bit output and its own shape checks, for tests and benchmarks.
/// Shapes it does not take run the VNNI entry.
///
/// # Safety
/// As [`pointwise_amx`].
pub unsafe fn pointwise_i16_amx(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
) -> Result<(), Error> {
    let pixels = super::int8::check(x, c_in, q, c_out, y)?;
    // SAFETY: features per the contract, shapes checked just above.
    unsafe {
        if cfg!(ldp_avx512) && takes(c_in, c_out) && pixels > 0 {
            run(x, c_in, q, c_out, y, pixels);
            Ok(())
        } else {
            super::vnni::pointwise_i16_vnni(x, c_in, q, c_out, y)
        }
    }
}

/// The 64-byte tile configuration of `ldtilecfg` (palette 1).
#[repr(C, align(64))]
struct TileCfg {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

/// Epilogue parameters of a panel: its first output, the 32 biases, the 32 multipliers and the
/// same shifted right by 32 in every 64-bit lane (the odd lanes' multipliers), 16 per register.
#[cfg(ldp_avx512)]
type PanelOut = (usize, [__m512i; 2], [__m512i; 2], [__m512i; 2]);

/// One `C` block: rows `a0..a0+mr` and `a1..a1+mr` of the `[rows][c_in]` matrix `x` (the
/// pixels, or in the transposed form the weights) × the 32 columns of `panel` (outputs, or
/// pixels), over all input channels, stored as `i32` into `cbuf` (`[32][32]`, rows `0..mr` for
/// `a0`, `16..16+mr` for `a1`), `mr` being the configured `A` rows ([`config`]).
///
/// # Safety
/// The tiles are configured ([`config`]); `a0 + mr ≤ rows`, `a1 + mr ≤ rows`; `x.len() =
/// rows·c_in`; `panel` holds `⌈c_in/64⌉·16` packed rows, zero past `⌈c_in/4⌉`; when 64 does
/// not divide `c_in`, `tail` holds the last step's rows (`[32][64]`, rows as in `cbuf`).
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn block(
    x: &[i8],
    c_in: usize,
    a0: usize,
    a1: usize,
    panel: &[u8],
    tail: &[u8; 32 * 64],
    cbuf: &mut [i32; 32 * 32],
) {
    let steps = c_in / 64;
    let has_tail = c_in % 64 != 0;
    // SAFETY: the A loads read rows a0..a0+mr / a1..a1+mr of x at channels 64s..64s+64 ≤ c_in
    // (s < steps), stride c_in: inside x. The B loads read 16 rows of 128 bytes of `panel` per
    // step, (steps + has_tail)·16 rows in all, within its ⌈c_in/64⌉·16 rows. The tail A loads
    // read rows 0..mr and 16..16+mr (stride 64) of `tail`; the stores write rows 0..mr and
    // 16..16+mr, 128 bytes apart, of `cbuf` (32 rows of 128 bytes). Only the tile registers
    // (not operands, see the module docs), the named registers and the flags change.
    unsafe {
        core::arch::asm!(
            "tilezero tmm0",
            "tilezero tmm1",
            "tilezero tmm2",
            "tilezero tmm3",
            "test {n}, {n}",
            "jz 3f",
            "2:",
            "tileloadd tmm4, [{a0} + {lda}*1]",
            "tileloadd tmm6, [{b} + {ldb}*1]",
            "tileloadd tmm7, [{b} + {ldb}*1 + 64]",
            "tdpbssd tmm0, tmm4, tmm6",
            "tileloadd tmm5, [{a1} + {lda}*1]",
            "tdpbssd tmm1, tmm4, tmm7",
            "tdpbssd tmm2, tmm5, tmm6",
            "tdpbssd tmm3, tmm5, tmm7",
            "add {a0}, 64",
            "add {a1}, 64",
            "add {b}, 2048",
            "dec {n}",
            "jnz 2b",
            "3:",
            "test {t}, {t}",
            "jz 4f",
            "mov {lda}, 64",
            "tileloadd tmm4, [{t} + {lda}*1]",
            "tileloadd tmm6, [{b} + {ldb}*1]",
            "tileloadd tmm7, [{b} + {ldb}*1 + 64]",
            "tdpbssd tmm0, tmm4, tmm6",
            "tileloadd tmm5, [{t} + {lda}*1 + 1024]",
            "tdpbssd tmm1, tmm4, tmm7",
            "tdpbssd tmm2, tmm5, tmm6",
            "tdpbssd tmm3, tmm5, tmm7",
            "4:",
            "tilestored [{c} + {ldb}*1], tmm0",
            "tilestored [{c} + {ldb}*1 + 64], tmm1",
            "tilestored [{c} + {ldb}*1 + 2048], tmm2",
            "tilestored [{c} + {ldb}*1 + 2112], tmm3",
            n = inout(reg) steps => _,
            a0 = inout(reg) x.as_ptr().add(a0 * c_in) => _,
            a1 = inout(reg) x.as_ptr().add(a1 * c_in) => _,
            b = inout(reg) panel.as_ptr() => _,
            lda = inout(reg) c_in => _,
            ldb = in(reg) ROW,
            t = in(reg) if has_tail { tail.as_ptr() } else { core::ptr::null() },
            c = in(reg) cbuf.as_mut_ptr(),
            options(nostack),
        );
    }
}

/// The epilogue of one `C` block: bias, requantization, saturation, table, stored to `y` for
/// pixel rows `a0..a0+mr` (`cbuf` rows `0..mr`) and `a1..a1+mr` (rows `16..16+mr`). 32 outputs
/// of a row at a time: [`Rq16`] on two zmm, `vpmovsdb` / `vpmovsdw` (the reference's
/// saturation), and the table as two 128-entry `vpermi2b` lookups blended by the index's top
/// bit.
///
/// # Safety
/// `a0 + mr`, `a1 + mr ≤ pixels`, `o0 + 32 ≤ c_out`, `y.len() = pixels·c_out`; `lut` is the
/// 256-byte table in 4 zmm when the layer has one; AVX-512 F/BW/VL/VBMI available.
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn epilogue<Y: Out>(
    cbuf: &[i32; 32 * 32],
    mr: usize,
    a0: usize,
    a1: usize,
    (o0, bias, mult, mult_odd): PanelOut,
    rq: Rq16,
    lut: Option<[__m512i; 4]>,
    c_out: usize,
    y: &mut [Y],
) {
    // SAFETY: cbuf reads at row·32 + 32 ≤ 1024; the y stores go through bounds-checked
    // sub-slices of exactly the stored length; AVX-512 per the contract.
    unsafe {
        let flip = _mm512_set1_epi8(-128);
        for (r0, p0) in [(0, a0), (16, a1)] {
            for m in 0..mr {
                let row = cbuf.as_ptr().add((r0 + m) * NR);
                let r: [__m512i; 2] = core::array::from_fn(|t| {
                    let a = _mm512_loadu_si512(row.add(16 * t) as *const __m512i);
                    rq.apply(_mm512_add_epi32(a, bias[t]), mult[t], mult_odd[t])
                });
                let at = (p0 + m) * c_out + o0;
                if core::mem::size_of::<Y>() == 1 {
                    let b = _mm256_inserti128_si256::<1>(
                        _mm256_castsi128_si256(_mm512_cvtsepi32_epi8(r[0])),
                        _mm512_cvtsepi32_epi8(r[1]),
                    );
                    let b = match lut {
                        Some(t) => {
                            let idx = _mm512_xor_si512(_mm512_castsi256_si512(b), flip);
                            let lo = _mm512_permutex2var_epi8(t[0], idx, t[1]);
                            let hi = _mm512_permutex2var_epi8(t[2], idx, t[3]);
                            let v = _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi);
                            _mm512_castsi512_si256(v)
                        }
                        None => b,
                    };
                    let y8: &mut [i8] = bytemuck::cast_slice_mut(y);
                    let dst: &mut [i8; 32] =
                        (&mut y8[at..at + 32]).try_into().expect("32-byte slice");
                    _mm256_storeu_si256(dst.as_mut_ptr() as *mut __m256i, b);
                } else {
                    let y16: &mut [i16] = bytemuck::cast_slice_mut(y);
                    let dst: &mut [i16; 32] = (&mut y16[at..at + 32])
                        .try_into()
                        .expect("32-element slice");
                    let d = dst.as_mut_ptr() as *mut __m256i;
                    _mm256_storeu_si256(d, _mm512_cvtsepi32_epi16(r[0]));
                    _mm256_storeu_si256(d.add(1), _mm512_cvtsepi32_epi16(r[1]));
                }
            }
        }
    }
}

/// Loads the tile configuration: `C` and `A` tiles of `mr` rows, `B` tiles of 16 rows, all 64
/// bytes wide.
///
/// # Safety
/// AMX usable by this process; `1 ≤ mr ≤ 16`.
#[inline(always)]
unsafe fn config(mr: usize) {
    let m = mr as u8;
    let cfg = TileCfg {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
        rows: [m, m, m, m, m, m, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
    };
    // SAFETY: AMX usable (contract); the configuration is valid for palette 1 (8 tiles of at
    // most 16 rows × 64 bytes; C and A have mr rows, B 16 rows, all 64 bytes wide, so every
    // tdpbssd of this module has matching shapes).
    unsafe {
        core::arch::asm!("ldtilecfg [{}]", in(reg) &cfg, options(nostack, readonly));
    }
}

/// # Safety
/// Shapes validated, `c_out ≥ 32`, `c_in ≤ PK_MAX`, `pixels ≥ 1`; AMX-INT8 usable by this
/// process (tile-data permission granted); AVX-512 F/BW/VL/DQ/VBMI, AVX2, FMA and F16C
/// available.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx2,fma,f16c")]
unsafe fn run<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) {
    crate::kernels::workspace::with::<u32, WS_WORDS, _>(|ws| {
        // SAFETY: per this function's contract (the two forms take the same shapes); `ws`
        // holds WS_WORDS ≥ max(TP, G)·PANEL_WORDS words.
        unsafe {
            if pixels <= TP * NR {
                run_t(x, c_in, q, c_out, y, pixels, ws)
            } else {
                run_p(x, c_in, q, c_out, y, pixels, ws)
            }
        }
    })
}

/// Packs the `n` pixel rows `p0..p0+n` of `x` into `panel` as 32 rows (row `r` = pixel
/// `p0 + min(r, n − 1)`: the rows past the last pixel repeat it) of `[kg][32]` words
/// (`kg = ⌈c_in/4⌉`), word `j` of row `r` = channels `4j..4j+4`, zero-padded past `c_in` — the
/// VNNI panel layout, with pixels in place of outputs.
///
/// # Safety
/// `1 ≤ n ≤ 32`, `p0 + n ≤ x.len() / c_in`, `panel.len() ≥ kg·32`; AVX2 available.
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn pack_pixels(x: &[i8], c_in: usize, p0: usize, n: usize, panel: &mut [u32]) {
    let kw = c_in / 4; // full words per row
    let kw8 = kw / 8 * 8;
    let kg = c_in.div_ceil(4);
    let pp = panel.as_mut_ptr();
    let row = |r: usize| p0 + r.min(n - 1);
    for l0 in (0..NR).step_by(8) {
        // SAFETY: rows row(l0 + i) < p0 + n ≤ pixels; 32-byte loads at byte 4·jj with jj + 8 ≤ kw stay
        // inside a row; stores go to panel[(jj+j)·32 + l0 .. +8] with jj + j < kw ≤ kg.
        unsafe {
            let rows: [*const i8; 8] = core::array::from_fn(|i| x.as_ptr().add(row(l0 + i) * c_in));
            let mut jj = 0;
            while jj < kw8 {
                let mut r: [__m256; 8] =
                    core::array::from_fn(|i| _mm256_loadu_ps(rows[i].add(4 * jj) as *const f32));
                super::transpose8(&mut r);
                for (j, v) in r.iter().enumerate() {
                    _mm256_storeu_ps(pp.add((jj + j) * NR + l0) as *mut f32, *v);
                }
                jj += 8;
            }
        }
        for i in 0..8 {
            let r = row(l0 + i);
            let src = &x[r * c_in..(r + 1) * c_in];
            for j in kw8..kg {
                let mut b = [0u8; 4];
                for (t, bt) in b.iter_mut().enumerate() {
                    if let Some(&v) = src.get(4 * j + t) {
                        *bt = v as u8;
                    }
                }
                panel[j * NR + l0 + i] = u32::from_le_bytes(b);
            }
        }
    }
}

/// The epilogue of the transposed form: `cbuf` holds `[32 outputs][32 pixels]` of outputs
/// `o0..o0+32` and pixels `p0..p0+32`; requantizes each output's row (its bias and multiplier
/// broadcast), saturates, applies the table, and writes the 32 outputs of pixels
/// `p0..p0+pixels` to `y[p·c_out + o0..]` through a small transposed buffer.
///
/// # Safety
/// `pixels ≤ 32`, `o0 + 32 ≤ c_out`, `(p0 + pixels)·c_out ≤ y.len()`; `lut` as in
/// [`epilogue`]; AVX-512 F/BW/VL/VBMI available.
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn epilogue_t<Y: Out>(
    cbuf: &[i32; 32 * 32],
    p0: usize,
    pixels: usize,
    o0: usize,
    bias: &[i32; NR],
    mult: &[i32; NR],
    rq: Rq16,
    lut: Option<[__m512i; 4]>,
    c_out: usize,
    y: &mut [Y],
) {
    // SAFETY: cbuf reads at row·32 + 32 ≤ 1024 and stores into the local buffers at
    // row·32 + 32; the y writes go through bounds-checked slices; AVX-512 per the contract.
    unsafe {
        let flip = _mm512_set1_epi8(-128);
        let mut r16 = [[0i16; NR]; NR];
        let mut r8 = [[0i8; NR]; NR];
        for r in 0..NR {
            let row = cbuf.as_ptr().add(r * NR);
            let b = _mm512_set1_epi32(bias[r]);
            // `_mm512_mul_epi32` reads the low 32 bits of each 64-bit lane: `m` itself.
            let m = _mm512_set1_epi32(mult[r]);
            let v: [__m512i; 2] = core::array::from_fn(|t| {
                let a = _mm512_loadu_si512(row.add(16 * t) as *const __m512i);
                rq.apply(_mm512_add_epi32(a, b), m, m)
            });
            if core::mem::size_of::<Y>() == 1 {
                let b = _mm256_inserti128_si256::<1>(
                    _mm256_castsi128_si256(_mm512_cvtsepi32_epi8(v[0])),
                    _mm512_cvtsepi32_epi8(v[1]),
                );
                let b = match lut {
                    Some(t) => {
                        let idx = _mm512_xor_si512(_mm512_castsi256_si512(b), flip);
                        let lo = _mm512_permutex2var_epi8(t[0], idx, t[1]);
                        let hi = _mm512_permutex2var_epi8(t[2], idx, t[3]);
                        let w = _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), lo, hi);
                        _mm512_castsi512_si256(w)
                    }
                    None => b,
                };
                _mm256_storeu_si256(r8[r].as_mut_ptr() as *mut __m256i, b);
            } else {
                let d = r16[r].as_mut_ptr() as *mut __m256i;
                _mm256_storeu_si256(d, _mm512_cvtsepi32_epi16(v[0]));
                _mm256_storeu_si256(d.add(1), _mm512_cvtsepi32_epi16(v[1]));
            }
        }
        if core::mem::size_of::<Y>() == 1 {
            let y8: &mut [i8] = bytemuck::cast_slice_mut(y);
            for p in 0..pixels {
                let at = (p0 + p) * c_out + o0;
                let dst = &mut y8[at..at + NR];
                for (o, d) in dst.iter_mut().enumerate() {
                    *d = r8[o][p];
                }
            }
        } else {
            let y16: &mut [i16] = bytemuck::cast_slice_mut(y);
            for p in 0..pixels {
                let at = (p0 + p) * c_out + o0;
                let dst = &mut y16[at..at + NR];
                for (o, d) in dst.iter_mut().enumerate() {
                    *d = r16[o][p];
                }
            }
        }
    }
}

/// The transposed form, for at most `TP·32` = 160 pixels (e.g. MobileVLM V1's block
/// projections, which run a few grid rows at a time, and its 144-token second block):
/// `Cᵀ = W·Xᵀ`, the **weights** as the `A` tiles, read in place (16 outputs × 64 channels, row
/// stride `c_in`: no weight packing, which costs more than the arithmetic at a few pixels),
/// the pixels packed once into up to 5 panels of 32 as the `B` tiles. Per block of 32 outputs
/// (64 KiB of weights at 2048 channels, read from memory once and then from L2 for the other
/// panels): the same tile loop as [`run_p`] ([`block`]) per pixel panel, then [`epilogue_t`].
///
/// # Safety
/// As [`run`], and `pixels ≤ TP·32`; `ws.len() ≥ TP·PANEL_WORDS`.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx2,fma,f16c")]
#[inline(never)]
unsafe fn run_t<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    ws: &mut [u32],
) {
    let kg = c_in.div_ceil(4);
    let kpad = c_in.div_ceil(64) * 16;
    let steps = c_in / 64;
    let rem = c_in % 64;
    let np = pixels.div_ceil(NR);
    let xp = &mut ws[..TP * PANEL_WORDS];
    let mut tail = [0u8; 32 * 64];
    let mut cbuf = [0i32; 32 * 32];
    // SAFETY (whole body): AMX, AVX-512 and AVX2 usable (contract); np ≤ TP panels of kpad ≤
    // PK_MAX/4 rows of 32 words, panel j packing pixels 32j..min(32j + 32, pixels); every
    // o0 + 32 ≤ c_out, so the weight rows o0..o0+32, the bias and the multipliers read are in
    // bounds; the tail copy reads channels 64·steps..c_in of them.
    unsafe {
        config(16);
        for (j, panel) in xp.chunks_exact_mut(PANEL_WORDS).enumerate().take(np) {
            let p0 = j * NR;
            pack_pixels(x, c_in, p0, NR.min(pixels - p0), panel);
            panel[kg * NR..kpad * NR].fill(0);
        }
        let rq = Rq16::new(q.shift, q.out_zero);
        let lut = luts::<Y>(q);
        let mut o = 0;
        while o < c_out {
            let o0 = o.min(c_out - NR);
            if rem != 0 {
                for r in 0..NR {
                    let src = &q.weight[(o0 + r) * c_in + 64 * steps..(o0 + r + 1) * c_in];
                    let dst = &mut tail[r * 64..(r + 1) * 64];
                    for (d, &s) in dst.iter_mut().zip(src) {
                        *d = s as u8;
                    }
                    dst[rem..].fill(0);
                }
            }
            let bias = q.bias_n::<NR>(o0);
            let mult = q.mult_n::<NR>(o0);
            for (j, panel) in xp.chunks_exact(PANEL_WORDS).enumerate().take(np) {
                let xb: &[u8] = bytemuck::cast_slice(&panel[..kpad * NR]);
                block(q.weight, c_in, o0, o0 + 16, xb, &tail, &mut cbuf);
                let p0 = j * NR;
                let n = NR.min(pixels - p0);
                epilogue_t(&cbuf, p0, n, o0, &bias, &mult, rq, lut, c_out, y);
            }
            o += NR;
        }
        core::arch::asm!("tilerelease", options(nostack, nomem));
    }
}

/// The table of an `i8`-output layer as 4 zmm (`None` without a table or for `i16` outputs).
///
/// # Safety
/// AVX-512 F available.
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn luts<Y: Out>(q: &ConvQ<'_>) -> Option<[__m512i; 4]> {
    match q.lut {
        Some(t) if t.len() == 256 && core::mem::size_of::<Y>() == 1 => {
            // SAFETY: 4 loads of 64 bytes from a 256-byte table; AVX-512 per the contract.
            Some(core::array::from_fn(|i| unsafe {
                _mm512_loadu_si512(t.as_ptr().add(64 * i) as *const __m512i)
            }))
        }
        _ => None,
    }
}

/// The pixel-major form (more than `TP·32` pixels), described in the module docs.
///
/// # Safety
/// As [`run`]; `ws.len() ≥ G·PANEL_WORDS`.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx512vbmi,avx2,fma,f16c")]
#[inline(never)]
unsafe fn run_p<Y: Out>(
    x: &[i8],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    ws: &mut [u32],
) {
    let kg = c_in.div_ceil(4);
    let kpad = c_in.div_ceil(64) * 16; // packed rows, whole 64-channel steps
    let mr = pixels.min(16);
    let panels = &mut ws[..G * PANEL_WORDS];
    let mut tail = [0u8; 32 * 64];
    let mut cbuf = [0i32; 32 * 32];
    // SAFETY: AMX usable (contract), 1 ≤ mr ≤ 16.
    unsafe { config(mr) };
    let steps = c_in / 64;
    let rem = c_in % 64;
    // SAFETY (whole body): AVX2 available (contract); each panel holds kpad ≤ PK_MAX/4 rows of
    // 32 words; every o0 + 32 ≤ c_out, so bias/mult reads are in bounds; every pixel block has
    // a0 + mr ≤ pixels and a1 + mr ≤ pixels; the tail copy reads channels 64·steps..c_in of
    // those rows.
    unsafe {
        let rq = Rq16::new(q.shift, q.out_zero);
        let lut = luts::<Y>(q);
        let zero = _mm512_setzero_si512();
        let mut o = 0;
        while o < c_out {
            let mut outs: [PanelOut; G] = [(0, [zero; 2], [zero; 2], [zero; 2]); G];
            let mut ng = 0;
            while ng < G && o < c_out {
                let o0 = o.min(c_out - NR);
                let panel = &mut panels[ng * PANEL_WORDS..(ng + 1) * PANEL_WORDS];
                super::vnni::pack_panel(q.weight, c_in, o0, panel);
                panel[kg * NR..kpad * NR].fill(0);
                let b = q.bias_n::<NR>(o0);
                let mu = q.mult_n::<NR>(o0);
                let bias: [__m512i; 2] = core::array::from_fn(|t| {
                    _mm512_loadu_si512(b.as_ptr().add(16 * t) as *const __m512i)
                });
                let mult: [__m512i; 2] = core::array::from_fn(|t| {
                    _mm512_loadu_si512(mu.as_ptr().add(16 * t) as *const __m512i)
                });
                let mult_odd: [__m512i; 2] =
                    core::array::from_fn(|t| _mm512_srli_epi64::<32>(mult[t]));
                outs[ng] = (o0, bias, mult, mult_odd);
                ng += 1;
                o += NR;
            }
            let mut p = 0;
            while p < pixels {
                let a0 = p.min(pixels - mr);
                let a1 = (p + mr).min(pixels - mr);
                if rem != 0 {
                    for (r0, pa) in [(0, a0), (16, a1)] {
                        for m in 0..mr {
                            let src = &x[(pa + m) * c_in + 64 * steps..(pa + m + 1) * c_in];
                            let dst = &mut tail[(r0 + m) * 64..(r0 + m + 1) * 64];
                            for (d, &s) in dst.iter_mut().zip(src) {
                                *d = s as u8;
                            }
                            dst[rem..].fill(0);
                        }
                    }
                }
                for (g, out) in outs.iter().enumerate().take(ng) {
                    let panel = &panels[g * PANEL_WORDS..];
                    let bytes: &[u8] = bytemuck::cast_slice(&panel[..kpad * NR]);
                    block(x, c_in, a0, a1, bytes, &tail, &mut cbuf);
                    epilogue(&cbuf, mr, a0, a1, *out, rq, lut, c_out, y);
                }
                p += 2 * mr;
            }
        }
        core::arch::asm!("tilerelease", options(nostack, nomem));
    }
}

/// Without AVX-512 support in the compiler: the AVX2 kernel (never reached: AMX is only
/// detected together with the AVX-512 level).
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
