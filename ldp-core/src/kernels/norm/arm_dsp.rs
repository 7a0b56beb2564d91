//! int8 LayerNorm (int8 and 16-bit inputs) for Cortex-M with the DSP extension.

#[cfg(ldp_arm_dsp)]
use crate::kernels::isa::arm_dsp::dsp_on;
use crate::kernels::isa::arm_dsp::*;
use crate::quant::fixed::sat_i8;

/// Channels of the staged `β·2¹⁶ + rounding` table of [`layer_norm_inplace`] (2 KiB).
const LN_MAXC: usize = 256;

/// Integer LayerNorm (`kernels::layer_norm_inplace`), exactly: per pixel the sums `S1`, `S2`
/// (SMLAD on sign-extended pairs, `i32`: `S2 ≤ 2¹⁴·c` fits for `c ≤ 65536`), then the same
/// `i64` statistics, exact integer square root and division as the reference. Per element the
/// bounds make every intermediate fit without wrapping (so the reference's wrapping operations
/// are plain ones): `|C·q − S1| ≤ 2⁸·c ≤ 2²⁴`; `inv = 2⁶²/R ≤ 2³²` (`R ≥ 2³⁰` because
/// `(D+E)·4^k` has 61–62 bits, or `R ≥ 2³¹` when `D+E` has more), an unsigned 32-bit multiplier
/// except for `inv = 2³²` exactly (that pixel takes the `i64` formula); so `|num·inv| < 2⁵⁶`;
/// `|x̂·2¹⁶| ≤ √((c−1)·D)·2¹⁶/√D < 2²⁴` (Cauchy–Schwarz), so `|x̂·2¹⁶·γ| < 2³⁹`. The two
/// roundings use [`Shr64`]; `β·2¹⁶` plus the output rounding term is staged per channel.
/// Takes `c ≤ 256`.
pub(crate) fn layer_norm_inplace(
    buf: &mut [i8],
    c: usize,
    q: &crate::quant::kernels::NormQ<'_>,
) -> bool {
    use prim::smlad;
    if c > LN_MAXC || crate::kernels::norm::int8::check_norm(buf, c, q).is_err() {
        return false;
    }
    let cc = c as i64;
    let e = ((cc * cc) as u64).saturating_mul(q.eps_q8.max(0) as u64) >> 8;
    let out = Shr64::new(q.shift);
    let gamma = &q.gamma[..c];
    let mut bt = [0i64; LN_MAXC];
    for (t, &b) in bt.iter_mut().zip(&q.beta[..c]) {
        *t = ((b as i64) << 16) + out.round;
    }
    let bt = &bt[..c];
    let lut: Option<&[i8; 256]> = q.lut.and_then(|t| t.try_into().ok());
    for px in buf.chunks_exact_mut(c) {
        let (mut s1, mut s2) = (0i32, 0i32);
        let mut words = px.chunks_exact(4);
        for wv in &mut words {
            let v = u32::from_le_bytes([wv[0] as u8, wv[1] as u8, wv[2] as u8, wv[3] as u8]);
            let (lo, hi) = (sxtb16(v), sxtb16_ror8(v));
            s1 = smlad(lo, 0x0001_0001, smlad(hi, 0x0001_0001, s1));
            s2 = smlad(lo, lo, smlad(hi, hi, s2));
        }
        for &v in words.remainder() {
            s1 += v as i32;
            s2 += v as i32 * v as i32;
        }
        let (s1, s2) = (s1 as i64, s2 as i64);
        let d = (cc * s2 - s1 * s1).max(0) as u64;
        let v = d.saturating_add(e).max(1);
        let bits = 64 - v.leading_zeros() as i32;
        let k = ((62 - bits) / 2).max(0);
        let r = crate::quant::fixed::isqrt_u64(v << (2 * k)).max(1);
        let inv = (1u64 << 62) / r;
        let xh = Shr64::new(46 - k);
        let Ok(inv32) = u32::try_from(inv) else {
            // inv = 2³² (R = 2³⁰): the reference's formula, term by term.
            for ((x, &g), &t) in px.iter_mut().zip(gamma).zip(bt) {
                let num = cc * (*x as i64) - s1;
                let xv = crate::quant::fixed::requant64(num.wrapping_mul(inv as i64), 46 - k);
                let acc = xv.wrapping_mul(g as i64).wrapping_add(t - out.round);
                let o = sat_i8(
                    q.out_zero
                        .wrapping_add(crate::quant::fixed::requant64(acc, q.shift) as i32),
                );
                *x = lut.map_or(o, |t| t[(o as u8 ^ 0x80) as usize]);
            }
            continue;
        };
        let p = LnPixel {
            c: c as i32,
            s1: s1 as i32,
            inv: inv32,
            xh,
            out,
            z: q.out_zero,
        };
        match (xh.hi(), out.hi()) {
            (false, false) => p.run::<false, false>(px, gamma, bt, lut),
            (false, true) => p.run::<false, true>(px, gamma, bt, lut),
            (true, false) => p.run::<true, false>(px, gamma, bt, lut),
            (true, true) => p.run::<true, true>(px, gamma, bt, lut),
        }
    }
    true
}

