//! x86-64 AVX2 pointwise kernel of 16-bit activations × int8 weights: `i16` outputs (the
//! 16-bit-activation path, `quant::a16::pointwise16`) and int8 outputs (a 16-bit model input,
//! `quant::a16::pointwise_in16`).
//!
//! AVX2: a register tile of 3 pixels × 4 outputs (12 accumulators) over blocks of 48 pixels,
//! each group of 4 weight rows passing over the whole block while it is in L1; per step, 16
//! activations of each pixel are loaded as they are, 16 weights of each output row are
//! sign-extended to i16 (`vpmovsxbw`, once for three pixels), and `vpmaddwd` multiplies
//! pairwise into i32 (16 exact MACs per instruction: `|x·w + x'·w'| ≤ 2·32767·128` fits i32).
//! The channels past the last multiple of 16 and the leftover outputs run scalar; the last one
//! or two pixels take the 2-pixel × 4-output tile of the shared driver `quant::a16::tiles16`.
//!
//! AVX-512 VNNI: a packed GEMM (`gemm16`) for even `c_in ≤ 2048` and `c_out ≥ 32` — panels of
//! 32 outputs with the weights widened to `i16` pairs once per call, in groups of two; tiles of
//! 6 pixels × both panels' 64 outputs (24 zmm accumulators): per pair of channels four panel
//! loads, 6 broadcasts of the pixels' activation pairs and 24 `vpdpwssd` (the 12 × 32 tile of
//! one panel needs 12 broadcasts for as many, and measured 7 % slower on V1), its channel loop
//! written in assembly (`micro6x2`: 8 pairs per iteration, rows addressed from two pointers and
//! constant offsets; V1's pass −6 %); the pixels left
//! over, and a group of one panel, take tiles of 12/8/4/2/1 × 32. The output stage on 16
//! lanes. `vpdpwssd` is emitted by `asm!`: LLVM rewrites the intrinsic into `vpmaddwd` +
//! `vpaddd` for CPUs it does not know to have a fast one (generic x86-64 tuning), which halved
//! the throughput. Other shapes run the 2 × 4 tile with 32 channels per step. i32 additions wrap
//! exactly like the reference's `wrapping_add`, so the sum equals the references bit for bit
//! whatever the order; bias, requantization and saturation are the references' own scalar code
//! (`out16`, `quant::kernels::finish`).

use core::arch::x86_64::*;

use crate::kernels::cpu;
#[cfg(ldp_avx512)]
use crate::kernels::isa::x86::Rq16;
use crate::quant::a16::{out16, tiles16};
use crate::quant::kernels::ConvQ;

/// Runs the AVX2 kernel if the CPU has it (else `false`). The shapes are checked again here
/// (`check_pw`, O(1)): `false` unless `x.len() = pixels·c_in`, weights `c_out·c_in`, bias (or
/// none)/mult `c_out`, `y.len() = pixels·c_out`.
pub(crate) fn pointwise16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    pixels: usize,
) -> bool {
    if !cpu::x86_avx2_fma()
        || crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels)
    {
        return false;
    }
    let fin = |acc: i32, o: usize| out16(q.bias_at(o).wrapping_add(acc), o, q);
    // SAFETY: AVX2 is present and `check_pw` just verified every length (products without
    // overflow).
    unsafe { run_best(x, c_in, q, c_out, y, pixels, fin) };
    true
}

/// [`run_vnni`] when this build has the AVX-512 intrinsics (`ldp_avx512`, rustc ≥ 1.89) and the
/// CPU has AVX512_VNNI, else [`run_avxvnni`] when it has AVX-VNNI, else [`run`].
///
/// # Safety
/// AVX2 available; lengths as checked by `check_pw`.
unsafe fn run_best<Y: Out16>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    finish: impl Fn(i32, usize) -> Y,
) {
    #[cfg(ldp_avx512)]
    if cpu::x86_vnni() {
        // SAFETY: AVX-512 VNNI present (`x86_vnni`), lengths per the contract.
        unsafe { run_vnni(x, c_in, q, c_out, y, pixels, finish) };
        return;
    }
    #[cfg(ldp_avx512)]
    if cpu::x86_avxvnni() {
        // SAFETY: AVX-VNNI present (`x86_avxvnni`), lengths per the contract.
        unsafe { run_avxvnni(x, c_in, q, c_out, y, pixels, finish) };
        return;
    }
    // SAFETY: per the contract.
    unsafe { run(x, c_in, q, c_out, y, pixels, finish) }
}

/// [`pointwise16`] with int8 outputs (zero point, optional table): the pointwise conv of a
/// 16-bit model input, `quant::a16::pointwise_in16`. Same checks, same tile.
pub(crate) fn pointwise_in16(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    pixels: usize,
) -> bool {
    if !cpu::x86_avx2_fma()
        || crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y) != Ok(pixels)
    {
        return false;
    }
    let fin = |acc: i32, o: usize| {
        crate::quant::kernels::finish::<i8>(q.bias_at(o).wrapping_add(acc), o, q)
    };
    // SAFETY: as in `pointwise16`.
    unsafe { run_best(x, c_in, q, c_out, y, pixels, fin) };
    true
}

/// [`pointwise_in16`] (`Y = i8`) or [`pointwise16`] (`Y = i16`) forced to the AVX2 kernel or,
/// with `vnni`, to the AVX-512 VNNI one (the AVX2 one on builds without the AVX-512
/// intrinsics), with its own shape checks.
///
/// # Safety
/// AVX2, and with `vnni` AVX-512 F/BW/VL and AVX512_VNNI.
unsafe fn forced<Y: crate::quant::kernels::ConvOut + Out16>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    vnni: bool,
    finish: impl Fn(i32, usize) -> Y,
) -> Result<(), crate::error::Error> {
    let pixels = crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y)?;
    #[cfg(ldp_avx512)]
    if vnni {
        // SAFETY: features per the contract, shapes checked just above.
        unsafe { run_vnni(x, c_in, q, c_out, y, pixels, finish) };
        return Ok(());
    }
    let _ = vnni;
    // SAFETY: AVX2 per the contract, shapes checked just above.
    unsafe { run(x, c_in, q, c_out, y, pixels, finish) };
    Ok(())
}

