//! x86-64 AVX2 + FMA pointwise kernel (a packed GEMM), f32 and f16 storage.
//!
//! `y = x · wᵀ`: `x` is `[P][K]`, `w` is `[N][K]`, both contiguous along `K`. A panel of 16 output
//! channels of `w` is packed, converted to f32, into `[K][16]` (a transpose) in a stack buffer;
//! then a 6 × 16 register tile (6 pixels × 16 outputs = 12 ymm accumulators) walks down the
//! pixels: per input channel two vector loads of the panel, six broadcasts of `x` and twelve
//! FMAs. The panel (≤ 128 KiB) stays in L2 while every pixel streams past it, so each weight is
//! packed exactly once per call. f16 inputs are widened (F16C) six rows at a time into a second
//! stack buffer; f16 outputs are narrowed with round-to-nearest-even, like `half`.
//!
//! Summation order, per output: `acc = bias`, then one FMA per input channel in channel order.
//! It depends only on `K`, never on the pixel count or the tile an output lands in, so the
//! streaming executor (which calls this on chunks of pixels) stays bit-identical to whole-tensor
//! execution. For `K > KC` the chain continues through `y` (f32 only; f16 outputs with `K > KC`
//! take the portable kernel). Error against the serial reference: each output is still a serial
//! sum; FMA only removes roundings, within the `c_in·eps·Σ|x·w|` bound the tests use.
//!
//! The fused activation runs on the 16 finished outputs of a row through the same scalar
//! [`activation`](crate::kernels::activation) functions, vectorized by the compiler inside this
//! AVX2 function: results equal the scalar activations bit for bit.

pub mod amx;
pub mod avx512;
pub mod avxvnni;
pub mod int16;
pub mod int8;
pub mod vnni;

use core::arch::x86_64::*;

use half::f16;

use crate::elem::Elem;
use crate::error::Error;
use crate::kernels::activation::Activation;
use crate::kernels::cpu;
use crate::DType;

/// Pixels per register tile.
const MR: usize = 6;
/// Outputs per register tile (two ymm).
const NR: usize = 16;
/// Input channels per packed panel: `KC·NR` f32 = 128 KiB (`kernels::workspace`).
const KC: usize = 2048;

/// Runs the AVX2 kernel if the CPU has it (else `false`: the caller then uses the portable
/// kernel). Shapes must already be validated.
pub(crate) fn pointwise<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> bool {
    if !cpu::x86_avx2_fma() {
        return false;
    }
    // SAFETY: AVX2, FMA and F16C are present (checked just above).
    unsafe { pointwise_avx2(x, c_in, w, bias, c_out, act, y) }.is_ok()
}

/// The AVX2 kernel, for tests and benchmarks that want this path whatever the dispatch picks.
/// Validates the shapes; f16 outputs with `c_in > 2048` use the portable kernel.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C (`is_x86_feature_detected!`).
pub unsafe fn pointwise_avx2<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> Result<(), Error> {
    super::check_shapes(x, c_in, w, bias, c_out, y)?;
    if c_in > KC && Y::DTYPE != DType::F32 {
        super::portable::pointwise(x, c_in, w, bias, c_out, act, y)?;
    } else {
        // SAFETY: the caller guarantees the CPU features; `check_shapes` validated
        // `x.len() = P·c_in`, `w.len() = c_out·c_in`, `bias.len() = c_out`, `y.len() = P·c_out`;
        // `Y` is f32 whenever `c_in > KC`.
        unsafe { gemm(x, c_in, w, bias, c_out, act, y) };
    }
    Ok(())
}

/// Loads 8 consecutive elements of `p` as f32.
///
/// # Safety
/// `p..p+8` must be readable; AVX2 and F16C must be available.
#[inline(always)]
pub(super) unsafe fn load8<T: Elem>(p: *const T) -> __m256 {
    // SAFETY: the caller guarantees 8 readable elements; `T` is f32 or f16 (Elem's only types).
    unsafe {
        if T::DTYPE == DType::F16 {
            _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
        } else {
            _mm256_loadu_ps(p as *const f32)
        }
    }
}

