//! x86-64 AVX-512 pointwise kernel (a packed GEMM), f32 and f16 storage.
//!
//! The AVX2 kernel of [`super`] widened to zmm registers: a panel of 32 output channels of `w` is
//! packed, converted to f32, into `[K][32]` (256 KiB for `K ≤ 2048`, in the thread's workspace with
//! `std`, else on the stack), then a 12 × 32 register tile (12 pixels × 32 outputs = 24 zmm
//! accumulators) walks down the pixels: per input channel two panel loads, twelve broadcasts of `x`
//! (embedded in the FMAs) and 24 FMAs of 16 lanes — 32 f32 MACs per FMA instead of 16. The full
//! 12-pixel tile's channel loop is written in assembly (`micro12`): 16 channels per iteration, the
//! twelve rows addressed from three pointers plus `stride`, `2·stride` or `3·stride` (four pointer
//! additions per 16 channels, where the compiled loop had one per row and channel and a spilled
//! pointer). While 64 outputs are left, two panels are packed (512 KiB) and tiles of 6 pixels × 64
//! outputs (`micro6x2`: four panel loads and six broadcasts per 24 FMAs) walk the pixels; the last
//! pixels take the 12/8/4/2/1 × 32 tiles on each panel. Same FMAs in the same order for every
//! output, so the same bits.
//!
//! Summation order, per output: `acc = bias`, then one FMA per input channel in channel order,
//! continued through `y` for `K > 2048` (f32 outputs; f16 outputs with `K > 2048` take the
//! portable kernel), exactly as in [`super`]: the results equal the AVX2 kernel's **bit for
//! bit**, whatever the pixel count or thread split. The fused activation runs on finished rows
//! through the same scalar functions, and f16 outputs are narrowed with F16C
//! (round-to-nearest-even), as there.
//!
//! The AVX-512 intrinsics are stable since Rust 1.89: with an older compiler (`ldp_avx512` unset
//! by `build.rs`) this module keeps its entry points, [`pointwise_avx512`] runs the AVX2 kernel
//! and [`crate::kernels::cpu::x86_detected`] never reports AVX-512.
// Everything using the 1.89 intrinsics is behind `cfg(ldp_avx512)` (rustc ≥ 1.89, build.rs).
#![allow(clippy::incompatible_msrv)]
#![cfg_attr(not(ldp_avx512), allow(unused_imports, dead_code))]

use core::arch::x86_64::*;

use half::f16;

use super::{activate, load8, transpose8};
use crate::elem::Elem;
use crate::error::Error;
use crate::kernels::activation::x86::gelu_n16;
use crate::kernels::activation::Activation;
use crate::kernels::cpu;
use crate::DType;

/// Pixels per register tile.
const MR: usize = 12;
/// Outputs per register tile (two zmm).
const NR: usize = 32;
/// Input channels per packed panel (the AVX2 kernel's, so both continue their chains at the
/// same channels): `KC·NR` f32 = 256 KiB (`kernels::workspace`).
const KC: usize = 2048;

/// Runs the AVX-512 kernel if the CPU has it, [`cpu::x86_level`] allows it and its 512-bit
/// FMAs are full width ([`cpu::x86_avx512_float`]; else `false`: the caller tries the next
/// kernel, the AVX2 one with the same bits). Shapes must already be validated.
pub(crate) fn pointwise<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> bool {
    if !cpu::x86_avx512_float() {
        return false;
    }
    // SAFETY: AVX-512 F/BW/VL/DQ, AVX2, FMA and F16C are present (checked just above).
    unsafe { pointwise_avx512(x, c_in, w, bias, c_out, act, y) }.is_ok()
}