/// `pointwise_in16` (int8 outputs) forced to the AVX2 kernel (`vnni = false`) or to the
/// AVX-512 VNNI one (`vnni = true`; the AVX2 one on builds without the AVX-512 intrinsics),
/// with its own shape checks, for tests and benchmarks.
///
/// # Safety
/// The CPU must support AVX2, and with `vnni` AVX-512 F/BW/VL and AVX512_VNNI
/// (`is_x86_feature_detected!`).
pub unsafe fn pointwise_in16_forced(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
    vnni: bool,
) -> Result<(), crate::error::Error> {
    let fin = |acc: i32, o: usize| {
        crate::quant::kernels::finish::<i8>(q.bias_at(o).wrapping_add(acc), o, q)
    };
    // SAFETY: the contract is `forced`'s.
    unsafe { forced(x, c_in, q, c_out, y, vnni, fin) }
}

/// `pointwise16` (16-bit outputs) forced as [`pointwise_in16_forced`].
///
/// # Safety
/// As [`pointwise_in16_forced`].
pub unsafe fn pointwise16_forced(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
    vnni: bool,
) -> Result<(), crate::error::Error> {
    let fin = |acc: i32, o: usize| out16(q.bias_at(o).wrapping_add(acc), o, q);
    // SAFETY: the contract is `forced`'s.
    unsafe { forced(x, c_in, q, c_out, y, vnni, fin) }
}

/// `pointwise_in16` (`i8` outputs, optional table) forced to the AVX-VNNI kernel, with its own
/// shape checks, for tests and benchmarks (the AVX2 kernel on builds without the 1.89
/// intrinsics).
///
/// # Safety
/// The CPU must support AVX2 and AVX-VNNI (`is_x86_feature_detected!("avxvnni")`).
pub unsafe fn pointwise_in16_avxvnni(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i8],
) -> Result<(), crate::error::Error> {
    let fin = |acc: i32, o: usize| {
        crate::quant::kernels::finish::<i8>(q.bias_at(o).wrapping_add(acc), o, q)
    };
    // SAFETY: the contract is `forced_avxvnni`'s.
    unsafe { forced_avxvnni(x, c_in, q, c_out, y, fin) }
}

/// `pointwise16` (16-bit outputs) forced to the AVX-VNNI kernel, as
/// [`pointwise_in16_avxvnni`].
///
/// # Safety
/// As [`pointwise_in16_avxvnni`].
pub unsafe fn pointwise16_avxvnni(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [i16],
) -> Result<(), crate::error::Error> {
    let fin = |acc: i32, o: usize| out16(q.bias_at(o).wrapping_add(acc), o, q);
    // SAFETY: the contract is `forced_avxvnni`'s.
    unsafe { forced_avxvnni(x, c_in, q, c_out, y, fin) }
}

/// [`run_avxvnni`] ([`run`] on builds without the 1.89 intrinsics) with its own shape checks.
///
/// # Safety
/// AVX2 and AVX-VNNI available.
unsafe fn forced_avxvnni<Y: crate::quant::kernels::ConvOut>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    finish: impl Fn(i32, usize) -> Y,
) -> Result<(), crate::error::Error> {
    let pixels = crate::kernels::pointwise::int8::check_pw(x, c_in, q, c_out, y)?;
    // SAFETY: features per the contract, shapes checked just above.
    unsafe {
        #[cfg(ldp_avx512)]
        run_avxvnni(x, c_in, q, c_out, y, pixels, finish);
        #[cfg(not(ldp_avx512))]
        run(x, c_in, q, c_out, y, pixels, finish);
    }
    Ok(())
}

/// Sum of the 8 lanes (wrapping).
#[inline]
#[target_feature(enable = "avx2")]
fn hsum(v: __m256i) -> i32 {
    let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b01_00_11_10>(s));
    let s = _mm_add_epi32(s, _mm_shuffle_epi32::<0b10_11_00_01>(s));
    _mm_cvtsi128_si32(s)
}

/// The AVX-VNNI kernel: the GEMM form [`gemm16_avxvnni`] for the shapes it takes (even
/// `c_in ≤ 2048`, `c_out ≥ 16`), else the AVX2 kernel [`run`] (`vpdpwssd` in its dot-product
/// loop, which widens the weights as it goes, measured slower than `vpmaddwd` there).
///
/// # Safety
/// AVX2 and AVX-VNNI; lengths as checked by `check_pw`.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn run_avxvnni<Y>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    finish: impl Fn(i32, usize) -> Y,
) {
    if c_in % 2 == 0 && c_in <= PK16_MAX && c_out >= NRY {
        // SAFETY: per this function's contract; the shape is one the GEMM form takes.
        unsafe { gemm16_avxvnni(x, c_in, q, c_out, y, pixels, finish) };
        return;
    }
    // SAFETY: per this function's contract (AVX2 present).
    unsafe { run(x, c_in, q, c_out, y, pixels, finish) }
}

/// Outputs per panel of the AVX-VNNI GEMM form (two ymm of `i32`).
const NRY: usize = 16;
/// Panels per group of the AVX-VNNI GEMM form (each pixel tile runs against all of them).
const GY: usize = 4;
/// Words of one panel of the AVX-VNNI GEMM form (`c_in ≤ PK16_MAX`).
const PANELY_WORDS: usize = PK16_MAX / 2 * NRY;