/// The per-pixel constants of [`layer_norm_inplace`] and [`layer_norm_i16`].
struct LnPixel {
    c: i32,
    s1: i32,
    inv: u32,
    xh: Shr64,
    out: Shr64,
    z: i32,
}

/// Pass 1 of [`LnPixel`] on the target: `x̂·2¹⁶` of every element of `$x` into `$xb` (`i32`).
/// `$load` reads one input into r12 and advances r0 (`LDRSB …, #1` or `LDRSH …, #2`); `$shift`
/// is the split shift of r6:lr into lr ([`Shr64`]: `HI` = `$hi`).
///
/// It computes `num·inv + 2^(sh−1)` as `SMLAL(num, inv − 2³¹)` plus `num·2³¹` (added as
/// `num << 31` to the low word and `num >> 1` to the high word) — `inv − 2³¹` fits an `i32`
/// because `2³⁰ < inv < 2³²` — with `num = S1 − C·q` negated (`MLS`), so the signs flip. `num`
/// must fit an `i32` (the callers' bounds), `num·inv` an `i64`.
#[cfg(ldp_arm_dsp)]
macro_rules! ln_xhat {
    ($p:expr, $x:expr, $xb:expr, $hi:expr, $load:expr, $($shift:expr),+ $(,)?) => {{
        let (p, x, xb): (&LnPixel, _, &mut [i32]) = ($p, $x, $xb);
        let n = x.len().min(xb.len());
        if n > 0 {
            let end = x[..n].as_ptr_range().end;
            let ninv = (1i64 << 31).wrapping_sub(p.inv as i64) as i32;
            let sh = p.xh.s;
            // SAFETY: reads x[..n] and writes xb[..n] (n i32s), r0 and r2 in step, no other
            // memory; r6/r7 saved and restored; every other register declared.
            unsafe {
                core::arch::asm!(
                    dsp_on!(),
                    "push {{r6, r7}}",
                    "2:",
                    $load,
                    "mls r12, r12, r3, r4",
                    "mov lr, r8",
                    "mov r6, r9",
                    "smlal lr, r6, r12, r5",
                    "subs lr, lr, r12, lsl #31",
                    "sbc r6, r6, r12, asr #1",
                    $($shift,)+
                    "str lr, [r2], #4",
                    "cmp r0, r1",
                    "bne 2b",
                    "pop {{r6, r7}}",
                    inout("r0") x.as_ptr() => _,
                    in("r1") end,
                    inout("r2") xb.as_mut_ptr() => _,
                    in("r3") p.c,
                    in("r4") p.s1,
                    in("r5") ninv,
                    in("r8") p.xh.round as u32,
                    in("r9") (p.xh.round >> 32) as u32,
                    in("r10") if $hi { sh.wrapping_sub(32) } else { sh },
                    in("r11") 32u32.wrapping_sub(sh),
                    out("r12") _,
                    out("lr") _,
                )
            }
        }
    }};
}

