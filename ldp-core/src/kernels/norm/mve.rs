//! int8 LayerNorm of 16-bit inputs (`kernels::norm::int8::layer_norm_i16`) with Helium (MVE)
//! for the Cortex-M55 (and M85); the same compile-time and run-time selection as
//! `kernels::pointwise::mve` (cfg `ldp_arm_mve`, [`crate::kernels::cpu::mve`]). The method and
//! why it is exact: see [`layer_norm_i16`].

use core::arch::asm;

use crate::kernels::norm::int8::{check_norm16, ln_eps, ln_out, ln_out_lerp, ln_stats_fast};
use crate::quant::kernels::NormQ;

/// Largest channel count taken (the staged per-channel tables).
const LN_MAXC: usize = 256;

/// The per-call staging of [`layer_norm_i16`] (16-byte aligned for `VLDRW`).
#[repr(C, align(16))]
struct Stage {
    /// `γ·2¹⁶` per channel.
    g: [i32; LN_MAXC],
    /// `β + z'·2ⁿ` per channel (`z'` the output zero point, `·256` with the table).
    b: [i32; LN_MAXC],
    /// With the interpolated table, indexed by `j & 255` (`j = u >> 8` in `-128..=127`):
    /// `t[j+128] − j·d`.
    ta: [i32; 256],
    /// … and `d·2⁸`, `d = t[min(j+129, 255)] − t[j+128]`.
    td: [i32; 256],
}

/// `(S1, S2) = (Σx, Σx²)` of one pixel: `VADDVA.S16` and `VMLALDAVA.S16` (64-bit) over 8
/// channels at a time, the `len % 8` last ones in Rust. Exact: `|S1| ≤ 2¹⁵·len` fits an `i32`
/// for `len ≤ 2¹⁶`, `S2` is an exact 64-bit sum.
#[inline(always)]
fn sums(px: &[i16]) -> (i32, i64) {
    let n8 = px.len() / 8;
    let (mut s1, mut lo, mut hi) = (0i32, 0u32, 0u32);
    // SAFETY: MVE is present (the cfg and `cpu::mve()`, checked by the caller); reads
    // `16·n8 ≤ 2·px.len()` bytes from `px` (VLDRH needs 2-byte alignment, which `&[i16]` has);
    // registers declared (q0 = s0–s3); no stack.
    unsafe {
        asm!(
            ".cpu cortex-m55",
            "wls lr, lr, 3f",
            "2:",
            "vldrh.u16 q0, [r0], #16",
            "vaddva.s16 r2, q0",
            "vmlaldava.s16 r4, r5, q0, q0",
            "le lr, 2b",
            "3:",
            inout("r0") px.as_ptr() => _,
            inout("r2") s1,
            inout("r4") lo,
            inout("r5") hi,
            inout("lr") n8 => _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            options(nostack, readonly),
        );
    }
    let mut s2 = ((hi as u64) << 32 | lo as u64) as i64;
    for &v in &px[8 * n8..] {
        s1 += v as i32;
        s2 += (v as i32 * v as i32) as i64;
    }
    (s1, s2)
}

/// The per-pixel register values of the main loop.
#[derive(Clone, Copy)]
struct Px {
    /// `C·2ᵃ`.
    c_a: i32,
    /// `−S1·2ᵃ` (wrapping).
    s1_a: i32,
    /// `inv − 2³²` (`inv` in `(2³¹, 2³²]`).
    inv: i32,
    /// `−sh`: the rounding shift of pass 1.
    sh: i32,
}

/// The main loop over `n4` groups of 4 channels, in one `asm!` block: pass 1 (`x̂`), the affine
/// (`h = VMULH(x̂, γ·2¹⁶) + β'`, rounding shift by `n`), then `$tail` (the output from `q0`,
/// stored with `VSTRB.32` at r3). Registers: r0 `x`, r1 `γ·2¹⁶`, r2 `β'`, r3 `y`, r4 `−S1·2ᵃ`,
/// r5 `−sh`, r8/r9 the tables, r10 `−n`, q6 `inv − 2³²`, q7 `C·2ᵃ`.
macro_rules! ln_loop {
    ($x:expr, $st:expr, $y:expr, $p:expr, $n:expr, $n4:expr, $t0:expr, $t1:expr, $($tail:literal),+ $(,)?) => {
        asm!(
            ".cpu cortex-m55",
            "vdup.32 q6, r11",
            "vdup.32 q7, r12",
            "wls lr, lr, 3f",
            "2:",
            "vldrh.s32 q0, [r0], #8",
            "vmlas.i32 q0, q7, r4",
            "vmulh.s32 q1, q0, q6",
            "vadd.i32 q0, q0, q1",
            "vrshl.s32 q0, r5",
            "vldrw.u32 q1, [r1], #16",
            "vmulh.s32 q0, q0, q1",
            "vldrw.u32 q1, [r2], #16",
            "vadd.i32 q0, q0, q1",
            "vrshl.s32 q0, r10",
            $($tail,)+
            "le lr, 2b",
            "3:",
            inout("r0") $x => _,
            inout("r1") $st.g.as_ptr() => _,
            inout("r2") $st.b.as_ptr() => _,
            inout("r3") $y => _,
            in("r4") $p.s1_a,
            in("r5") $p.sh,
            in("r8") $t0,
            in("r9") $t1,
            in("r10") -($n),
            in("r11") $p.inv,
            in("r12") $p.c_a,
            inout("lr") $n4 => _,
            out("s0") _, out("s1") _, out("s2") _, out("s3") _,
            out("s4") _, out("s5") _, out("s6") _, out("s7") _,
            out("s8") _, out("s9") _, out("s10") _, out("s11") _,
            out("s12") _, out("s13") _, out("s14") _, out("s15") _,
            out("s24") _, out("s25") _, out("s26") _, out("s27") _,
            out("s28") _, out("s29") _, out("s30") _, out("s31") _,
            options(nostack),
        )
    };
}