/// The AVX-VNNI kernel's GEMM form, for even `c_in ≤ 2048` and `c_out ≥ 16`: panels of 16
/// outputs with their weights widened once per call ([`pack16_w`]; 4 panels, 256 KiB in
/// `kernels::workspace`), then tiles of 6 pixels × 16 outputs (12 accumulators): per channel
/// pair two panel loads, six broadcast pairs of activations (read in place) and 12 `vpdpwssd`.
/// No widening in the loop, which is what kept the dot-product form ([`run`]) from gaining
/// with `vpdpwssd`. Each output's sum is exact and wraps like the reference's; `finish` adds the
/// bias and requantizes, as in [`run`].
///
/// # Safety
/// AVX2 and AVX-VNNI; lengths as checked by `check_pw`; `c_in` even, `c_in ≤ PK16_MAX`,
/// `c_out ≥ 16`.
#[cfg(ldp_avx512)]
unsafe fn gemm16_avxvnni<Y>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    finish: impl Fn(i32, usize) -> Y,
) {
    crate::kernels::workspace::with::<u32, { GY * PANELY_WORDS }, _>(|ws| {
        // SAFETY: this function's contract; `ws` holds GY·PANELY_WORDS words.
        unsafe { gemm16_avxvnni_in(x, c_in, q, c_out, y, pixels, &finish, ws) }
    })
}

/// [`gemm16_avxvnni`] on its workspace.
///
/// # Safety
/// As [`gemm16_avxvnni`]; `ws.len() ≥ GY·PANELY_WORDS`.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx2,avxvnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm16_avxvnni_in<Y>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    finish: &impl Fn(i32, usize) -> Y,
    ws: &mut [u32],
) {
    let mut o = 0;
    while o < c_out {
        let (o0s, ng) = super::vnni::group_of::<NRY, GY>(o, c_out);
        for (g, panel) in ws.chunks_exact_mut(PANELY_WORDS).take(ng).enumerate() {
            // SAFETY: c_in even and ≤ PK16_MAX, o0 + 16 ≤ c_out, weights of c_out·c_in
            // (contract); the panel holds PANELY_WORDS ≥ c_in/2·16 words; AVX2 present.
            unsafe { pack16_w::<NRY>(q.weight, c_in, o0s[g], panel) };
        }
        let mut p = 0;
        while p < pixels {
            let m = match pixels - p {
                6.. => 6,
                4..=5 => 4,
                2..=3 => 2,
                _ => 1,
            };
            for (g, panel) in ws.chunks_exact(PANELY_WORDS).take(ng).enumerate() {
                let o0 = o0s[g];
                // SAFETY: p + m ≤ pixels, o0 + 16 ≤ c_out, the panel packed above; features
                // per this function's contract.
                unsafe {
                    match m {
                        6 => tile16y::<Y, 6>(x, c_in, panel, c_out, y, o0, p, finish),
                        4 => tile16y::<Y, 4>(x, c_in, panel, c_out, y, o0, p, finish),
                        2 => tile16y::<Y, 2>(x, c_in, panel, c_out, y, o0, p, finish),
                        _ => tile16y::<Y, 1>(x, c_in, panel, c_out, y, o0, p, finish),
                    }
                }
            }
            p += m;
        }
        o += ng * NRY;
    }
}

/// One tile of [`gemm16_avxvnni`]: pixels `p0..p0+M` × outputs `o0..o0+16`.
///
/// # Safety
/// `p0 + M ≤ pixels`, `o0 + 16 ≤ c_out`, `x` of `pixels·c_in` and `y` of `pixels·c_out` values,
/// `c_in` even; `panel` holds the packed `c_in/2·16` words of these outputs; AVX2 and AVX-VNNI.
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::incompatible_msrv)]
unsafe fn tile16y<Y, const M: usize>(
    x: &[i16],
    c_in: usize,
    panel: &[u32],
    c_out: usize,
    y: &mut [Y],
    o0: usize,
    p0: usize,
    finish: &impl Fn(i32, usize) -> Y,
) {
    let kp = c_in / 2;
    let mut sums = [[0i32; NRY]; M];
    // SAFETY: panel words j < kp (2 ymm each); activation pairs j < kp of rows p0..p0+M, each
    // row c_in = 2·kp values (unaligned 4-byte reads).
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); 2]; M];
        let xs: [*const u32; M] =
            core::array::from_fn(|t| x.as_ptr().add((p0 + t) * c_in) as *const u32);
        let wp = panel.as_ptr() as *const __m256i;
        for j in 0..kp {
            let w0 = _mm256_loadu_si256(wp.add(2 * j));
            let w1 = _mm256_loadu_si256(wp.add(2 * j + 1));
            for t in 0..M {
                let u = _mm256_set1_epi32(xs[t].add(j).read_unaligned() as i32);
                acc[t][0] = dpwssd_y(acc[t][0], u, w0);
                acc[t][1] = dpwssd_y(acc[t][1], u, w1);
            }
        }
        for (s, a) in sums.iter_mut().zip(&acc) {
            _mm256_storeu_si256(s.as_mut_ptr() as *mut __m256i, a[0]);
            _mm256_storeu_si256(s.as_mut_ptr().add(8) as *mut __m256i, a[1]);
        }
    }
    for (t, s) in sums.iter().enumerate() {
        let row = (p0 + t) * c_out + o0;
        for (l, (v, &acc)) in y[row..row + NRY].iter_mut().zip(s).enumerate() {
            *v = finish(acc, o0 + l);
        }
    }
}