/// The AVX-512 kernel, for tests and benchmarks that want this path whatever the dispatch
/// picks. Validates the shapes; f16 outputs with `c_in > 2048` use the portable kernel.
///
/// # Safety
/// The CPU must support AVX-512 F, BW, VL and DQ, AVX2, FMA and F16C
/// (`is_x86_feature_detected!`, or [`cpu::x86_detected`] `==` [`cpu::X86Level::Avx512`]).
pub unsafe fn pointwise_avx512<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> Result<(), Error> {
    super::super::check_shapes(x, c_in, w, bias, c_out, y)?;
    if c_in > KC && Y::DTYPE != DType::F32 {
        super::super::portable::pointwise(x, c_in, w, bias, c_out, act, y)?;
    } else {
        // SAFETY: the caller guarantees the CPU features; `check_shapes` validated
        // `x.len() = P·c_in`, `w.len() = c_out·c_in`, `bias.len() = c_out`, `y.len() = P·c_out`;
        // `Y` is f32 whenever `c_in > KC`.
        #[cfg(ldp_avx512)]
        unsafe {
            gemm(x, c_in, w, bias, c_out, act, y)
        };
        // SAFETY: as above (AVX-512 implies AVX2, FMA and F16C).
        #[cfg(not(ldp_avx512))]
        unsafe {
            super::x86::pointwise_avx2(x, c_in, w, bias, c_out, act, y)?
        };
    }
    Ok(())
}

/// Packs rows `n0..n0+nv` (`nv ≤ 32`), channels `k0..k0+kc` of `w` into `bp[kk·32 + l]`,
/// zero-filling the rows past `nv`. Full groups of 8 rows × 8 channels go through an 8×8
/// register transpose; the rest element by element.
///
/// # Safety
/// The ranges must lie inside `w` (`[c_out][k]`); `bp` holds `kc·32` values; AVX2 and F16C
/// available.
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
            // inside w; stores go to bp[(kk+j)·32 + l0 .. +8] < kc·32.
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
                // SAFETY: kk·32 + l < kc·32.
                unsafe { *bp.add(kk * NR + l) = v };
            }
        }
    }
}

/// One `M × 32` tile over `kc` channels: `acc` enters holding the running sums and leaves with
/// `kc` more FMAs per output.
///
/// # Safety
/// Each `a[m]` (`m < M`) points at `kc` readable f32; `bp` at `kc·32`; AVX-512F available.
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn micro<const M: usize>(
    a: &[*const f32; MR],
    bp: *const f32,
    kc: usize,
    acc: &mut [[__m512; 2]; MR],
) {
    let mut b = bp;
    for i in 0..kc {
        // SAFETY: i < kc, so b points inside the panel and a[m].add(i) inside row m.
        unsafe {
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            for m in 0..M {
                let av = _mm512_set1_ps(*a[m].add(i));
                acc[m][0] = _mm512_fmadd_ps(av, b0, acc[m][0]);
                acc[m][1] = _mm512_fmadd_ps(av, b1, acc[m][1]);
            }
            b = b.add(NR);
        }
    }
}

