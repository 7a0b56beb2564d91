//! Scratch: AMX tdpbssd throughput (no loads) and with tile loads from L1.
fn main() {
    use ldp_core::kernels::cpu;
    assert_eq!(cpu::x86_detected(), cpu::X86Level::Amx);
    #[repr(C, align(64))]
    struct Cfg([u8; 64]);
    let mut c = Cfg([0; 64]);
    c.0[0] = 1;
    for t in 0..8 {
        c.0[16 + 2 * t] = 64;
        c.0[48 + t] = 16;
    }
    let buf = vec![1i8; 64 * 1024];
    unsafe { core::arch::asm!("ldtilecfg [{}]", in(reg) &c) };
    for mode in 0..9 {
        let n: u64 = 1_000_000;
        let t0 = std::time::Instant::now();
        unsafe {
            match mode {
                0 => core::arch::asm!(
                    "2:",
                    "tdpbssd tmm0, tmm4, tmm6",
                    "tdpbssd tmm1, tmm4, tmm7",
                    "tdpbssd tmm2, tmm5, tmm6",
                    "tdpbssd tmm3, tmm5, tmm7",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _),
                1 => core::arch::asm!(
                    "2:",
                    "tileloadd tmm4, [{p} + {s}*1]",
                    "tileloadd tmm6, [{p} + {s}*1 + 1024]",
                    "tileloadd tmm7, [{p} + {s}*1 + 2048]",
                    "tdpbssd tmm0, tmm4, tmm6",
                    "tileloadd tmm5, [{p} + {s}*1 + 3072]",
                    "tdpbssd tmm1, tmm4, tmm7",
                    "tdpbssd tmm2, tmm5, tmm6",
                    "tdpbssd tmm3, tmm5, tmm7",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, p = in(reg) buf.as_ptr(), s = in(reg) 64usize),
                2 => core::arch::asm!(
                    "2:",
                    "tdpbssd tmm0, tmm4, tmm6",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _),
                3 => core::arch::asm!(
                    "2:",
                    "tdpbssd tmm0, tmm4, tmm6",
                    "tdpbssd tmm1, tmm4, tmm7",
                    "tileloadd tmm4, [{p} + {s}*1]",
                    "tdpbssd tmm2, tmm5, tmm6",
                    "tileloadd tmm6, [{p} + {s}*1 + 1024]",
                    "tdpbssd tmm3, tmm5, tmm7",
                    "tileloadd tmm5, [{p} + {s}*1 + 3072]",
                    "tileloadd tmm7, [{p} + {s}*1 + 2048]",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, p = in(reg) buf.as_ptr(), s = in(reg) 64usize),
                5 => core::arch::asm!(
                    "2:",
                    "tileloadd tmm4, [{p} + {s}*1]",
                    "tileloadd tmm5, [{p} + {s}*1 + 1024]",
                    "tileloadd tmm6, [{p} + {s}*1 + 2048]",
                    "tileloadd tmm7, [{p} + {s}*1 + 3072]",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, p = in(reg) buf.as_ptr(), s = in(reg) 64usize),
                7 => core::arch::asm!(
                    "2:",
                    "tileloaddt1 tmm4, [{p} + {s}*1]",
                    "tileloaddt1 tmm5, [{p} + {s}*1 + 1024]",
                    "tileloaddt1 tmm6, [{p} + {s}*1 + 2048]",
                    "tileloaddt1 tmm7, [{p} + {s}*1 + 3072]",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, p = in(reg) buf.as_ptr(), s = in(reg) 64usize),
                8 => core::arch::asm!(
                    "2:",
                    "tilestored [{p} + {s}*1], tmm0",
                    "tilestored [{p} + {s}*1 + 1024], tmm1",
                    "tilestored [{p} + {s}*1 + 2048], tmm2",
                    "tilestored [{p} + {s}*1 + 3072], tmm3",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, p = in(reg) buf.as_ptr(), s = in(reg) 64usize),
                6 => core::arch::asm!(
                    "2:",
                    "tileloadd tmm4, [{p} + {s}*1]",
                    "tileloadd tmm5, [{p} + {s}*1 + 1024]",
                    "tileloadd tmm6, [{p} + {s}*1 + 2048]",
                    "tileloadd tmm7, [{p} + {s}*1 + 3072]",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, p = in(reg) buf.as_ptr(), s = in(reg) 128usize),
                _ => core::arch::asm!(
                    "2:",
                    "tdpbssd tmm0, tmm4, tmm6",
                    "tileloadd tmm6, [{p} + {s}*1 + 1024]",
                    "tdpbssd tmm1, tmm4, tmm7",
                    "tileloadd tmm7, [{p} + {s}*1 + 2048]",
                    "tileloadd tmm4, [{p} + {s}*1]",
                    "tdpbssd tmm2, tmm5, tmm6",
                    "tdpbssd tmm3, tmm5, tmm7",
                    "tileloadd tmm5, [{p} + {s}*1 + 3072]",
                    "dec {n}", "jnz 2b", n = inout(reg) n => _, p = in(reg) buf.as_ptr(), s = in(reg) 64usize),
            }
        }
        let dt = t0.elapsed().as_secs_f64();
        let ops = if mode == 2 { n } else { 4 * n } as f64;
        println!("mode {mode}: {:.1} ns per tdpbssd, {:.0} GMAC/s", dt / ops * 1e9, ops * 16384.0 / dt * 1e-9);
    }
    unsafe { core::arch::asm!("tilerelease") };
}