impl LnPixel {
    /// One pixel in place: [`LnPixel::xhat_i8`] into a stack buffer, then [`LnPixel::affine`].
    fn run<const XH: bool, const OUT: bool>(
        &self,
        px: &mut [i8],
        gamma: &[i16],
        bt: &[i64],
        lut: Option<&[i8; 256]>,
    ) {
        let mut xb = [0i32; LN_MAXC];
        let n = px.len().min(LN_MAXC);
        let xb = &mut xb[..n];
        self.xhat_i8::<XH>(&px[..n], xb);
        self.affine::<OUT>(xb, &mut px[..n], gamma, bt, lut);
    }

    /// Pass 1, int8 inputs: `xb[i] = x̂·2¹⁶` of `x[i]` (`asm!` on the target).
    #[cfg(ldp_arm_dsp)]
    fn xhat_i8<const XH: bool>(&self, x: &[i8], xb: &mut [i32]) {
        if XH {
            ln_xhat!(self, x, xb, XH, "ldrsb r12, [r0], #1", "asr lr, r6, r10");
        } else {
            ln_xhat!(
                self,
                x,
                xb,
                XH,
                "ldrsb r12, [r0], #1",
                "lsr lr, lr, r10",
                "lsl r6, r6, r11",
                "orr lr, lr, r6"
            );
        }
    }

    /// Pass 1, `i16` inputs: `xb[i] = x̂·2¹⁶` of `x[i]` (`asm!` on the target).
    #[cfg(ldp_arm_dsp)]
    fn xhat_i16<const XH: bool>(&self, x: &[i16], xb: &mut [i32]) {
        if XH {
            ln_xhat!(self, x, xb, XH, "ldrsh r12, [r0], #2", "asr lr, r6, r10");
        } else {
            ln_xhat!(
                self,
                x,
                xb,
                XH,
                "ldrsh r12, [r0], #2",
                "lsr lr, lr, r10",
                "lsl r6, r6, r11",
                "orr lr, lr, r6"
            );
        }
    }

    /// Pass 1 in plain Rust (host tests).
    #[cfg(not(ldp_arm_dsp))]
    fn xhat<const XH: bool, T: Copy + Into<i32>>(&self, x: &[T], xb: &mut [i32]) {
        for (b, &v) in xb.iter_mut().zip(x) {
            let num = self.c * v.into() - self.s1;
            *b = self.xh.apply::<XH>(num as i64 * self.inv as i64);
            debug_assert_eq!(
                *b as i64,
                crate::quant::fixed::requant64(num as i64 * self.inv as i64, self.xh.s as i32)
            );
        }
    }
    #[cfg(not(ldp_arm_dsp))]
    fn xhat_i8<const XH: bool>(&self, x: &[i8], xb: &mut [i32]) {
        self.xhat::<XH, i8>(x, xb);
    }
    #[cfg(not(ldp_arm_dsp))]
    fn xhat_i16<const XH: bool>(&self, x: &[i16], xb: &mut [i32]) {
        self.xhat::<XH, i16>(x, xb);
    }

