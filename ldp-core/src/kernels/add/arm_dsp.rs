//! int8 ADD for Cortex-M with the DSP extension (per-operand tables, one 64-bit add and the split
//! shift per element).

#[cfg(ldp_arm_dsp)]
use crate::kernels::isa::arm_dsp::dsp_on;
use crate::kernels::isa::arm_dsp::*;
#[cfg(not(ldp_arm_dsp))]
use crate::quant::fixed::sat_i8;

/// `a = a + b` (TFLite ADD, `AddQ::add` on every pair). Each operand's contribution takes one
/// of 256 values: two tables of `(v − z)·m` (`i64`, wrapping, the rounding term folded into the
/// first — the sum is the same modulo 2⁶⁴ in any order), kept as separate low and high words,
/// then one 64-bit add and the split shift per element. Stack: 4 KiB.
pub(crate) fn add_inplace(a: &mut [i8], b: &[i8], q: &crate::quant::kernels::AddQ) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let sh = Shr64::new(q.shift);
    let mut t = AddTables {
        a_lo: [0; 256],
        a_hi: [0; 256],
        b_lo: [0; 256],
        b_hi: [0; 256],
    };
    for i in 0..256 {
        let x = i as i64 - 128;
        let u = (x - q.a_zero as i64)
            .wrapping_mul(q.a_mult as i64)
            .wrapping_add(sh.round);
        let v = (x - q.b_zero as i64).wrapping_mul(q.b_mult as i64);
        t.a_lo[i] = u as u32;
        t.a_hi[i] = (u >> 32) as u32;
        t.b_lo[i] = v as u32;
        t.b_hi[i] = (v >> 32) as u32;
    }
    if sh.hi() {
        t.run::<true>(a, b, sh, q.out_zero);
    } else {
        t.run::<false>(a, b, sh, q.out_zero);
    }
    true
}

/// The operand tables of [`add_inplace`], indexed by `v + 128`.
struct AddTables {
    a_lo: [u32; 256],
    a_hi: [u32; 256],
    b_lo: [u32; 256],
    b_hi: [u32; 256],
}

/// One element of the ADD loop: operands at r0 (in place) and r1, tables at r3, r4, r5, r8
/// (entry 128), sum in r6:r7; the shift follows.
#[cfg(ldp_arm_dsp)]
macro_rules! add_elem_sum {
    () => {
        concat!(
            "ldrsb r12, [r0]\n",
            "ldrsb lr, [r1], #1\n",
            "ldr r6, [r3, r12, lsl #2]\n",
            "ldr r7, [r4, r12, lsl #2]\n",
            "ldr r12, [r5, lr, lsl #2]\n",
            "ldr lr, [r8, lr, lsl #2]\n",
            "adds r6, r6, r12\n",
            "adc r7, r7, lr\n",
        )
    };
}

impl AddTables {
    /// `run` over the whole slices: `asm!` on the target.
    #[cfg(ldp_arm_dsp)]
    fn run<const HI: bool>(&self, a: &mut [i8], b: &[i8], sh: Shr64, z: i32) {
        let n = a.len().min(b.len());
        if n == 0 {
            return;
        }
        let end = a[..n].as_mut_ptr_range().end;
        macro_rules! add_loop {
            ($($shift:expr),* $(,)?) => {
                core::arch::asm!(
                    dsp_on!(),
                    "push {{r6, r7}}",
                    "2:",
                    add_elem_sum!(),
                    $($shift,)*
                    "add r6, r6, r11",
                    "ssat r6, #8, r6",
                    "strb r6, [r0], #1",
                    "cmp r0, r2",
                    "bne 2b",
                    "pop {{r6, r7}}",
                    inout("r0") a.as_mut_ptr() => _,
                    inout("r1") b.as_ptr() => _,
                    in("r2") end,
                    in("r3") self.a_lo[128..].as_ptr(),
                    in("r4") self.a_hi[128..].as_ptr(),
                    in("r5") self.b_lo[128..].as_ptr(),
                    in("r8") self.b_hi[128..].as_ptr(),
                    in("r9") sh.s.wrapping_sub(if HI { 32 } else { 0 }),
                    in("r10") 32u32.wrapping_sub(sh.s),
                    in("r11") z,
                    out("r12") _,
                    out("lr") _,
                )
            };
        }
        // SAFETY: the loop reads a[i] and b[i] and writes a[i] for i < n (r0 runs from a to
        // a + n, r1 in step), and reads the four tables at entry 128 + v for a signed byte v,
        // inside their 256 entries. r6/r7 are saved and restored; every other register is
        // declared.
        unsafe {
            if HI {
                add_loop!("asr r6, r7, r9");
            } else {
                add_loop!("lsr r6, r6, r9", "lsl r7, r7, r10", "orr r6, r6, r7");
            }
        }
    }

    /// The same computation in plain Rust (host tests).
    #[cfg(not(ldp_arm_dsp))]
    fn run<const HI: bool>(&self, a: &mut [i8], b: &[i8], sh: Shr64, z: i32) {
        for (x, &y) in a.iter_mut().zip(b) {
            let (i, j) = ((*x as u8 ^ 0x80) as usize, (y as u8 ^ 0x80) as usize);
            let lo = self.a_lo[i] as u64 + self.b_lo[j] as u64;
            let hi = self.a_hi[i]
                .wrapping_add(self.b_hi[j])
                .wrapping_add((lo >> 32) as u32);
            let t = ((hi as u64) << 32 | (lo as u32) as u64) as i64;
            *x = sat_i8(z.wrapping_add(sh.shift::<HI>(t)));
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::kernels::isa::arm_dsp::test_util::*;

    #[test]
    fn add_matches_reference() {
        use crate::quant::kernels::{add_inplace as add_ref, AddQ};
        let mut r = Rng(0x0dd_ba11);
        for case in 0..300 {
            let n = r.range(1, 700) as usize;
            let a = r.i8s(n);
            let b = r.i8s(n);
            let q = AddQ {
                a_zero: r.range(-128, 127) as i32,
                a_mult: if case % 9 == 0 {
                    r.next() as i32
                } else {
                    r.range(0, 1 << 30) as i32
                },
                b_zero: r.range(-128, 127) as i32,
                b_mult: r.range(0, 1 << 30) as i32,
                shift: if case % 5 == 0 {
                    r.range(-5, 70) as i32
                } else {
                    r.range(20, 40) as i32
                },
                out_zero: r.range(-128, 127) as i32,
            };
            let mut want = a.clone();
            add_ref(&mut want, &b, &q).unwrap();
            let mut got = a.clone();
            assert!(add_inplace(&mut got, &b, &q));
            assert_eq!(got, want, "case {case}: {q:?}");
        }
    }
}