/// The AVX2 kernel: pixel triples through a 3-pixel × 4-output tile (12 accumulators, each
/// widened weight vector used three times), the last one or two pixels through [`tiles16`];
/// 16 channels per step (`vpmaddwd`).
///
/// # Safety
/// AVX2; lengths as checked by `check_pw`.
#[target_feature(enable = "avx2")]
unsafe fn run<Y>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    finish: impl Fn(i32, usize) -> Y,
) {
    let p3 = pixels / 3 * 3;
    let (o4, k) = (c_out / 4 * 4, c_in / 16 * 16);
    let w = q.weight;
    let row = |o: usize| &w[o * c_in..(o + 1) * c_in];
    // Cache blocks of `PB` pixels (a multiple of 3; 192 KiB of 2048-wide rows, in L2): every
    // group of 4 weight rows (in L1) passes over the whole block before the next group.
    const PB: usize = 48;
    let mut pb = 0;
    while pb < p3 {
        let pe = (pb + PB).min(p3);
        let mut o = 0;
        while o < o4 {
            let mut p = pb;
            while p < pe {
                let xs = [
                    &x[p * c_in..(p + 1) * c_in],
                    &x[(p + 1) * c_in..(p + 2) * c_in],
                    &x[(p + 2) * c_in..(p + 3) * c_in],
                ];
                {
                    let rows = [row(o), row(o + 1), row(o + 2), row(o + 3)];
                    let mut acc = [[_mm256_setzero_si256(); 4]; 3];
                    // Raw pointers in the loop (slices would keep 14 pointer and length
                    // registers live and bounds-check every step).
                    let xp: [*const i16; 3] = core::array::from_fn(|t| xs[t].as_ptr());
                    let wp: [*const i8; 4] = core::array::from_fn(|j| rows[j].as_ptr());
                    let mut i = 0;
                    while i < k {
                        // SAFETY: i + 16 ≤ k ≤ c_in, the length of each pixel row and each
                        // weight row: 32-byte loads (16 × i16) and 16-byte loads (16 × i8)
                        // inside the slices the pointers come from.
                        unsafe {
                            let v: [__m256i; 3] =
                                core::array::from_fn(|t| _mm256_loadu_si256(xp[t].add(i).cast()));
                            for j in 0..4 {
                                let wk = _mm256_cvtepi8_epi16(_mm_loadu_si128(wp[j].add(i).cast()));
                                for t in 0..3 {
                                    acc[t][j] =
                                        _mm256_add_epi32(acc[t][j], _mm256_madd_epi16(v[t], wk));
                                }
                            }
                        }
                        i += 16;
                    }
                    for t in 0..3 {
                        for j in 0..4 {
                            let tail = crate::quant::a16::dot16(&xs[t][k..], &rows[j][k..]);
                            y[(p + t) * c_out + o + j] =
                                finish(hsum(acc[t][j]).wrapping_add(tail), o + j);
                        }
                    }
                }
                p += 3;
            }
            o += 4;
        }
        for p in pb..pe {
            for o in o4..c_out {
                y[p * c_out + o] = finish(
                    crate::quant::a16::dot16(&x[p * c_in..(p + 1) * c_in], row(o)),
                    o,
                );
            }
        }
        pb = pe;
    }
    if p3 == pixels {
        return;
    }
    let (x, y, pixels) = (&x[p3 * c_in..], &mut y[p3 * c_out..], pixels - p3);
    tiles16(
        x,
        c_in,
        q.weight,
        c_out,
        y,
        pixels,
        |xa, xb, rows| {
            let k = xa.len().min(xb.len()) / 16 * 16;
            let mut a = [_mm256_setzero_si256(); 4];
            let mut b = [_mm256_setzero_si256(); 4];
            let mut i = 0;
            while i < k {
                // SAFETY: i + 16 ≤ k ≤ the length of xa and xb: 32-byte loads (16 × i16) inside
                // the slices.
                let (va, vb) = unsafe {
                    (
                        _mm256_loadu_si256(xa.as_ptr().add(i).cast()),
                        _mm256_loadu_si256(xb.as_ptr().add(i).cast()),
                    )
                };
                for j in 0..4 {
                    let r = &rows[j][i..i + 16];
                    // SAFETY: `r` holds the 16 bytes read.
                    let wk = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(r.as_ptr().cast()) });
                    a[j] = _mm256_add_epi32(a[j], _mm256_madd_epi16(va, wk));
                    b[j] = _mm256_add_epi32(b[j], _mm256_madd_epi16(vb, wk));
                }
                i += 16;
            }
            (a.map(|v| hsum(v)), b.map(|v| hsum(v)), k)
        },
        finish,
    )
}

/// The AVX-512 VNNI kernel: the packed GEMM form [`gemm16`] for the shapes it takes (even
/// `c_in ≤ 2048`, `c_out ≥ 32`), else [`tiles16`] with 32 channels per step (`vpdpwssd`: 32
/// `i16·i16` products added pairwise into 16 `i32` lanes, non-saturating, so wrapping like the
/// reference), weights widened with `vpmovsxbw`.
///
/// # Safety
/// AVX-512 F/BW/VL and AVX512_VNNI; lengths as checked by `check_pw`.
#[cfg(ldp_avx512)]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
unsafe fn run_vnni<Y: Out16>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    finish: impl Fn(i32, usize) -> Y,
) {
    if gemm_takes(c_in, c_out) {
        // SAFETY: features and lengths per this function's contract; the shape is one the
        // GEMM form takes.
        unsafe { gemm16(x, c_in, q, c_out, y, pixels) };
        return;
    }
    let hsum512 = |v: __m512i| {
        hsum(_mm256_add_epi32(
            _mm512_castsi512_si256(v),
            _mm512_extracti64x4_epi64::<1>(v),
        ))
    };
    tiles16(
        x,
        c_in,
        q.weight,
        c_out,
        y,
        pixels,
        |xa, xb, rows| {
            let k = xa.len().min(xb.len()) / 32 * 32;
            let mut a = [_mm512_setzero_si512(); 4];
            let mut b = [_mm512_setzero_si512(); 4];
            let mut i = 0;
            while i < k {
                // SAFETY: i + 32 ≤ k ≤ the length of xa and xb: 64-byte loads (32 × i16) inside
                // the slices.
                let (va, vb) = unsafe {
                    (
                        _mm512_loadu_si512(xa.as_ptr().add(i).cast()),
                        _mm512_loadu_si512(xb.as_ptr().add(i).cast()),
                    )
                };
                for j in 0..4 {
                    let r = &rows[j][i..i + 32];
                    // SAFETY: `r` holds the 32 bytes read.
                    let wk = _mm512_cvtepi8_epi16(unsafe { _mm256_loadu_si256(r.as_ptr().cast()) });
                    // SAFETY: AVX512_VNNI available (this function's contract).
                    unsafe {
                        a[j] = dpwssd(a[j], va, wk);
                        b[j] = dpwssd(b[j], vb, wk);
                    }
                }
                i += 32;
            }
            (a.map(&hsum512), b.map(&hsum512), k)
        },
        finish,
    )
}