/// Transposes the 8×8 block `r` (row `i` = 8 consecutive values of one weight row): on return
/// `r[j]` holds element `j` of every row.
///
/// # Safety
/// AVX available.
#[inline(always)]
pub(crate) unsafe fn transpose8(r: &mut [__m256; 8]) {
    // SAFETY: register-only AVX shuffles.
    unsafe {
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        r[0] = _mm256_permute2f128_ps::<0x20>(u0, u4);
        r[1] = _mm256_permute2f128_ps::<0x20>(u1, u5);
        r[2] = _mm256_permute2f128_ps::<0x20>(u2, u6);
        r[3] = _mm256_permute2f128_ps::<0x20>(u3, u7);
        r[4] = _mm256_permute2f128_ps::<0x31>(u0, u4);
        r[5] = _mm256_permute2f128_ps::<0x31>(u1, u5);
        r[6] = _mm256_permute2f128_ps::<0x31>(u2, u6);
        r[7] = _mm256_permute2f128_ps::<0x31>(u3, u7);
    }
}

/// Packs rows `n0..n0+nv` (`nv ≤ 16`), channels `k0..k0+kc` of `w` into `bp[kk·16 + l]`,
/// zero-filling the rows past `nv`. Full groups of 8 rows × 8 channels go through an 8×8
/// register transpose; the rest element by element.
///
/// # Safety
/// The ranges must lie inside `w` (`[c_out][k]`); `bp` holds `kc·16` values; F16C available.
#[inline(always)]
unsafe fn pack_panel<W: Elem>(
    w: &[W],
    k: usize,
    n0: usize,
    nv: usize,
    k0: usize,
    kc: usize,
    bp: *mut f32,
) {
    let kc8 = kc / 8 * 8;
    for g in 0..NR / 8 {
        let l0 = 8 * g;
        if l0 + 8 <= nv {
            // SAFETY: rows n0+l0..n0+l0+8 < n0+nv and channels k0+kk..k0+kk+8 ≤ k0+kc lie
            // inside w; stores go to bp[(kk+j)·16 + l0 .. +8] < kc·16.
            unsafe {
                let rows: [*const W; 8] =
                    core::array::from_fn(|i| w.as_ptr().add((n0 + l0 + i) * k + k0));
                let mut kk = 0;
                while kk < kc8 {
                    let mut r: [__m256; 8] = core::array::from_fn(|i| load8(rows[i].add(kk)));
                    transpose8(&mut r);
                    for (j, v) in r.iter().enumerate() {
                        _mm256_storeu_ps(bp.add((kk + j) * NR + l0), *v);
                    }
                    kk += 8;
                }
                for kk in kc8..kc {
                    for i in 0..8 {
                        *bp.add(kk * NR + l0 + i) = (*rows[i].add(kk)).to_f32();
                    }
                }
            }
            continue;
        }
        for l in l0..l0 + 8 {
            for kk in 0..kc {
                let v = if l < nv {
                    w[(n0 + l) * k + k0 + kk].to_f32()
                } else {
                    0.0
                };
                // SAFETY: kk·16 + l < kc·16.
                unsafe { *bp.add(kk * NR + l) = v };
            }
        }
    }
}

/// Applies `act` to 16 values (a `match` outside the loop, so each arm vectorizes); GELU is
/// the AVX2 + FMA form of `gelu_slice` (the same bits as it, whatever the position).
///
/// # Safety
/// AVX2 and FMA available.
#[inline(always)]
pub(super) unsafe fn activate(act: Option<Activation>, v: &mut [f32; NR]) {
    use crate::kernels::activation::{hardsigmoid, hardswish, relu};
    match act {
        None => {}
        // SAFETY: AVX2 and FMA per the contract.
        Some(Activation::Gelu) => unsafe { crate::kernels::activation::x86::gelu16(v) },
        Some(Activation::Hardswish) => v.iter_mut().for_each(|e| *e = hardswish(*e)),
        Some(Activation::Hardsigmoid) => v.iter_mut().for_each(|e| *e = hardsigmoid(*e)),
        Some(Activation::Relu) => v.iter_mut().for_each(|e| *e = relu(*e)),
    }
}

/// One `M × 16` tile over `kc` channels: `acc` enters holding the running sums and leaves
/// with `kc` more FMAs per output.
///
/// # Safety
/// Each `a[m]` (`m < M`) points at `kc` readable f32; `bp` at `kc·16`; AVX2 + FMA available.
#[inline(always)]
unsafe fn micro<const M: usize>(
    a: &[*const f32; MR],
    bp: *const f32,
    kc: usize,
    acc: &mut [[__m256; 2]; MR],
) {
    let mut b = bp;
    for i in 0..kc {
        // SAFETY: i < kc, so b points inside the panel and a[m].add(i) inside row m.
        unsafe {
            let b0 = _mm256_loadu_ps(b);
            let b1 = _mm256_loadu_ps(b.add(8));
            for m in 0..M {
                let av = _mm256_broadcast_ss(&*a[m].add(i));
                acc[m][0] = _mm256_fmadd_ps(av, b0, acc[m][0]);
                acc[m][1] = _mm256_fmadd_ps(av, b1, acc[m][1]);
            }
            b = b.add(NR);
        }
    }
}