    /// Pass 2: `y[i] = sat(z + (x̂·2¹⁶·γ + bt[i]) >> T)`, then the table (`asm!` on the target;
    /// `bt` holds `β·2¹⁶` plus the rounding term).
    #[cfg(ldp_arm_dsp)]
    fn affine<const OUT: bool>(
        &self,
        xb: &[i32],
        y: &mut [i8],
        gamma: &[i16],
        bt: &[i64],
        lut: Option<&[i8; 256]>,
    ) {
        let n = y.len().min(xb.len()).min(gamma.len()).min(bt.len());
        if n == 0 {
            return;
        }
        let end = y[..n].as_ptr_range().end;
        let lutp = lut.map_or(core::ptr::null(), |t| t[128..].as_ptr());
        let (o_sh, o_up) = (self.out.s, 32u32.wrapping_sub(self.out.s));
        macro_rules! pass2 {
            ($($tail:expr),* $(,)?) => {
                core::arch::asm!(
                    dsp_on!(),
                    "push {{r6, r7}}",
                    "2:",
                    "ldr r11, [r0], #4",
                    "ldrd lr, r6, [r1], #8",
                    "ldrsh r12, [r2], #2",
                    "smlal lr, r6, r11, r12",
                    $($tail,)*
                    "strb lr, [r3], #1",
                    "cmp r3, r4",
                    "bne 2b",
                    "pop {{r6, r7}}",
                    inout("r0") xb.as_ptr() => _,
                    inout("r1") bt.as_ptr() => _,
                    inout("r2") gamma.as_ptr() => _,
                    inout("r3") y.as_mut_ptr() => _,
                    in("r4") end,
                    in("r5") if OUT { o_sh.wrapping_sub(32) } else { o_sh },
                    in("r8") o_up,
                    in("r9") self.z,
                    in("r10") lutp,
                    out("r11") _,
                    out("r12") _,
                    out("lr") _,
                )
            };
        }
        // SAFETY: reads xb[..n], bt[..n] (i64, `LDRD` on 8-byte aligned data), gamma[..n] and
        // the table (if any) at entry 128 + v for v in -128..=127 after `SSAT`; writes y[..n];
        // all pointers in step with r3 up to `end`. r6/r7 saved and restored; every other
        // register declared.
        unsafe {
            match (OUT, lut.is_some()) {
                (true, true) => pass2!(
                    "asr lr, r6, r5",
                    "add lr, lr, r9",
                    "ssat lr, #8, lr",
                    "ldrb lr, [r10, lr]"
                ),
                (true, false) => pass2!("asr lr, r6, r5", "add lr, lr, r9", "ssat lr, #8, lr"),
                (false, true) => pass2!(
                    "lsr lr, lr, r5",
                    "lsl r6, r6, r8",
                    "orr lr, lr, r6",
                    "add lr, lr, r9",
                    "ssat lr, #8, lr",
                    "ldrb lr, [r10, lr]"
                ),
                (false, false) => pass2!(
                    "lsr lr, lr, r5",
                    "lsl r6, r6, r8",
                    "orr lr, lr, r6",
                    "add lr, lr, r9",
                    "ssat lr, #8, lr"
                ),
            }
        }
    }

    /// Pass 2 in plain Rust (host tests).
    #[cfg(not(ldp_arm_dsp))]
    fn affine<const OUT: bool>(
        &self,
        xb: &[i32],
        y: &mut [i8],
        gamma: &[i16],
        bt: &[i64],
        lut: Option<&[i8; 256]>,
    ) {
        for (((o, &xh), &g), &t) in y.iter_mut().zip(xb).zip(gamma).zip(bt) {
            let acc = xh as i64 * g as i64 + t;
            let v = sat_i8(self.z.wrapping_add(self.out.shift::<OUT>(acc)));
            *o = match lut {
                Some(t) => t[(v as u8 ^ 0x80) as usize],
                None => v,
            };
        }
    }