/// Outputs per packed panel of the GEMM form (two zmm of `i32`).
#[cfg(ldp_avx512)]
const NR16: usize = 32;
/// Largest `c_in` of the GEMM form (a panel is `c_in / 2 · 32` words: 128 KiB, in the workspace).
#[cfg(ldp_avx512)]
const PK16_MAX: usize = 2048;
/// Panels per group (each pixel tile runs against the group's panels while its rows are hot).
#[cfg(ldp_avx512)]
const G16: usize = 2;

/// `true` when the GEMM form [`gemm16`] takes the shape: an even `c_in ≤ 2048` (the activation
/// pairs are read as 32-bit words inside each row) and `c_out ≥ 32` (whole panels; the last one
/// overlaps the one before).
#[cfg(ldp_avx512)]
fn gemm_takes(c_in: usize, c_out: usize) -> bool {
    c_in % 2 == 0 && c_in <= PK16_MAX && c_out >= NR16
}

/// The output stage of the 16-bit pointwise kernels' GEMM form: the reference's finishing
/// step on 16 lanes.
pub(crate) trait Out16: Sized {
    /// The output zero point folded into the requantization (`i16`: none, [`out16`]).
    fn zero(q: &ConvQ<'_>) -> i32;
    /// Stores the 16 requantized lanes `r` (zero point added) at `y[at..at + 16]`:
    /// saturated to `±MAX16` (`i16`, [`out16`]) or to int8 then through the optional table
    /// (`i8`, `quant::kernels::finish`).
    ///
    /// # Safety
    /// AVX-512 F/BW available.
    #[cfg(ldp_avx512)]
    unsafe fn store(y: &mut [Self], at: usize, r: __m512i, lut: Option<&[i8]>);
}

impl Out16 for i16 {
    fn zero(_q: &ConvQ<'_>) -> i32 {
        0
    }

    #[cfg(ldp_avx512)]
    #[inline(always)]
    #[allow(clippy::incompatible_msrv)]
    unsafe fn store(y: &mut [i16], at: usize, r: __m512i, _lut: Option<&[i8]>) {
        // Bounds-checked first: `store_sat16` writes exactly these 16 `i16`s.
        let dst: &mut [i16; 16] = (&mut y[at..at + 16]).try_into().expect("16-element slice");
        // SAFETY: AVX-512 F/BW available (this function's contract).
        unsafe { crate::kernels::isa::x86::store_sat16(dst, r) }
    }
}

impl Out16 for i8 {
    fn zero(q: &ConvQ<'_>) -> i32 {
        q.out_zero
    }