/// Pixels `p0..p0+M` against the packed panel of outputs `n0..n0+nv`, channels `k0..k0+kc`.
///
/// # Safety
/// Shapes as in [`pointwise`]; `p0 + M ≤ P`, `n0 + nv ≤ N`, `k0 + kc ≤ K`; `bp` holds the packed
/// panel; `abuf` holds `MR·KC` f32 (used when `X` is f16); AVX2, FMA, F16C available.
#[inline(always)]
unsafe fn tile<X: Elem, Y: Elem, const M: usize>(
    x: &[X],
    k: usize,
    y: &mut [Y],
    n: usize,
    p0: usize,
    n0: usize,
    nv: usize,
    k0: usize,
    kc: usize,
    bp: *const f32,
    abuf: *mut f32,
    bias16: &[f32; NR],
    act: Option<Activation>,
) {
    let first = k0 == 0;
    let last = k0 + kc == k;
    // SAFETY (whole body): every pointer below is derived from in-bounds indices, per the
    // function's contract: rows p0..p0+M of x/y, columns n0..n0+nv of y, channels k0..k0+kc.
    unsafe {
        let zero = _mm256_setzero_ps();
        let mut acc = [[zero; 2]; MR];
        for m in 0..M {
            if first {
                acc[m] = [
                    _mm256_loadu_ps(bias16.as_ptr()),
                    _mm256_loadu_ps(bias16.as_ptr().add(8)),
                ];
            } else {
                // K > KC: continue the chain from the f32 partial sums stored in y.
                let yr = y.as_ptr().add((p0 + m) * n + n0) as *const f32;
                let mut t = [0.0f32; NR];
                core::ptr::copy_nonoverlapping(yr, t.as_mut_ptr(), nv);
                acc[m] = [
                    _mm256_loadu_ps(t.as_ptr()),
                    _mm256_loadu_ps(t.as_ptr().add(8)),
                ];
            }
        }
        let mut a = [core::ptr::null::<f32>(); MR];
        for m in 0..M {
            let row = x.as_ptr().add((p0 + m) * k + k0);
            if X::DTYPE == DType::F32 {
                a[m] = row as *const f32;
            } else {
                let dst = abuf.add(m * KC);
                let mut i = 0;
                while i + 8 <= kc {
                    _mm256_storeu_ps(dst.add(i), load8(row.add(i)));
                    i += 8;
                }
                while i < kc {
                    *dst.add(i) = (*row.add(i)).to_f32();
                    i += 1;
                }
                a[m] = dst;
            }
        }
        micro::<M>(&a, bp, kc, &mut acc);
        let mut act = if last { act } else { None };
        if act == Some(Activation::Gelu) {
            // Two rows (four vectors) per step: independent chains in flight.
            use crate::kernels::activation::x86::gelu_n;
            let mut m = 0;
            while m + 2 <= M {
                let g = gelu_n::<4>([acc[m][0], acc[m][1], acc[m + 1][0], acc[m + 1][1]]);
                acc[m] = [g[0], g[1]];
                acc[m + 1] = [g[2], g[3]];
                m += 2;
            }
            if m < M {
                acc[m] = gelu_n::<2>(acc[m]);
            }
            act = None;
        }
        for m in 0..M {
            let mut t = [0.0f32; NR];
            _mm256_storeu_ps(t.as_mut_ptr(), acc[m][0]);
            _mm256_storeu_ps(t.as_mut_ptr().add(8), acc[m][1]);
            activate(act, &mut t);
            let yr = y.as_mut_ptr().add((p0 + m) * n + n0);
            if Y::DTYPE == DType::F16 {
                let h0 = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(t.as_ptr()));
                let h1 = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(
                    t.as_ptr().add(8),
                ));
                if nv == NR {
                    _mm_storeu_si128(yr as *mut __m128i, h0);
                    _mm_storeu_si128((yr as *mut __m128i).add(1), h1);
                } else {
                    let mut hs = [f16::ZERO; NR];
                    _mm_storeu_si128(hs.as_mut_ptr() as *mut __m128i, h0);
                    _mm_storeu_si128((hs.as_mut_ptr() as *mut __m128i).add(1), h1);
                    core::ptr::copy_nonoverlapping(hs.as_ptr(), yr as *mut f16, nv);
                }
            } else if nv == NR {
                // A full panel: two vector stores (a variable-length copy is a `memcpy` call).
                _mm256_storeu_ps(yr as *mut f32, _mm256_loadu_ps(t.as_ptr()));
                _mm256_storeu_ps((yr as *mut f32).add(8), _mm256_loadu_ps(t.as_ptr().add(8)));
            } else {
                core::ptr::copy_nonoverlapping(t.as_ptr(), yr as *mut f32, nv);
            }
        }
    }
}