    /// Pass 2 with an interpolated table ([`layer_norm_i16`]): `u = (x̂·2¹⁶·γ + bt[i]) >> s'`
    /// (`+ z` when `OUT`; else `z` is folded into `bt`), `SSAT` to 16 bits, then
    /// `y = (a[j] + d[j]·u) >> 8` with `(a, d) = tab[j + 128]`, `j = u >> 8` (`asm!` on the
    /// target).
    #[cfg(ldp_arm_dsp)]
    fn lerp<const OUT: bool>(
        &self,
        xb: &[i32],
        y: &mut [i8],
        gamma: &[i16],
        bt: &[i64],
        tab: &[[i32; 2]; 256],
    ) {
        let n = y.len().min(xb.len()).min(gamma.len()).min(bt.len());
        if n == 0 {
            return;
        }
        let end = y[..n].as_ptr_range().end;
        let (o_sh, o_up) = (self.out.s, 32u32.wrapping_sub(self.out.s));
        macro_rules! pass2 {
            ($($shift:expr),* $(,)?) => {
                core::arch::asm!(
                    dsp_on!(),
                    "push {{r6, r7}}",
                    "2:",
                    "ldr r11, [r0], #4",
                    "ldrd lr, r6, [r1], #8",
                    "ldrsh r12, [r2], #2",
                    "smlal lr, r6, r11, r12",
                    $($shift,)*
                    "ssat lr, #16, lr",
                    "asr r11, lr, #8",
                    "add r11, r10, r11, lsl #3",
                    "ldrd r12, r6, [r11]",
                    "smlabb r12, r6, lr, r12",
                    "asr r12, r12, #8",
                    "strb r12, [r3], #1",
                    "cmp r3, r4",
                    "bne 2b",
                    "pop {{r6, r7}}",
                    inout("r0") xb.as_ptr() => _,
                    inout("r1") bt.as_ptr() => _,
                    inout("r2") gamma.as_ptr() => _,
                    inout("r3") y.as_mut_ptr() => _,
                    in("r4") end,
                    in("r5") if OUT { o_sh.wrapping_sub(32) } else { o_sh },
                    in("r8") o_up,
                    in("r9") self.z,
                    in("r10") tab[128..].as_ptr(),
                    out("r11") _,
                    out("r12") _,
                    out("lr") _,
                )
            };
        }
        // SAFETY: reads xb[..n], bt[..n] (i64, `LDRD` on 8-byte aligned data), gamma[..n] and
        // the table at entry 128 + j for j = u >> 8 in -128..=127 after `SSAT #16` (`LDRD` of
        // an 8-byte entry, 4-byte aligned); writes y[..n]; all pointers in step with r3 up to
        // `end`. r6/r7 saved and restored; every other register declared.
        unsafe {
            if OUT {
                pass2!("asr lr, r6, r5", "add lr, lr, r9");
            } else {
                pass2!("lsr lr, lr, r5", "lsl r6, r6, r8", "orr lr, lr, r6");
            }
        }
    }

    /// The same computation in plain Rust (host tests); the debug assertion checks that the
    /// 16-bit saturation sees the exact `u` (no 32-bit truncation in the split shift).
    #[cfg(not(ldp_arm_dsp))]
    fn lerp<const OUT: bool>(
        &self,
        xb: &[i32],
        y: &mut [i8],
        gamma: &[i16],
        bt: &[i64],
        tab: &[[i32; 2]; 256],
    ) {
        for (((o, &xh), &g), &t) in y.iter_mut().zip(xb).zip(gamma).zip(bt) {
            let acc = xh as i64 * g as i64 + t;
            let u = if OUT {
                self.out.shift::<true>(acc) + self.z
            } else {
                self.out.shift::<false>(acc)
            };
            debug_assert_eq!(
                u as i64,
                (acc >> self.out.s) + if OUT { self.z as i64 } else { 0 }
            );
            let u = u.clamp(-32768, 32767);
            let [a, d] = tab[((u >> 8) + 128) as usize];
            *o = ((a + d * u) >> 8) as i8;
        }
    }
}

/// `S1 = Σx` (`SMLAD` with `1, 1`, `i32`) and `S2 = Σx²` (`SMLALD`, `i64`) of one pixel of
/// `i16` inputs, two at a time.
#[inline(always)]
fn ln16_sums(px: &[i16]) -> (i32, i64) {
    use prim::{smlad, smlald};
    let (mut s1, mut s2) = (0i32, 0i64);
    let mut pairs = px.chunks_exact(2);
    for p in &mut pairs {
        let w = p[0] as u16 as u32 | (p[1] as u16 as u32) << 16;
        s1 = smlad(w, 0x0001_0001, s1);
        s2 = smlald(w, w, s2);
    }
    for &v in pairs.remainder() {
        s1 += v as i32;
        s2 += (v as i32 * v as i32) as i64;
    }
    (s1, s2)
}