    #[cfg(ldp_avx512)]
    #[inline(always)]
    #[allow(clippy::incompatible_msrv)]
    unsafe fn store(y: &mut [i8], at: usize, r: __m512i, lut: Option<&[i8]>) {
        // Bounds-checked first: the raw store below writes exactly these 16 bytes.
        let dst: &mut [i8; 16] = (&mut y[at..at + 16]).try_into().expect("16-byte slice");
        // SAFETY: register-only AVX-512 operations; `dst` is 16 writable bytes.
        unsafe { _mm_storeu_si128(dst.as_mut_ptr() as *mut __m128i, _mm512_cvtsepi32_epi8(r)) };
        crate::kernels::isa::x86::apply_lut(dst, lut);
    }
}

/// Packs outputs `o0..o0+32` into `panel` as `[c_in/2][32]` words ([`pack16_w`]).
///
/// # Safety
/// As [`pack16_w`] with `W = 32`.
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn pack16(weight: &[i8], c_in: usize, o0: usize, panel: &mut [u32]) {
    // SAFETY: per this function's contract.
    unsafe { pack16_w::<NR16>(weight, c_in, o0, panel) }
}

/// Packs outputs `o0..o0+W` (`W` a multiple of 8) into `panel` as `[c_in/2][W]` words: word `j`
/// of output `o` holds the weights of channels `2j` (low half) and `2j + 1` (high half) of row
/// `o0 + o`, each sign-extended to `i16` — the operand layout of `vpdpwssd` against a broadcast
/// pair of activations.
///
/// # Safety
/// `c_in` even, `o0 + W ≤ c_out`, `weight.len() = c_out·c_in`, `panel.len() ≥ c_in/2·W`;
/// AVX2 available.
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn pack16_w<const W: usize>(weight: &[i8], c_in: usize, o0: usize, panel: &mut [u32]) {
    let kp = c_in / 2;
    let kp8 = kp / 8 * 8;
    let pp = panel.as_mut_ptr();
    for l0 in (0..W).step_by(8) {
        // SAFETY: rows o0+l0..o0+l0+8 < c_out; 16-byte loads at byte 2·jj with jj + 8 ≤ kp stay
        // inside a row of c_in = 2·kp bytes; stores go to panel[(jj+j)·W + l0 .. +8] with
        // jj + j < kp.
        unsafe {
            let rows: [*const i8; 8] =
                core::array::from_fn(|i| weight.as_ptr().add((o0 + l0 + i) * c_in));
            let mut jj = 0;
            while jj < kp8 {
                let mut r: [__m256; 8] = core::array::from_fn(|i| {
                    let b = _mm_loadu_si128(rows[i].add(2 * jj) as *const __m128i);
                    _mm256_castsi256_ps(_mm256_cvtepi8_epi16(b))
                });
                super::transpose8(&mut r);
                for (j, v) in r.iter().enumerate() {
                    _mm256_storeu_ps(pp.add((jj + j) * W + l0) as *mut f32, *v);
                }
                jj += 8;
            }
        }
        for i in 0..8 {
            let row = &weight[(o0 + l0 + i) * c_in..(o0 + l0 + i + 1) * c_in];
            for j in kp8..kp {
                let lo = row[2 * j] as i16 as u16 as u32;
                let hi = row[2 * j + 1] as i16 as u16 as u32;
                panel[j * W + l0 + i] = lo | (hi << 16);
            }
        }
    }
}

/// `vpdpwssd acc, u, w` as one instruction. LLVM rewrites `_mm512_dpwssd_epi32` into
/// `vpmaddwd` + `vpaddd` for CPUs it does not know to have a fast `vpdpwssd` (the generic
/// x86-64 tuning included), which halves this kernel's throughput; the same arithmetic (exact
/// pair sums added with wrapping into each `i32` lane).
///
/// # Safety
/// AVX-512 F and AVX512_VNNI available.
#[cfg(ldp_avx512)]
#[inline]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn dpwssd(acc: __m512i, u: __m512i, w: __m512i) -> __m512i {
    let mut a = acc;
    // SAFETY: a register-only instruction of AVX512_VNNI (available per the contract); no
    // memory, stack or flags touched.
    unsafe {
        core::arch::asm!(
            "vpdpwssd {a}, {u}, {w}",
            a = inout(zmm_reg) a,
            u = in(zmm_reg) u,
            w = in(zmm_reg) w,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    a
}

/// `{vex} vpdpwssd acc, u, w` on ymm as one instruction: [`dpwssd`]'s reason (LLVM otherwise
/// turns most of them into `vpmaddwd` + `vpaddd`, seen in the AVX-VNNI GEMM form's loop), the
/// same arithmetic.
///
/// # Safety
/// AVX2 and AVX-VNNI available.
#[cfg(ldp_avx512)]
#[inline]
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn dpwssd_y(acc: __m256i, u: __m256i, w: __m256i) -> __m256i {
    let mut a = acc;
    // SAFETY: a register-only instruction of AVX-VNNI (available per the contract); no memory,
    // stack or flags touched.
    unsafe {
        core::arch::asm!(
            "{{vex}} vpdpwssd {a}, {u}, {w}",
            a = inout(ymm_reg) a,
            u = in(ymm_reg) u,
            w = in(ymm_reg) w,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    a
}

/// Epilogue of a panel: the 32 biases, the 32 multipliers and their odd 64-bit halves (two zmm
/// each), for [`Rq16::apply`].
#[cfg(ldp_avx512)]
type Panel16 = ([__m512i; 2], [__m512i; 2], [__m512i; 2]);

/// One tile: pixels `p0..p0+M` against the packed panel of outputs `o0..o0+32`: per pair of
/// channels, two panel loads, `M` broadcasts of the pixels' activation pairs and `2·M`
/// `vpdpwssd` into `M × 32` `i32` accumulators.
///
/// # Safety
/// `c_in` even, `p0 + M ≤ pixels`, `o0 + 32 ≤ c_out`, lengths as checked by `check_pw`;
/// `panel` packed for `o0` ([`pack16`]); AVX-512 F/BW/VNNI available.
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::incompatible_msrv)]
unsafe fn tile16<Y: Out16, const M: usize>(
    x: &[i16],
    c_in: usize,
    panel: &[u32],
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    o0: usize,
    p0: usize,
    rq: Rq16,
    (bias, mult, mult_odd): Panel16,
) {
    let kp = c_in / 2;
    // SAFETY (whole body): the activation words are read at i16 index 2j, 2j + 1 < c_in of rows
    // p0 + m < pixels (4-byte unaligned reads); panel words at j < kp; the stores go through
    // bounds-checked slices (`Out16::store`).
    unsafe {
        let mut acc = [[_mm512_setzero_si512(); 2]; M];
        let xs: [*const i16; M] = core::array::from_fn(|m| x.as_ptr().add((p0 + m) * c_in));
        let wp = panel.as_ptr() as *const __m512i;
        for j in 0..kp {
            let w0 = _mm512_loadu_si512(wp.add(2 * j));
            let w1 = _mm512_loadu_si512(wp.add(2 * j + 1));
            for m in 0..M {
                let pair = (xs[m].add(2 * j) as *const i32).read_unaligned();
                let u = _mm512_set1_epi32(pair);
                acc[m][0] = dpwssd(acc[m][0], u, w0);
                acc[m][1] = dpwssd(acc[m][1], u, w1);
            }
        }
        for (m, a) in acc.iter().enumerate() {
            let at = (p0 + m) * c_out + o0;
            for h in 0..2 {
                let r = rq.apply(_mm512_add_epi32(a[h], bias[h]), mult[h], mult_odd[h]);
                Y::store(y, at + 16 * h, r, q.lut);
            }
        }
    }
}

/// One channel-pair step `\\i` of [`micro6x2`]'s 6 × 64 tile, for an assembler `.irp i` loop:
/// the four panel words at `wa + 128·i`, `wb + 128·i` (two zmm each), then per row `m` a
/// broadcast of its activation pair `i` (row pointers `r0`, `r3` for rows 0–2, 3–5, plus `0`,
/// `s` or `2·s`) and four `vpdpwssd` into `zmm(4m)..zmm(4m+3)`.
#[cfg(ldp_avx512)]
macro_rules! i16_pair_step {
    () => {
        concat!(
            "vmovdqu64 zmm24, [{wa} + \\i*128]\n",
            "vmovdqu64 zmm25, [{wa} + \\i*128 + 64]\n",
            "vmovdqu64 zmm26, [{wb} + \\i*128]\n",
            "vmovdqu64 zmm27, [{wb} + \\i*128 + 64]\n",
            "vpbroadcastd zmm28, dword ptr [{r0} + \\i*4]\n",
            "vpdpwssd zmm0, zmm28, zmm24\n",
            "vpdpwssd zmm1, zmm28, zmm25\n",
            "vpdpwssd zmm2, zmm28, zmm26\n",
            "vpdpwssd zmm3, zmm28, zmm27\n",
            "vpbroadcastd zmm29, dword ptr [{r0} + {s} + \\i*4]\n",
            "vpdpwssd zmm4, zmm29, zmm24\n",
            "vpdpwssd zmm5, zmm29, zmm25\n",
            "vpdpwssd zmm6, zmm29, zmm26\n",
            "vpdpwssd zmm7, zmm29, zmm27\n",
            "vpbroadcastd zmm30, dword ptr [{r0} + {s}*2 + \\i*4]\n",
            "vpdpwssd zmm8, zmm30, zmm24\n",
            "vpdpwssd zmm9, zmm30, zmm25\n",
            "vpdpwssd zmm10, zmm30, zmm26\n",
            "vpdpwssd zmm11, zmm30, zmm27\n",
            "vpbroadcastd zmm31, dword ptr [{r3} + \\i*4]\n",
            "vpdpwssd zmm12, zmm31, zmm24\n",
            "vpdpwssd zmm13, zmm31, zmm25\n",
            "vpdpwssd zmm14, zmm31, zmm26\n",
            "vpdpwssd zmm15, zmm31, zmm27\n",
            "vpbroadcastd zmm28, dword ptr [{r3} + {s} + \\i*4]\n",
            "vpdpwssd zmm16, zmm28, zmm24\n",
            "vpdpwssd zmm17, zmm28, zmm25\n",
            "vpdpwssd zmm18, zmm28, zmm26\n",
            "vpdpwssd zmm19, zmm28, zmm27\n",
            "vpbroadcastd zmm29, dword ptr [{r3} + {s}*2 + \\i*4]\n",
            "vpdpwssd zmm20, zmm29, zmm24\n",
            "vpdpwssd zmm21, zmm29, zmm25\n",
            "vpdpwssd zmm22, zmm29, zmm26\n",
            "vpdpwssd zmm23, zmm29, zmm27\n",
        )
    };
}

/// The channel loop of [`tile16x2`] for 6 pixels whose rows are `stride` bytes apart, in
/// assembly: 8 channel pairs per iteration, the six broadcasts addressed from two pointers
/// (`r`, `r + 3·stride`) plus `stride` or `2·stride` and the channel offset in the
/// displacement (four pointer additions per 8 pairs, where the compiled loop computed each
/// row's address); the last `kp mod 8` pairs one at a time. `acc[m][h]` gains
/// `Σ_j pair_j(row m) · panel_h(j)` (`h` 0–1: panel `wa`, 2–3: panel `wb`) by `vpdpwssd`,
/// whose wrapping `i32` sums equal the intrinsics loop's bit for bit in any order.
///
/// # Safety
/// Rows `x0 + m·stride` bytes (`m < 6`) each hold `2·kp` readable `i16`; `wa` and `wb` each
/// hold `kp·32` words (`kp = 0` leaves `acc` zero); AVX-512 F and AVX512_VNNI available.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn micro6x2(
    x0: *const i16,
    stride: usize,
    wa: *const u32,
    wb: *const u32,
    kp: usize,
    acc: &mut [[__m512i; 4]; 6],
) {
    // SAFETY: the loops run `kp` steps in all; step `j` reads 4 bytes at `x0 + m·stride + 4j`
    // (pair j < kp of row m) and 128 bytes at `wa + 128j` and at `wb + 128j` (inside the
    // `kp·32`-word panels); `acc` is 24 zmm of writable memory, written at the end. Every zmm
    // the code uses is declared clobbered; the stack is not touched.
    unsafe {
        core::arch::asm!(
            ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
            "vpxord zmm\\i, zmm\\i, zmm\\i",
            ".endr",
            "cmp {n}, 8",
            "jb 4f",
            "3:",
            ".irp i, 0,1,2,3,4,5,6,7",
            i16_pair_step!(),
            ".endr",
            "add {r0}, 32",
            "add {r3}, 32",
            "add {wa}, 1024",
            "add {wb}, 1024",
            "sub {n}, 8",
            "cmp {n}, 8",
            "jae 3b",
            "4:",
            "test {n}, {n}",
            "jz 5f",
            "2:",
            ".irp i, 0",
            i16_pair_step!(),
            ".endr",
            "add {r0}, 4",
            "add {r3}, 4",
            "add {wa}, 128",
            "add {wb}, 128",
            "dec {n}",
            "jnz 2b",
            "5:",
            ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
            "vmovdqu64 [{acc} + \\i*64], zmm\\i",
            ".endr",
            acc = in(reg) acc.as_mut_ptr(),
            wa = inout(reg) wa => _,
            wb = inout(reg) wb => _,
            r0 = inout(reg) x0 => _,
            r3 = inout(reg) x0.wrapping_byte_add(3 * stride) => _,
            s = in(reg) stride,
            n = inout(reg) kp => _,
            out("zmm0") _,
            out("zmm1") _,
            out("zmm2") _,
            out("zmm3") _,
            out("zmm4") _,
            out("zmm5") _,
            out("zmm6") _,
            out("zmm7") _,
            out("zmm8") _,
            out("zmm9") _,
            out("zmm10") _,
            out("zmm11") _,
            out("zmm12") _,
            out("zmm13") _,
            out("zmm14") _,
            out("zmm15") _,
            out("zmm16") _,
            out("zmm17") _,
            out("zmm18") _,
            out("zmm19") _,
            out("zmm20") _,
            out("zmm21") _,
            out("zmm22") _,
            out("zmm23") _,
            out("zmm24") _,
            out("zmm25") _,
            out("zmm26") _,
            out("zmm27") _,
            out("zmm28") _,
            out("zmm29") _,
            out("zmm30") _,
            out("zmm31") _,
            options(nostack),
        );
    }
}

/// [`tile16`] against both panels of a group at once: pixels `p0..p0+6` against outputs
/// `o0s[0]..+32` and `o0s[1]..+32`; per pair of channels four panel loads, 6 broadcasts and
/// 24 `vpdpwssd` into 6 × 64 accumulators ([`micro6x2`]) — half the broadcasts per `vpdpwssd`
/// of [`tile16`], and the pixels' rows read once for both panels.
///
/// # Safety
/// As [`tile16`], for each of the two panels (`panels[g]` packed for `o0s[g]`).
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments, clippy::incompatible_msrv)]
unsafe fn tile16x2<Y: Out16>(
    x: &[i16],
    c_in: usize,
    panels: [&[u32]; 2],
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    o0s: [usize; 2],
    p0: usize,
    rq: Rq16,
    outs: [Panel16; 2],
) {
    // SAFETY (whole body): as in `tile16`, for each panel: the 6 rows p0..p0+6 < pixels hold
    // c_in = 2·kp i16 each, c_in·2 bytes apart; each panel holds kp·32 words; acc is 6 × 4
    // zmm; bounds-checked stores.
    unsafe {
        let mut acc = [[_mm512_setzero_si512(); 4]; 6];
        let (pa, pb) = (panels[0].as_ptr(), panels[1].as_ptr());
        micro6x2(
            x.as_ptr().add(p0 * c_in),
            c_in * 2,
            pa,
            pb,
            c_in / 2,
            &mut acc,
        );
        for (m, a) in acc.iter().enumerate() {
            for g in 0..2 {
                let (bias, mult, mult_odd) = outs[g];
                let at = (p0 + m) * c_out + o0s[g];
                for h in 0..2 {
                    let r = rq.apply(
                        _mm512_add_epi32(a[2 * g + h], bias[h]),
                        mult[h],
                        mult_odd[h],
                    );
                    Y::store(y, at + 16 * h, r, q.lut);
                }
            }
        }
    }
}