/// The packed GEMM, on this thread's workspace (`kernels::workspace`).
///
/// # Safety
/// Shapes validated by `check_shapes`; AVX2, FMA and F16C available; `Y` is f32 when `k > KC`.
unsafe fn gemm<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    k: usize,
    w: &[W],
    bias: Option<&[f32]>,
    n: usize,
    act: Option<Activation>,
    y: &mut [Y],
) {
    crate::kernels::workspace::with::<f32, WS_FLOATS, _>(|ws| {
        // SAFETY: this function's contract; `ws` holds WS_FLOATS floats.
        unsafe { gemm_in(x, k, w, bias, n, act, y, ws) }
    })
}

/// Floats of [`gemm`]'s workspace: a panel buffer of `KC·NR`, then the `MR·KC` pixel rows.
const WS_FLOATS: usize = KC * NR + MR * KC;

/// [`gemm`] on its workspace.
///
/// # Safety
/// As [`gemm`]; `ws.len() ≥ WS_FLOATS`.
#[target_feature(enable = "avx2,fma,f16c")]
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_in<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    k: usize,
    w: &[W],
    bias: Option<&[f32]>,
    n: usize,
    act: Option<Activation>,
    y: &mut [Y],
    ws: &mut [f32],
) {
    let pixels = x.len() / k;
    // The panel buffer and the pixel rows: disjoint parts of `ws` (WS_FLOATS long).
    let (panel, rows) = ws.split_at_mut(KC * NR);
    let (bp, abuf) = (panel.as_mut_ptr(), rows.as_mut_ptr());
    // Short rows (`k ≤ KC/2`): several panels are packed side by side into the buffer, and
    // each block of `MB` pixels (kept in L1) runs against all of them before the next block,
    // so `x` streams from memory once per group of panels instead of once per panel. The
    // arithmetic per output is unchanged (same tile, same channel order).
    let group = (KC / k).clamp(1, KC / NR);
    let mb = if group > 1 {
        (MB_BYTES / (k * core::mem::size_of::<X>())).max(MR) / MR * MR
    } else {
        pixels.max(1)
    };
    let mut n0 = 0;
    while n0 < n {
        if group > 1 {
            // SAFETY: k ≤ KC/2 here, so `group` panels of k·16 values fit in the buffer;
            // shapes and features per this function's contract.
            n0 = unsafe { gemm_group(x, k, w, bias, n, act, y, n0, group, mb, bp, abuf) };
            continue;
        }
        let nv = NR.min(n - n0);
        let mut bias16 = [0.0f32; NR];
        if let Some(b) = bias {
            bias16[..nv].copy_from_slice(&b[n0..n0 + nv]);
        }
        let mut k0 = 0;
        while k0 < k {
            let kc = KC.min(k - k0);
            // SAFETY: rows n0..n0+nv and channels k0..k0+kc lie inside w; the panel holds
            // KC·16 ≥ kc·16 values and is fully written before it is read.
            unsafe { pack_panel(w, k, n0, nv, k0, kc, bp) };
            // SAFETY: as above; the tiles stay inside the pixels, outputs n0..n0+nv and
            // channels k0..k0+kc.
            unsafe {
                tiles(
                    x, k, y, n, 0, pixels, n0, nv, k0, kc, bp, abuf, &bias16, act,
                )
            };
            k0 += kc;
        }
        n0 += nv;
    }
}

/// Bytes of `x` per pixel block of the grouped form (half of a 32 KiB L1).
const MB_BYTES: usize = 16 * 1024;