/// One channel step `\\i` of [`micro12`]'s 12 × 32 tile, for an assembler `.irp i` loop: two
/// panel loads at `b + 128·i`, then per row `m` a broadcast of channel `i` (row pointers `r0`,
/// `r4`, `r8` for rows 0–3, 4–7, 8–11, plus `0`, `s`, `2·s` or `s3`) and two FMAs into
/// `zmm(2m)`, `zmm(2m+1)`.
#[cfg(ldp_avx512)]
macro_rules! f32_channel_step {
    () => {
        concat!(
            "vmovups zmm24, [{b} + \\i*128]\n",
            "vmovups zmm25, [{b} + \\i*128 + 64]\n",
            "vbroadcastss zmm26, dword ptr [{r0} + \\i*4]\n",
            "vfmadd231ps zmm0, zmm26, zmm24\n",
            "vfmadd231ps zmm1, zmm26, zmm25\n",
            "vbroadcastss zmm27, dword ptr [{r0} + {s} + \\i*4]\n",
            "vfmadd231ps zmm2, zmm27, zmm24\n",
            "vfmadd231ps zmm3, zmm27, zmm25\n",
            "vbroadcastss zmm28, dword ptr [{r0} + {s}*2 + \\i*4]\n",
            "vfmadd231ps zmm4, zmm28, zmm24\n",
            "vfmadd231ps zmm5, zmm28, zmm25\n",
            "vbroadcastss zmm29, dword ptr [{r0} + {s3} + \\i*4]\n",
            "vfmadd231ps zmm6, zmm29, zmm24\n",
            "vfmadd231ps zmm7, zmm29, zmm25\n",
            "vbroadcastss zmm26, dword ptr [{r4} + \\i*4]\n",
            "vfmadd231ps zmm8, zmm26, zmm24\n",
            "vfmadd231ps zmm9, zmm26, zmm25\n",
            "vbroadcastss zmm27, dword ptr [{r4} + {s} + \\i*4]\n",
            "vfmadd231ps zmm10, zmm27, zmm24\n",
            "vfmadd231ps zmm11, zmm27, zmm25\n",
            "vbroadcastss zmm28, dword ptr [{r4} + {s}*2 + \\i*4]\n",
            "vfmadd231ps zmm12, zmm28, zmm24\n",
            "vfmadd231ps zmm13, zmm28, zmm25\n",
            "vbroadcastss zmm29, dword ptr [{r4} + {s3} + \\i*4]\n",
            "vfmadd231ps zmm14, zmm29, zmm24\n",
            "vfmadd231ps zmm15, zmm29, zmm25\n",
            "vbroadcastss zmm26, dword ptr [{r8} + \\i*4]\n",
            "vfmadd231ps zmm16, zmm26, zmm24\n",
            "vfmadd231ps zmm17, zmm26, zmm25\n",
            "vbroadcastss zmm27, dword ptr [{r8} + {s} + \\i*4]\n",
            "vfmadd231ps zmm18, zmm27, zmm24\n",
            "vfmadd231ps zmm19, zmm27, zmm25\n",
            "vbroadcastss zmm28, dword ptr [{r8} + {s}*2 + \\i*4]\n",
            "vfmadd231ps zmm20, zmm28, zmm24\n",
            "vfmadd231ps zmm21, zmm28, zmm25\n",
            "vbroadcastss zmm29, dword ptr [{r8} + {s3} + \\i*4]\n",
            "vfmadd231ps zmm22, zmm29, zmm24\n",
            "vfmadd231ps zmm23, zmm29, zmm25\n",
        )
    };
}

/// [`micro`] for a full tile of 12 pixels whose rows are `stride` bytes apart, in assembly so
/// that the twelve broadcasts address their rows from three pointers (`r`, `r + 4·stride`,
/// `r + 8·stride`) plus `stride`, `2·stride` or `3·stride`, 16 channels per iteration (the
/// channel offsets in the displacements): four pointer additions per 16 channels instead of one
/// per row and channel, and no spilled pointer; the last `kc mod 16` channels one at a time.
/// The same FMAs in the same order as [`micro`] (`acc ← x·w + acc` per channel), so the same
/// bits.
///
/// # Safety
/// Rows `a0 + m·stride` bytes (`m < 12`) each hold `kc` readable f32; `bp` holds `kc·32`;
/// `kc ≥ 1`; AVX-512F available.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f")]
unsafe fn micro12(
    a0: *const f32,
    stride: usize,
    bp: *const f32,
    kc: usize,
    acc: &mut [[__m512; 2]; MR],
) {
    // SAFETY: the loop runs `kc` times; step `i` reads 4 bytes at `a0 + m·stride + 4i` (row m,
    // channel i < kc) and 128 bytes at `bp + 128i` (inside the `kc·32` panel); `acc` is 24 zmm
    // of writable memory, read at the start and written at the end. Every zmm the code uses is
    // declared clobbered; the stack is not touched.
    unsafe {
        core::arch::asm!(
            ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
            "vmovups zmm\\i, [{acc} + \\i*64]",
            ".endr",
            "cmp {n}, 16",
            "jb 4f",
            "3:",
            ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            f32_channel_step!(),
            ".endr",
            "add {r0}, 64",
            "add {r4}, 64",
            "add {r8}, 64",
            "add {b}, 2048",
            "sub {n}, 16",
            "cmp {n}, 16",
            "jae 3b",
            "4:",
            "test {n}, {n}",
            "jz 5f",
            "2:",
            ".irp i, 0",
            f32_channel_step!(),
            ".endr",
            "add {r0}, 4",
            "add {r4}, 4",
            "add {r8}, 4",
            "add {b}, 128",
            "dec {n}",
            "jnz 2b",
            "5:",
            ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
            "vmovups [{acc} + \\i*64], zmm\\i",
            ".endr",
            acc = in(reg) acc.as_mut_ptr(),
            b = inout(reg) bp => _,
            r0 = inout(reg) a0 => _,
            r4 = inout(reg) a0.wrapping_byte_add(4 * stride) => _,
            r8 = inout(reg) a0.wrapping_byte_add(8 * stride) => _,
            s = in(reg) stride,
            s3 = in(reg) 3 * stride,
            n = inout(reg) kc => _,
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
            options(nostack),
        );
    }
}