/// The GEMM form of the AVX-512 VNNI 16-bit kernel: panels of 32 outputs packed once per call
/// ([`pack16`], weights widened to `i16` pairs), two panels per group, pixel tiles of 6 against
/// both panels of a group ([`tile16x2`]), the rest in tiles of 12 (then 8, 4, 2, 1) against
/// each panel ([`tile16`]); the epilogue is the
/// reference's bias, requantization and saturation on 16 lanes ([`Rq16`], [`Out16`]).
/// `vpdpwssd` adds exact `i16·i16` pair sums into `i32` lanes without saturation, so every sum
/// equals the reference's wrapping sum. When 32 does not divide `c_out` the last panel overlaps
/// the one before (outputs computed twice get the same value).
///
/// The panels live in this thread's workspace (`kernels::workspace`).
///
/// # Safety
/// AVX-512 F/BW/VL and AVX512_VNNI; lengths as checked by `check_pw`; [`gemm_takes`].
#[cfg(ldp_avx512)]
unsafe fn gemm16<Y: Out16>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
) {
    crate::kernels::workspace::with::<u32, { G16 * PANEL16_WORDS }, _>(|ws| {
        let (a, b) = ws.split_at_mut(PANEL16_WORDS);
        // SAFETY: this function's contract; two panels of PANEL16_WORDS words (G16 = 2).
        unsafe { gemm16_in(x, c_in, q, c_out, y, pixels, [a, b]) }
    })
}