/// Integer LayerNorm of `i16` inputs into int8 with Helium, exactly the reference
/// (`layer_norm_i16_reference`, i.e. `ln_out` / `ln_out_lerp` after `ln_stats`), for `c ≤ 256`
/// and an output shift `T` (`q.shift`, or `q.shift − 8` with the table) in `17..=47`; `false`
/// (nothing written) otherwise or when MVE is not allowed, and the DSP kernel runs.
///
/// Per pixel: `S1`, `S2` ([`sums`]), then the reference's statistics in Rust (`ln_stats_fast`:
/// the same exact square root and division, seeded in `f32`; `inv` in `(2³¹, 2³²]`, `k`,
/// `s = 46 − k` in `16..=46`). Then per
/// 4 channels (32-bit lanes):
/// * **Pass 1**, `x̂ = requant64(num·inv, s)`, `num = C·x − S1`: with `a = max(0, 33 − s)` and
///   `sh = max(1, s − 32)`, `m = num·2ᵃ` (one `VMLAS`, wrapping; `m` fits: for `a > 0`, i.e.
///   `k ≥ 14`, `num² ≤ C·D < C·2^(62−2k)` gives `|m| < √C·2¹⁸ ≤ 2²²`), `h = VMULH.S32(m, inv −
///   2³²) + m = ⌊m·inv/2³²⌋` (`inv − 2³²` fits an `i32`; `inv = 2³²` gives `0` and `h = m`,
///   exact too; `|h| < |m|`), then `x̂ = VRSHL(h, −sh) = ⌊(h + 2^(sh−1))/2^sh⌋`, which equals
///   `⌊(num·inv + 2^(s−1))/2^s⌋` because the rounding term is a multiple of the `2^(32−a)`
///   dropped by `VMULH` (nested floors). `|x̂| < 2²⁰` (`num² ≤ (C−1)·D`, `C ≤ 256`).
/// * **Affine**, `requant64(x̂·γ + β·2¹⁶, T) + z'`: since `T ≥ 17` the rounding term and
///   `β·2¹⁶` are multiples of `2¹⁶`, so it is `⌊(⌊x̂·γ/2¹⁶⌋ + β + z'·2ⁿ + 2^(n−1)) / 2ⁿ⌋` with
///   `n = T − 16`: `VMULH.S32(x̂, γ·2¹⁶)`, `VADD` of the staged `β + z'·2ⁿ`, `VRSHL` by `−n`.
///   `|⌊x̂·γ/2¹⁶⌋| ≤ 2¹⁹`; the call is taken only when every `|β + z'·2ⁿ| + 2¹⁹ + 2^(n−1)` is
///   below `2³¹`, so nothing wraps. `z' = z` without, `z·256` with the interpolated table.
/// * **Output**: without the interpolated table `VQSHL #24` (saturate to int8 in the top byte),
///   then `VSHR.S32 #24`, or `VSHR.U32 #24` and a byte gather from the table rotated by 128
///   (`lut[v & 255] = t[v + 128]`). With it (`ln_out_lerp`): `VQSHL #16` gives `u·2¹⁶` with `u`
///   saturated to 16 bits, `VSHR.U32 #24` the index `j & 255` (`j = u >> 8`), two word gathers
///   `a' = t[j+128] − j·d` and `d·2⁸`, and `a' + VRMULH(u·2¹⁶, d·2⁸) = a' + ⌊(d·u + 128)/256⌋
///   = t[j+128] + ⌊(d·f + 128)/256⌋` (`f = u − 256·j`), the reference's interpolation. Above
///   the table's range (`u > 127·256`, which the reference clamps) `j = 127` and `d = 0`, so
///   the result is `t[255]` either way; the positive saturation value `2³¹ − 1` of `VQSHL` has
///   index 127 and `d = 0` too. The store `VSTRB.32` keeps the low byte of each lane.
///
/// The `c % 4` last channels of each pixel use the reference's `ln_out` / `ln_out_lerp`, and
/// so does a whole pixel whose `inv ≤ 2³¹` (only when `D + E` exceeds 62 bits: a huge `eps`).
/// Stack: about 4 KiB.
pub(crate) fn layer_norm_i16(x: &[i16], c: usize, q: &NormQ<'_>, y: &mut [i8]) -> bool {
    if !crate::kernels::cpu::mve() || c > LN_MAXC || check_norm16(x, c, q, y).is_err() {
        return false;
    }
    let table: Option<&[i8; 256]> = match q.lut {
        None => None,
        Some(t) => match <&[i8; 256]>::try_from(t) {
            Ok(t) => Some(t),
            Err(_) => return false,
        },
    };
    let lerp = table.is_some();
    if q.out_zero.unsigned_abs() > 1 << 16 {
        return false;
    }
    let t_out = if lerp { q.shift - 8 } else { q.shift };
    if !(17..=47).contains(&t_out) {
        return false;
    }
    let n = t_out - 16;
    let z = if lerp {
        q.out_zero as i64 * 256
    } else {
        q.out_zero as i64
    };
    let mut st = Stage {
        g: [0; LN_MAXC],
        b: [0; LN_MAXC],
        ta: [0; 256],
        td: [0; 256],
    };
    for i in 0..c {
        let b = q.beta[i] as i64 + (z << n);
        if b.abs() + (1 << 19) + (1 << (n - 1)) >= 1 << 31 {
            return false;
        }
        st.b[i] = b as i32;
        st.g[i] = (q.gamma[i] as i32) << 16;
    }
    if let Some(t) = table {
        for jj in 0..256usize {
            let j = jj as i32 - 128;
            let lo = t[jj] as i32;
            let d = t[(jj + 1).min(255)] as i32 - lo;
            let at = (j & 255) as usize;
            st.ta[at] = lo - j * d;
            st.td[at] = d << 8;
        }
    }
    let (cc, e) = (c as i64, ln_eps(c, q));
    let n4 = c / 4;
    for (px, out) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        let (s1, s2) = sums(px);
        let (s1, inv, k) = ln_stats_fast(cc, e, s1 as i64, s2);
        let s = 46 - k;
        let a = (33 - s).max(0);
        // `inv − 2³²` must fit an `i32`: `inv > 2³¹` unless `D + E` exceeds 62 bits (a huge
        // `eps`); such a pixel takes the reference's formulas.
        let n4 = if inv > 1i64 << 31 { n4 } else { 0 };
        let p = Px {
            c_a: (c as i32) << a,
            s1_a: (s1 as i32).wrapping_neg().wrapping_shl(a as u32),
            inv: (inv - (1i64 << 32)) as i32,
            sh: -(s - 32).max(1),
        };
        if n4 > 0 {
            let (xp, yp) = (px.as_ptr(), out.as_mut_ptr());
            // SAFETY: MVE present (checked above). Reads x[..4·n4] of the pixel (`VLDRH.S32`,
            // 2-byte aligned), `st.g[..4·n4]`, `st.b[..4·n4]` (16-byte aligned, `4·n4 ≤ c ≤
            // 256`), and the 256-entry tables at an index `VSHR.U32 #24` made (0..=255):
            // `ta`/`td` as words, `lut` as bytes; writes `out[..4·n4]` (`VSTRB.32`, 4 bytes per
            // group). Registers declared (q0–q3, q6, q7); no stack.
            unsafe {
                if lerp {
                    ln_loop!(
                        xp,
                        st,
                        yp,
                        p,
                        n,
                        n4,
                        st.ta.as_ptr(),
                        st.td.as_ptr(),
                        "vqshl.s32 q0, q0, #16",
                        "vshr.u32 q1, q0, #24",
                        "vldrw.u32 q2, [r8, q1, uxtw #2]",
                        "vldrw.u32 q3, [r9, q1, uxtw #2]",
                        "vrmulh.s32 q0, q0, q3",
                        "vadd.i32 q0, q0, q2",
                        "vstrb.32 q0, [r3], #4",
                    );
                } else {
                    ln_loop!(
                        xp,
                        st,
                        yp,
                        p,
                        n,
                        n4,
                        st.ta.as_ptr(),
                        st.td.as_ptr(),
                        "vqshl.s32 q0, q0, #24",
                        "vshr.s32 q0, q0, #24",
                        "vstrb.32 q0, [r3], #4",
                    );
                }
            }
        }
        for i in 4 * n4..c {
            let num = cc * px[i] as i64 - s1;
            out[i] = match table {
                Some(t) => ln_out_lerp(num, inv, k, i, q, t),
                None => ln_out(num, inv, k, i, q),
            };
        }
    }
    true
}