/// One channel step `\\i` of [`micro6x2`]'s 6 × 64 tile, for an assembler `.irp i` loop:
/// the two panels' rows at `b + 128·i` and `b2 + 128·i` (two zmm each), then per pixel row `m`
/// a broadcast of channel `i` (row pointers `r0`, `r3` for rows 0–2, 3–5, plus `0`, `s` or
/// `2·s`) and four FMAs into `zmm(4m)..zmm(4m+3)`.
#[cfg(ldp_avx512)]
macro_rules! f32_channel_step_6x2 {
    () => {
        concat!(
            "vmovups zmm24, [{b} + \\i*128]\n",
            "vmovups zmm25, [{b} + \\i*128 + 64]\n",
            "vmovups zmm26, [{b2} + \\i*128]\n",
            "vmovups zmm27, [{b2} + \\i*128 + 64]\n",
            "vbroadcastss zmm28, dword ptr [{r0} + \\i*4]\n",
            "vfmadd231ps zmm0, zmm28, zmm24\n",
            "vfmadd231ps zmm1, zmm28, zmm25\n",
            "vfmadd231ps zmm2, zmm28, zmm26\n",
            "vfmadd231ps zmm3, zmm28, zmm27\n",
            "vbroadcastss zmm29, dword ptr [{r0} + {s} + \\i*4]\n",
            "vfmadd231ps zmm4, zmm29, zmm24\n",
            "vfmadd231ps zmm5, zmm29, zmm25\n",
            "vfmadd231ps zmm6, zmm29, zmm26\n",
            "vfmadd231ps zmm7, zmm29, zmm27\n",
            "vbroadcastss zmm30, dword ptr [{r0} + {s}*2 + \\i*4]\n",
            "vfmadd231ps zmm8, zmm30, zmm24\n",
            "vfmadd231ps zmm9, zmm30, zmm25\n",
            "vfmadd231ps zmm10, zmm30, zmm26\n",
            "vfmadd231ps zmm11, zmm30, zmm27\n",
            "vbroadcastss zmm31, dword ptr [{r3} + \\i*4]\n",
            "vfmadd231ps zmm12, zmm31, zmm24\n",
            "vfmadd231ps zmm13, zmm31, zmm25\n",
            "vfmadd231ps zmm14, zmm31, zmm26\n",
            "vfmadd231ps zmm15, zmm31, zmm27\n",
            "vbroadcastss zmm28, dword ptr [{r3} + {s} + \\i*4]\n",
            "vfmadd231ps zmm16, zmm28, zmm24\n",
            "vfmadd231ps zmm17, zmm28, zmm25\n",
            "vfmadd231ps zmm18, zmm28, zmm26\n",
            "vfmadd231ps zmm19, zmm28, zmm27\n",
            "vbroadcastss zmm29, dword ptr [{r3} + {s}*2 + \\i*4]\n",
            "vfmadd231ps zmm20, zmm29, zmm24\n",
            "vfmadd231ps zmm21, zmm29, zmm25\n",
            "vfmadd231ps zmm22, zmm29, zmm26\n",
            "vfmadd231ps zmm23, zmm29, zmm27\n",
        )
    };
}