/// Words of one packed 16-bit panel (`c_in ≤ PK16_MAX`).
const PANEL16_WORDS: usize = PK16_MAX / 2 * NR16;
const _: () = assert!(G16 == 2, "gemm16 splits its workspace into two panels");

/// [`gemm16`] on its panel buffers.
///
/// # Safety
/// As [`gemm16`]; each panel buffer holds at least `PANEL16_WORDS` words.
#[cfg(ldp_avx512)]
#[allow(clippy::incompatible_msrv)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2")]
unsafe fn gemm16_in<Y: Out16>(
    x: &[i16],
    c_in: usize,
    q: &ConvQ<'_>,
    c_out: usize,
    y: &mut [Y],
    pixels: usize,
    panels: [&mut [u32]; G16],
) {
    // SAFETY (whole body): features per the contract; every o0 + 32 ≤ c_out (c_out ≥ 32), so the
    // bias/mult reads are in bounds; each panel holds c_in/2·32 ≤ PK16_MAX/2·32 words; the tiles
    // stay inside p < pixels.
    unsafe {
        let rq = Rq16::new(q.shift, Y::zero(q));
        let z = _mm512_setzero_si512();
        let mut o = 0;
        while o < c_out {
            let mut o0s = [0usize; G16];
            let mut outs: [Panel16; G16] = [([z; 2], [z; 2], [z; 2]); G16];
            let mut ng = 0;
            while ng < G16 && o < c_out {
                let o0 = o.min(c_out - NR16);
                pack16(q.weight, c_in, o0, panels[ng]);
                let b = q.bias_n::<NR16>(o0);
                let mu = q.mult_n::<NR16>(o0);
                let bias: [__m512i; 2] =
                    core::array::from_fn(|h| _mm512_loadu_si512(b.as_ptr().add(16 * h).cast()));
                let mult: [__m512i; 2] =
                    core::array::from_fn(|h| _mm512_loadu_si512(mu.as_ptr().add(16 * h).cast()));
                let odd = [
                    _mm512_srli_epi64::<32>(mult[0]),
                    _mm512_srli_epi64::<32>(mult[1]),
                ];
                outs[ng] = (bias, mult, odd);
                o0s[ng] = o0;
                ng += 1;
                o += NR16;
            }
            let mut p = 0;
            // Both panels at once while 6 pixels are left (on V1's 2048 → 2048 layers 68 against
            // 73 ms for the whole pass), then the single-panel tiles.
            if ng == 2 {
                while pixels - p >= 6 {
                    let pn = [&panels[0][..], &panels[1][..]];
                    tile16x2::<Y>(x, c_in, pn, q, c_out, y, o0s, p, rq, outs);
                    p += 6;
                }
            }
            while p < pixels {
                let left = pixels - p;
                for g in 0..ng {
                    let (pn, o0, po) = (&panels[g][..], o0s[g], outs[g]);
                    if left >= 12 {
                        tile16::<Y, 12>(x, c_in, pn, q, c_out, y, o0, p, rq, po);
                    } else if left >= 8 {
                        tile16::<Y, 8>(x, c_in, pn, q, c_out, y, o0, p, rq, po);
                    } else if left >= 4 {
                        tile16::<Y, 4>(x, c_in, pn, q, c_out, y, o0, p, rq, po);
                    } else if left >= 2 {
                        tile16::<Y, 2>(x, c_in, pn, q, c_out, y, o0, p, rq, po);
                    } else {
                        tile16::<Y, 1>(x, c_in, pn, q, c_out, y, o0, p, rq, po);
                    }
                }
                p += match left {
                    12.. => 12,
                    8..=11 => 8,
                    4..=7 => 4,
                    2..=3 => 2,
                    _ => 1,
                };
            }
        }
    }
}