/// Integer LayerNorm of `i16` inputs into int8 (`kernels::layer_norm_i16`), exactly, with the
/// structure of [`layer_norm_inplace`]: per pixel `S1` (`SMLAD`, `i32`: `|S1| ≤ 2¹⁵·c`) and
/// `S2` (`SMLALD`, `i64`: `x² ≤ 2³⁰`), the reference's `i64` statistics, exact integer square
/// root and division, then two passes over the pixel (`asm!` on the target).
///
/// Bounds (`c ≤ 256`): `|num| = |C·q − S1| ≤ 2¹⁶·c ≤ 2²⁴` (an `i32`); `2³⁰ ≤ inv ≤ 2³²` as in
/// [`layer_norm_inplace`], so `|num·inv| ≤ 2⁵⁶` (inv = 2³² exactly takes the `i64` formula in
/// Rust for pass 1); `|x̂·2¹⁶| ≤ √(c−1)·2¹⁶·(1 + 2⁻²⁹) + 1 < 2²⁰` (`Σ num² = C·D` and
/// `Σ num = 0`, so `num² ≤ (C−1)·D`), so `|x̂·2¹⁶·γ + β·2¹⁶| < 2³⁶`.
///
/// Without a table: pass 2 is [`layer_norm_inplace`]'s (`ln_out`). With a table
/// (`ln_out_lerp`): `u = z·256 + requant64(acc, T − 8)`, clamped to the table's range, and the
/// two entries around it interpolated. Taken for `T ≥ 16` and `|z| ≤ 2¹⁶` (else `false`, the
/// portable kernel): then `s' = clamp(T − 8, 1, 62) ≥ 8`, and for `s' < 32` `|u| < 2³⁶/2⁸ + 2²⁴
/// < 2³¹`, so the low word of the split shift is `u` itself (`z·2^(s'+8)`, a multiple of
/// `2^s'`, is folded into `β·2¹⁶` and the rounding term); for `s' ≥ 32` the high word's shift
/// is exact anyway and `z·256` is added after it. `SSAT #16` then clamps the low end exactly
/// (`−2¹⁵` is the table's first entry, `f = 0`); the high end needs no clamp because the
/// staged table has `d[255] = 0` (the reference's `t[min(j+1, 255)] − t[j]`), so every `u` in
/// `255·256..2¹⁵` gives `t[255]` as the clamped `u = 255·256 − 2¹⁵` does. With `j = u >> 8`,
/// `f = u mod 256`, `lo = t[j+128]`, `d = t[min(j+129, 255)] − lo`, the reference's
/// `lo + ⌊(d·f + 128)/256⌋ = ⌊(256·lo + 128 + d·(u − 256·j))/256⌋ = ⌊(a + d·u)/256⌋` with the
/// staged `a = 256·lo + 128 − 256·j·d` (`|a| < 2²⁴`, `|d·u| < 2²³`: one `SMLABB`, one shift).
/// Stack: 5 KiB. Takes `c ≤ 256`.
pub(crate) fn layer_norm_i16(
    x: &[i16],
    c: usize,
    q: &crate::quant::kernels::NormQ<'_>,
    y: &mut [i8],
) -> bool {
    if c > LN_MAXC || crate::kernels::norm::int8::check_norm16(x, c, q, y).is_err() {
        return false;
    }
    let lerp: Option<&[i8; 256]> = match q.lut {
        None => None,
        Some(t) => match <&[i8; 256]>::try_from(t) {
            Ok(t) if q.shift >= 16 && (-(1 << 16)..=1 << 16).contains(&q.out_zero) => Some(t),
            _ => return false,
        },
    };
    let cc = c as i64;
    let e = ((cc * cc) as u64).saturating_mul(q.eps_q8.max(0) as u64) >> 8;
    let out = Shr64::new(if lerp.is_some() { q.shift - 8 } else { q.shift });
    // With the table and s' < 32, z·2^(s'+8) (|z·2^(s'+8)| ≤ 2⁵⁵) joins β·2¹⁶ + rounding.
    let fold_z = lerp.is_some() && !out.hi();
    let z_hi = if fold_z {
        (q.out_zero as i64) << (out.s + 8)
    } else {
        0
    };
    let z = match (lerp.is_some(), fold_z) {
        (false, _) => q.out_zero,
        (true, false) => q.out_zero << 8,
        (true, true) => 0,
    };
    let mut bt = [0i64; LN_MAXC];
    for (t, &b) in bt.iter_mut().zip(&q.beta[..c]) {
        *t = ((b as i64) << 16) + out.round + z_hi;
    }
    let bt = &bt[..c];
    let gamma = &q.gamma[..c];
    let mut tab = [[0i32; 2]; 256];
    if let Some(t) = lerp {
        for (j, a) in tab.iter_mut().enumerate() {
            let lo = t[j] as i32;
            let d = t[(j + 1).min(255)] as i32 - lo;
            *a = [256 * lo + 128 - 256 * (j as i32 - 128) * d, d];
        }
    }
    let mut xb = [0i32; LN_MAXC];
    let xb = &mut xb[..c];
    for (px, o) in x.chunks_exact(c).zip(y.chunks_exact_mut(c)) {
        let (s1, s2) = ln16_sums(px);
        let s1 = s1 as i64;
        let d = (cc * s2 - s1 * s1).max(0) as u64;
        let v = d.saturating_add(e).max(1);
        let bits = 64 - v.leading_zeros() as i32;
        let k = ((62 - bits) / 2).max(0);
        let r = crate::quant::fixed::isqrt_u64(v << (2 * k)).max(1);
        let inv = (1u64 << 62) / r;
        let xh = Shr64::new(46 - k);
        let mut p = LnPixel {
            c: c as i32,
            s1: s1 as i32,
            inv: 0,
            xh,
            out,
            z,
        };
        match u32::try_from(inv) {
            Ok(inv32) => {
                p.inv = inv32;
                if xh.hi() {
                    p.xhat_i16::<true>(px, xb);
                } else {
                    p.xhat_i16::<false>(px, xb);
                }
            }
            Err(_) => {
                // inv = 2³² (R = 2³⁰): the reference's formula; x̂·2¹⁶ fits an i32 all the same.
                for (b, &v) in xb.iter_mut().zip(px) {
                    let num = cc * v as i64 - s1;
                    *b = crate::quant::fixed::requant64(num * inv as i64, 46 - k) as i32;
                }
            }
        }
        match (lerp.is_some(), out.hi()) {
            (false, false) => p.affine::<false>(xb, o, gamma, bt, None),
            (false, true) => p.affine::<true>(xb, o, gamma, bt, None),
            (true, false) => p.lerp::<false>(xb, o, gamma, bt, &tab),
            (true, true) => p.lerp::<true>(xb, o, gamma, bt, &tab),
        }
    }
    true
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::kernels::isa::arm_dsp::test_util::*;
    use std::{vec, vec::Vec};

    #[test]
    fn layer_norm_matches_reference() {
        use crate::quant::kernels::{layer_norm_inplace as ln_ref, NormQ};
        let mut r = Rng(0x1a7e_2a0f);
        for case in 0..300 {
            let c = match case {
                0 => 1,
                1 => 128,
                _ => r.range(1, 200) as usize,
            };
            let pixels = r.range(1, 12) as usize;
            let mut buf = r.i8s(c * pixels);
            if case % 4 == 0 {
                // Constant pixels (D = 0), small spreads, extremes.
                let v = r.next() as u8 as i8;
                buf[..c].fill(v);
                if pixels > 1 {
                    for (i, b) in buf[c..2 * c].iter_mut().enumerate() {
                        *b = if i % 2 == 0 { 127 } else { -128 };
                    }
                }
            }
            let gamma: Vec<i16> = (0..c).map(|_| r.next() as i16).collect();
            let beta: Vec<i16> = (0..c).map(|_| r.next() as i16).collect();
            let lut = r.i8s(256);
            let q = NormQ {
                gamma: &gamma,
                beta: &beta,
                shift: if case % 6 == 0 {
                    r.range(-2, 66) as i32
                } else {
                    r.range(14, 40) as i32
                },
                eps_q8: match case % 3 {
                    0 => 0,
                    1 => r.range(0, 1 << 20) as i32,
                    _ => r.next() as i32,
                },
                out_zero: r.range(-128, 127) as i32,
                lut: (case % 2 == 0).then_some(&lut[..]),
            };
            let mut want = buf.clone();
            ln_ref(&mut want, c, &q).unwrap();
            let mut got = buf.clone();
            assert!(layer_norm_inplace(&mut got, c, &q));
            assert_eq!(
                got, want,
                "case {case}: c {c}, shift {}, eps {}",
                q.shift, q.eps_q8
            );
        }
    }

    #[test]
    fn layer_norm_i16_matches_reference() {
        use crate::quant::kernels::{layer_norm_i16_reference as ln_ref, NormQ};
        let mut r = Rng(0x16_1a7e_2a0f);
        let (mut taken, mut lerp_taken, mut hi_lerp) = (0, 0, 0);
        for case in 0..1500 {
            let c = match case {
                0 => 1,
                1 => 128,
                2 => 256,
                3 => 2048,
                _ => {
                    (match r.next() % 10 {
                        0 | 1 => 128,
                        2 => r.range(257, 323),
                        3 => r.range(2040, 2056),
                        _ => r.range(1, 67),
                    }) as usize
                }
            };
            let pixels = r.range(1, 5) as usize;
            let spread = r.range(0, 15) as u32;
            let mut x: Vec<i16> = (0..c * pixels)
                .map(|_| match case % 3 {
                    0 => r.next() as i16,
                    1 => (r.next() as i16) >> spread,
                    _ => r.range(-300, 300) as i16,
                })
                .collect();
            // Edge pixels: constant (D = 0; with E = 0 that is inv = 2³²), alternating extremes,
            // all i16::MIN, one spike (the largest |x̂|, √(c−1)).
            match case % 6 {
                0 => x[..c].fill(r.next() as i16),
                1 => {
                    for (i, v) in x[..c].iter_mut().enumerate() {
                        *v = if i % 2 == 0 { i16::MAX } else { i16::MIN };
                    }
                }
                2 => x[..c].fill(i16::MIN),
                3 => {
                    let v = if r.next() % 2 == 0 {
                        i16::MIN
                    } else {
                        i16::MAX
                    };
                    x[..c].fill(-v.signum());
                    x[r.range(0, c as i64 - 1) as usize] = v;
                }
                _ => {}
            }
            let extreme = case % 7 == 0;
            let gamma: Vec<i16> = (0..c)
                .map(|_| match extreme {
                    true => [i16::MIN, i16::MAX][(r.next() % 2) as usize],
                    false => r.next() as i16,
                })
                .collect();
            let beta: Vec<i16> = (0..c)
                .map(|_| match extreme {
                    true => [i16::MIN, i16::MAX][(r.next() % 2) as usize],
                    false => r.next() as i16,
                })
                .collect();
            let lut = r.i8s(256);
            let q = NormQ {
                gamma: &gamma,
                beta: &beta,
                shift: match case % 5 {
                    0 => r.range(1, 62) as i32,
                    1 => r.range(-2, 72) as i32,
                    2 => r.range(38, 50) as i32,
                    _ => r.range(14, 34) as i32,
                },
                eps_q8: match case % 4 {
                    0 => 0,
                    1 => r.range(0, 1 << 20) as i32,
                    2 => r.range(0, 300) as i32,
                    _ => r.next() as i32,
                },
                out_zero: match case % 11 {
                    0 => r.next() as i32,
                    1 => [-(1 << 16), 1 << 16, (1 << 16) + 1][(r.next() % 3) as usize],
                    _ => r.range(-128, 127) as i32,
                },
                lut: (case % 2 == 0).then_some(&lut[..]),
            };
            let mut want = vec![0x55i8; x.len()];
            ln_ref(&x, c, &q, &mut want).unwrap();
            let mut got = vec![-0x56i8; x.len()];
            let took = layer_norm_i16(&x, c, &q, &mut got);
            let expect =
                c <= LN_MAXC && (q.lut.is_none() || (q.shift >= 16 && q.out_zero.abs() <= 1 << 16));
            assert_eq!(took, expect, "case {case}: c {c}, shift {}", q.shift);
            if took {
                taken += 1;
                if q.lut.is_some() {
                    lerp_taken += 1;
                    hi_lerp += (q.shift - 8 >= 32) as usize;
                }
                assert_eq!(
                    got,
                    want,
                    "case {case}: c {c}, pixels {pixels}, shift {}, eps {}, z {}, lut {}",
                    q.shift,
                    q.eps_q8,
                    q.out_zero,
                    q.lut.is_some()
                );
            }
        }
        assert!(
            taken > 600 && lerp_taken > 250 && hi_lerp > 30,
            "{taken} {lerp_taken} {hi_lerp}"
        );
    }
}