/// The channel loop of 6 pixels against two panels (64 outputs), in assembly like
/// [`micro12`]: four panel loads and six broadcasts per 24 FMAs (the 12 × 32 tile needs two
/// and twelve), 16 channels per iteration. `acc[m]` holds row `m`'s outputs `0..16`, `16..32`
/// of panel `bp` and of panel `bp2`; each gains `x·w` per channel in channel order, the same
/// FMAs as [`micro`], so the same bits.
///
/// # Safety
/// Rows `a0 + m·stride` bytes (`m < 6`) each hold `kc` readable f32; `bp` and `bp2` each hold
/// `kc·32`; `kc ≥ 1`; AVX-512F available.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f")]
unsafe fn micro6x2(
    a0: *const f32,
    stride: usize,
    bp: *const f32,
    bp2: *const f32,
    kc: usize,
    acc: &mut [[__m512; 4]; 6],
) {
    // SAFETY: the loops run `kc` steps in all; step `i` reads 4 bytes at `a0 + m·stride + 4i`
    // (row m, channel i < kc) and 128 bytes at `bp + 128i` and `bp2 + 128i` (inside the `kc·32`
    // panels); `acc` is 24 zmm of writable memory, read at the start and written at the end.
    // Every zmm is declared clobbered; the stack is not touched.
    unsafe {
        core::arch::asm!(
            ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
            "vmovups zmm\\i, [{acc} + \\i*64]",
            ".endr",
            "cmp {n}, 16",
            "jb 4f",
            "3:",
            ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            f32_channel_step_6x2!(),
            ".endr",
            "add {r0}, 64",
            "add {r3}, 64",
            "add {b}, 2048",
            "add {b2}, 2048",
            "sub {n}, 16",
            "cmp {n}, 16",
            "jae 3b",
            "4:",
            "test {n}, {n}",
            "jz 5f",
            "2:",
            ".irp i, 0",
            f32_channel_step_6x2!(),
            ".endr",
            "add {r0}, 4",
            "add {r3}, 4",
            "add {b}, 128",
            "add {b2}, 128",
            "dec {n}",
            "jnz 2b",
            "5:",
            ".irp i, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
            "vmovups [{acc} + \\i*64], zmm\\i",
            ".endr",
            acc = in(reg) acc.as_mut_ptr(),
            b = inout(reg) bp => _,
            b2 = inout(reg) bp2 => _,
            r0 = inout(reg) a0 => _,
            r3 = inout(reg) a0.wrapping_byte_add(3 * stride) => _,
            s = in(reg) stride,
            n = inout(reg) kc => _,
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

/// The accumulators of pixels `p0..p0+M`, outputs `n0..n0+nv` at channel `k0`: the bias when
/// `first`, else (`K > KC`) the f32 partial sums stored in `y`.
///
/// # Safety
/// As [`tile`].
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn init_acc<Y: Elem, const M: usize>(
    y: &[Y],
    n: usize,
    p0: usize,
    n0: usize,
    nv: usize,
    first: bool,
    bias32: &[f32; NR],
) -> [[__m512; 2]; MR] {
    // SAFETY: rows p0..p0+M, columns n0..n0+nv of y (per the contract); bias32 has 32 values.
    unsafe {
        let zero = _mm512_setzero_ps();
        let mut acc = [[zero; 2]; MR];
        for (m, a) in acc.iter_mut().enumerate().take(M) {
            *a = if first {
                [
                    _mm512_loadu_ps(bias32.as_ptr()),
                    _mm512_loadu_ps(bias32.as_ptr().add(16)),
                ]
            } else {
                // K > KC: continue the chain from the f32 partial sums stored in y.
                let yr = y.as_ptr().add((p0 + m) * n + n0) as *const f32;
                let mut t = [0.0f32; NR];
                core::ptr::copy_nonoverlapping(yr, t.as_mut_ptr(), nv);
                [
                    _mm512_loadu_ps(t.as_ptr()),
                    _mm512_loadu_ps(t.as_ptr().add(16)),
                ]
            };
        }
        acc
    }
}

/// The rows of pixels `p0..p0+M` from channel `k0` as f32 (`x` itself, or converted into
/// `abuf` when `X` is f16), and the bytes between them.
///
/// # Safety
/// As [`tile`].
#[cfg(ldp_avx512)]
#[inline(always)]
unsafe fn rows_of<X: Elem, const M: usize>(
    x: &[X],
    k: usize,
    p0: usize,
    k0: usize,
    kc: usize,
    abuf: *mut f32,
) -> ([*const f32; MR], usize) {
    let mut a = [core::ptr::null::<f32>(); MR];
    // SAFETY: rows p0..p0+M of x, channels k0..k0+kc (per the contract); abuf rows of KC ≥ kc.
    unsafe {
        for (m, am) in a.iter_mut().enumerate().take(M) {
            let row = x.as_ptr().add((p0 + m) * k + k0);
            if X::DTYPE == DType::F32 {
                *am = row as *const f32;
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
                *am = dst;
            }
        }
    }
    let stride = if X::DTYPE == DType::F32 {
        k * 4
    } else {
        KC * 4
    };
    (a, stride)
}

/// Pixels `p0..p0+M` against the packed panel of outputs `n0..n0+nv`, channels `k0..k0+kc`.
///
/// # Safety
/// Shapes as in [`pointwise`]; `p0 + M ≤ P`, `n0 + nv ≤ N`, `k0 + kc ≤ K`; `bp` holds the packed
/// panel; `abuf` holds `MR·KC` f32 (used when `X` is f16); AVX-512F, AVX2, FMA, F16C available.
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
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
    bias32: &[f32; NR],
    act: Option<Activation>,
) {
    // SAFETY (whole body): per the function's contract: rows p0..p0+M of x/y, columns
    // n0..n0+nv of y, channels k0..k0+kc.
    unsafe {
        let mut acc = init_acc::<Y, M>(y, n, p0, n0, nv, k0 == 0, bias32);
        let (a, stride) = rows_of::<X, M>(x, k, p0, k0, kc, abuf);
        if M == MR {
            // SAFETY: the M = 12 rows are `stride` bytes apart (rows of x, or of abuf), each
            // with kc ≥ 1 channels from a[0]; the panel holds kc·32 values.
            micro12(a[0], stride, bp, kc, &mut acc);
        } else {
            micro::<M>(&a, bp, kc, &mut acc);
        }
        epilogue::<Y, M>(acc, y, n, p0, n0, nv, k0 + kc == k, act);
    }
}

/// Pixels `p0..p0+6` against two packed panels of 32 outputs each, `n0..n0+32` (`bp`) and
/// `n0+32..n0+64` (`bp2`), channels `k0..k0+kc`: [`micro6x2`], half the broadcasts per FMA of
/// the 12 × 32 tile. Each output gets the same FMAs in the same order as in [`tile`].
///
/// # Safety
/// As [`tile`] with `M = 6`, for both panels (`n0 + 64 ≤ N`).
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn tile6x2<X: Elem, Y: Elem>(
    x: &[X],
    k: usize,
    y: &mut [Y],
    n: usize,
    p0: usize,
    n0: usize,
    k0: usize,
    kc: usize,
    bp: *const f32,
    bp2: *const f32,
    abuf: *mut f32,
    bias: [&[f32; NR]; 2],
    act: Option<Activation>,
) {
    // SAFETY (whole body): per the function's contract.
    unsafe {
        let first = k0 == 0;
        let a0 = init_acc::<Y, 6>(y, n, p0, n0, NR, first, bias[0]);
        let a1 = init_acc::<Y, 6>(y, n, p0, n0 + NR, NR, first, bias[1]);
        let mut acc: [[__m512; 4]; 6] =
            core::array::from_fn(|m| [a0[m][0], a0[m][1], a1[m][0], a1[m][1]]);
        let (a, stride) = rows_of::<X, 6>(x, k, p0, k0, kc, abuf);
        micro6x2(a[0], stride, bp, bp2, kc, &mut acc);
        let (mut a0, mut a1) = (a0, a1);
        for m in 0..6 {
            a0[m] = [acc[m][0], acc[m][1]];
            a1[m] = [acc[m][2], acc[m][3]];
        }
        let last = k0 + kc == k;
        epilogue::<Y, 6>(a0, y, n, p0, n0, NR, last, act);
        epilogue::<Y, 6>(a1, y, n, p0, n0 + NR, NR, last, act);
    }
}

/// Stores the finished accumulators of pixels `p0..p0+M`, outputs `n0..n0+nv`: the activation
/// when `last` (GELU on the registers), f16 narrowing, masked stores of the `nv` outputs.
///
/// # Safety
/// As [`tile`].
#[cfg(ldp_avx512)]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn epilogue<Y: Elem, const M: usize>(
    mut acc: [[__m512; 2]; MR],
    y: &mut [Y],
    n: usize,
    p0: usize,
    n0: usize,
    nv: usize,
    last: bool,
    act: Option<Activation>,
) {
    // SAFETY (whole body): rows p0..p0+M, columns n0..n0+nv of y (per the contract).
    unsafe {
        // GELU on the registers, 16 lanes and four vectors at a time (the same bits as the
        // 8-lane form the other activations' path and the AVX2 kernel use).
        let gelu = last && matches!(act, Some(Activation::Gelu));
        if gelu {
            let mut m = 0;
            while m + 2 <= M {
                let [a0, a1, b0, b1] =
                    gelu_n16::<4>([acc[m][0], acc[m][1], acc[m + 1][0], acc[m + 1][1]]);
                acc[m] = [a0, a1];
                acc[m + 1] = [b0, b1];
                m += 2;
            }
            if m < M {
                let [a0, a1] = gelu_n16::<2>(acc[m]);
                acc[m] = [a0, a1];
            }
        }
        // What is left to apply per row.
        let act = if last && !gelu { act } else { None };
        // Lanes of the two halves that hold real outputs (`nv ≤ 32`).
        let bits = if nv >= NR { u32::MAX } else { (1u32 << nv) - 1 };
        let (mlo, mhi) = (bits as __mmask16, (bits >> 16) as __mmask16);
        for m in 0..M {
            let yr = y.as_mut_ptr().add((p0 + m) * n + n0);
            // Masked stores write only the `nv` valid outputs: masked-off lanes are never
            // accessed, and the second half's address is formed with `wrapping_add` because it
            // may lie past the end of `y` when `nv ≤ 16` (its mask is then empty).
            let (ylo, yhi) = (yr as *mut f32, (yr as *mut f32).wrapping_add(16));
            if Y::DTYPE == DType::F32 && act.is_none() {
                _mm512_mask_storeu_ps(ylo, mlo, acc[m][0]);
                _mm512_mask_storeu_ps(yhi, mhi, acc[m][1]);
                continue;
            }
            let mut t = [[0.0f32; 16]; 2];
            _mm512_storeu_ps(t[0].as_mut_ptr(), acc[m][0]);
            _mm512_storeu_ps(t[1].as_mut_ptr(), acc[m][1]);
            activate(act, &mut t[0]);
            activate(act, &mut t[1]);
            let t: &[f32; NR] = &*(t.as_ptr() as *const [f32; NR]);
            if Y::DTYPE == DType::F16 {
                let mut hs = [f16::ZERO; NR];
                for q in 0..NR / 8 {
                    let h = _mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(_mm256_loadu_ps(
                        t.as_ptr().add(8 * q),
                    ));
                    _mm_storeu_si128((hs.as_mut_ptr() as *mut __m128i).add(q), h);
                }
                core::ptr::copy_nonoverlapping(hs.as_ptr(), yr as *mut f16, nv);
            } else {
                _mm512_mask_storeu_ps(ylo, mlo, _mm512_loadu_ps(t.as_ptr()));
                _mm512_mask_storeu_ps(yhi, mhi, _mm512_loadu_ps(t.as_ptr().add(16)));
            }
        }
    }
}

/// The packed GEMM, on this thread's workspace (`kernels::workspace`).
///
/// # Safety
/// Shapes validated by `check_shapes`; AVX-512 F/BW/VL/DQ, AVX2, FMA and F16C available; `Y` is
/// f32 when `k > KC`.
#[cfg(ldp_avx512)]
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

/// Floats of [`gemm`]'s workspace: two panels of `KC·NR`, then the `MR·KC` pixel rows.
#[cfg(ldp_avx512)]
const WS_FLOATS: usize = 2 * KC * NR + MR * KC;

/// [`gemm`] on its workspace.
///
/// # Safety
/// As [`gemm`]; `ws.len() ≥ WS_FLOATS`.
#[cfg(ldp_avx512)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")]
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
    // The two panels and the pixel rows: disjoint thirds of `ws` (WS_FLOATS long).
    let (panels, rows) = ws.split_at_mut(2 * KC * NR);
    let (panel, panel2) = panels.split_at_mut(KC * NR);
    let (bp, bp2, abuf) = (panel.as_mut_ptr(), panel2.as_mut_ptr(), rows.as_mut_ptr());
    let pb = pixel_block(pixels, k);
    let bias_of = |n0: usize, nv: usize| {
        let mut b32 = [0.0f32; NR];
        if let Some(b) = bias {
            b32[..nv].copy_from_slice(&b[n0..n0 + nv]);
        }
        b32
    };
    let mut pb0 = 0;
    while pb0 < pixels {
        let pend = pixels.min(pb0 + pb);
        let mut n0 = 0;
        while n0 < n {
            // Two whole panels at a time while there are 64 outputs left and 6 pixels.
            let two = n - n0 >= 2 * NR && pend - pb0 >= 6;
            let nv = NR.min(n - n0);
            let bias32 = bias_of(n0, nv);
            let bias2 = if two { bias_of(n0 + NR, NR) } else { bias32 };
            let mut k0 = 0;
            while k0 < k {
                let kc = KC.min(k - k0);
                // SAFETY: rows n0..n0+nv (n0..n0+64 when `two`) and channels k0..k0+kc lie
                // inside w; each panel holds KC·32 ≥ kc·32 values and is fully written before
                // it is read.
                unsafe {
                    pack_panel(w, k, n0, nv, k0, kc, bp);
                    if two {
                        pack_panel(w, k, n0 + NR, NR, k0, kc, bp2);
                    }
                }
                let mut p0 = pb0;
                while p0 < pend {
                    let left = pend - p0;
                    if two && left >= 6 {
                        // SAFETY: p0 + 6 ≤ pend ≤ pixels, n0 + 64 ≤ n, k0 + kc ≤ k; both
                        // panels packed above; abuf holds MR·KC floats.
                        unsafe {
                            tile6x2::<X, Y>(
                                x,
                                k,
                                y,
                                n,
                                p0,
                                n0,
                                k0,
                                kc,
                                bp,
                                bp2,
                                abuf,
                                [&bias32, &bias2],
                                act,
                            )
                        };
                        p0 += 6;
                        continue;
                    }
                    let panels: &[(usize, usize, *const f32, &[f32; NR])] = if two {
                        &[(n0, NR, bp, &bias32), (n0 + NR, NR, bp2, &bias2)]
                    } else {
                        &[(n0, nv, bp, &bias32)]
                    };
                    let mut m = 1;
                    for &(n0, nv, bp, bias32) in panels {
                        // SAFETY: p0 + m ≤ pend ≤ pixels, n0 + nv ≤ n, k0 + kc ≤ k; bp packed
                        // above; abuf holds MR·KC floats; features checked by the caller.
                        m = unsafe {
                            if left >= 12 {
                                tile::<X, Y, 12>(
                                    x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias32, act,
                                );
                                12
                            } else if left >= 8 {
                                tile::<X, Y, 8>(
                                    x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias32, act,
                                );
                                8
                            } else if left >= 4 {
                                tile::<X, Y, 4>(
                                    x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias32, act,
                                );
                                4
                            } else if left >= 2 {
                                tile::<X, Y, 2>(
                                    x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias32, act,
                                );
                                2
                            } else {
                                tile::<X, Y, 1>(
                                    x, k, y, n, p0, n0, nv, k0, kc, bp, abuf, bias32, act,
                                );
                                1
                            }
                        };
                    }
                    p0 += m;
                }
                k0 += kc;
            }
            n0 += if two { 2 * NR } else { nv };
        }
        pb0 = pend;
    }
}

/// Bytes of `x` a pixel block may hold: it stays in L2 while every panel of outputs walks it.
const XB_BYTES: usize = 256 * 1024;
/// Fewest pixels per block: the weights are packed once per block, which costs about 8 MACs'
/// time per packed value: under 2 % of the block's MACs from 512 pixels on.
const PB_MIN: usize = 512;

/// Pixels per block for `pixels` pixels of `k` channels (`k ≥ 1`): all of them when they fit
/// [`XB_BYTES`] or when a block of [`PB_MIN`] pixels would not (wide inputs, whose rows stream
/// anyway); else equal blocks, a multiple of the tile height, that fit.
fn pixel_block(pixels: usize, k: usize) -> usize {
    let fit = XB_BYTES / k.saturating_mul(4).max(1);
    if fit >= pixels || fit < PB_MIN {
        return pixels;
    }
    let blocks = pixels.div_ceil(fit);
    pixels.div_ceil(blocks).div_ceil(MR) * MR
}