/// The grouped form for `k ≤ KC/2`: packs up to `group` panels starting at output `n0`, then
/// runs every block of `mb` pixels against each of them. Returns the next `n0`.
///
/// # Safety
/// As [`gemm`], with `k·16·group ≤ KC·16` (`group ≤ KC/k`) and `bp` holding `KC·16` values.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn gemm_group<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    k: usize,
    w: &[W],
    bias: Option<&[f32]>,
    n: usize,
    act: Option<Activation>,
    y: &mut [Y],
    n0: usize,
    group: usize,
    mb: usize,
    bp: *mut f32,
    abuf: *mut f32,
) -> usize {
    let pixels = x.len() / k;
    let mut biases = [[0.0f32; NR]; KC / NR];
    let mut ends = n0;
    let mut g = 0;
    while g < group && ends < n {
        let nv = NR.min(n - ends);
        if let Some(b) = bias {
            biases[g][..nv].copy_from_slice(&b[ends..ends + nv]);
        }
        // SAFETY: rows ends..ends+nv and channels 0..k lie inside w; panel g occupies
        // bp[g·k·16 .. (g+1)·k·16] ≤ KC·16 since g < group ≤ KC/k.
        unsafe { pack_panel(w, k, ends, nv, 0, k, bp.add(g * k * NR)) };
        ends += nv;
        g += 1;
    }
    // When this group holds every output (`k ≤ KC/2` and `n ≤ group·16`: the seed block's
    // 128 → 128) and AVX-512 is there, a GELU runs on each pixel block's finished rows while
    // they are in L1, 16 lanes wide (`gelu_slice_avx512`, the same bits as the tile's 8-lane
    // epilogue, with half the instructions in flight).
    let late_gelu = cfg!(ldp_avx512)
        && act == Some(Activation::Gelu)
        && Y::DTYPE == DType::F32
        && n0 == 0
        && ends == n
        && cpu::x86_avx512();
    let act = if late_gelu { None } else { act };
    let mut pb = 0;
    while pb < pixels {
        let pe = (pb + mb).min(pixels);
        let mut m0 = n0;
        for (j, b16) in biases.iter().enumerate().take(g) {
            let nv = NR.min(n - m0);
            // SAFETY: pixels pb..pe, outputs m0..m0+nv ≤ n, channels 0..k; panel j packed
            // above.
            unsafe {
                tiles(
                    x,
                    k,
                    y,
                    n,
                    pb,
                    pe,
                    m0,
                    nv,
                    0,
                    k,
                    bp.add(j * k * NR),
                    abuf,
                    b16,
                    act,
                )
            };
            m0 += nv;
        }
        #[cfg(ldp_avx512)]
        if late_gelu {
            if let Some(rows) = cpu::as_f32_mut(&mut y[pb * n..pe * n]) {
                // SAFETY: `late_gelu` checked the AVX-512 level, which has AVX-512F.
                unsafe { crate::kernels::activation::x86::gelu_slice_avx512(rows) };
            }
        }
        pb = pe;
    }
    ends
}

/// Pixels `p_start..p_end` against one packed panel (outputs `n0..n0+nv`, channels
/// `k0..k0+kc`), in tiles of [`MR`] pixels.
///
/// # Safety
/// As [`tile`] for every tile: `p_end ≤ P`, `n0 + nv ≤ N`, `k0 + kc ≤ K`, `bp` packed.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tiles<X: Elem, Y: Elem>(
    x: &[X],
    k: usize,
    y: &mut [Y],
    n: usize,
    p_start: usize,
    p_end: usize,
    n0: usize,
    nv: usize,
    k0: usize,
    kc: usize,
    bp: *const f32,
    abuf: *mut f32,
    bias16: &[f32; NR],
    act: Option<Activation>,
) {
    let mut p0 = p_start;
    while p0 < p_end {
        let m = MR.min(p_end - p0);
        // SAFETY: p0 + m ≤ p_end ≤ pixels; the rest per this function's contract.
        unsafe {
            match m {
                6 => tile::<X, Y, 6>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias16, act),
                5 => tile::<X, Y, 5>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias16, act),
                4 => tile::<X, Y, 4>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias16, act),
                3 => tile::<X, Y, 3>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias16, act),
                2 => tile::<X, Y, 2>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias16, act),
                _ => tile::<X, Y, 1>(x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias16, act),
            }
        }
        p0 += m;
    }
}
