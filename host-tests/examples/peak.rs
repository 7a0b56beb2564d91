//! Clock and per-core multiply-accumulate peaks of this x86-64 host, for the GMAC/s-against-peak
//! figures of `docs/PERFORMANCE.md`:
//!
//! ```sh
//! cargo run --release -p host-tests --example peak
//! ```
//!
//! * clock: a chain of dependent 64-bit `imul` (3-cycle latency on every recent x86-64 core),
//!   best of 2000 runs of 2.4 M cycles (short runs, so that the best one is seldom preempted on
//!   a shared machine);
//! * f32 FMA throughput with 12 independent ymm chains (AVX2) and 24 zmm chains (AVX-512), and
//!   `vpdpbusd` and `vpdpwssd` throughput with 24 zmm chains (AVX-512 VNNI), in MACs per cycle of that clock;
//! * the AVX2 integer ceilings: `vpmaddwd` + `vpaddd` (16 exact int8 MACs, the step of our
//!   AVX2 int8 kernels) and `vpmaddubsw` alone (32 u8×s8 MACs into *saturating* i16 pair sums,
//!   the step of onnxruntime's AVX2 u8s8 GEMM), 12 independent ymm chains each.

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::arch::asm;
    use std::time::Instant;
    fn best(reps: usize, mut f: impl FnMut()) -> f64 {
        let mut b = f64::INFINITY;
        for _ in 0..reps {
            let t = Instant::now();
            f();
            b = b.min(t.elapsed().as_secs_f64());
        }
        b
    }
    let n: u64 = 100_000;
    let t = best(2000, || {
        let mut x = 3u64;
        // SAFETY: register-only arithmetic and a counted loop on the two named registers.
        unsafe {
            asm!("2:", "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}",
                 "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}", "imul {x}, {x}",
                 "dec {k}", "jnz 2b", x = inout(reg) x, k = inout(reg) n => _,
                 options(nomem, nostack));
        }
        std::hint::black_box(x);
    });
    let ghz = (n * 24) as f64 / t / 1e9;
    println!("clock {ghz:.2} GHz (dependent imul chain, best of 2000 runs)");
    let m: u64 = 20_000;
    if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        // SAFETY: AVX2 and FMA detected just above.
        let t = best(2000, || unsafe { fma256(m) });
        let g = (m * 12 * 8) as f64 / t / 1e9;
        println!("AVX2 f32 FMA: {g:.1} GMAC/s = {:.1} MAC/cycle", g / ghz);
    }
    if is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 detected just above.
        let t = best(2000, || unsafe { madd256(m) });
        let g = (m * 12 * 16) as f64 / t / 1e9;
        println!(
            "AVX2 int8 exact (vpmaddwd + vpaddd): {g:.1} GMAC/s = {:.1} MAC/cycle",
            g / ghz
        );
        // SAFETY: AVX2 detected just above.
        let t = best(2000, || unsafe { maddubs256(m) });
        let g = (m * 12 * 32) as f64 / t / 1e9;
        println!(
            "AVX2 u8s8 saturating (vpmaddubsw): {g:.1} GMAC/s = {:.1} MAC/cycle",
            g / ghz
        );
    }
    if is_x86_feature_detected!("avx512f") {
        // SAFETY: AVX-512F detected just above.
        let t = best(2000, || unsafe { fma512(m) });
        let g = (m * 24 * 16) as f64 / t / 1e9;
        println!("AVX-512 f32 FMA: {g:.1} GMAC/s = {:.1} MAC/cycle", g / ghz);
    }
    if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni") {
        // SAFETY: AVX-512F and AVX-512 VNNI detected just above.
        let t = best(2000, || unsafe { vnni512(m) });
        let g = (m * 24 * 64) as f64 / t / 1e9;
        println!(
            "AVX-512 VNNI vpdpbusd: {g:.1} GMAC/s = {:.1} MAC/cycle",
            g / ghz
        );
        // SAFETY: as above.
        let t = best(2000, || unsafe { vnni512_16(m) });
        let g = (m * 24 * 32) as f64 / t / 1e9;
        println!(
            "AVX-512 VNNI vpdpwssd (i16 x i16, the 16-bit-activation step): {g:.1} GMAC/s = {:.1} MAC/cycle",
            g / ghz
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("x86-64 only");
}

/// # Safety
/// AVX2 and FMA available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma256(n: u64) {
    use std::arch::x86_64::*;
    let mut a = [_mm256_set1_ps(0.0); 12];
    let (b, c) = (_mm256_set1_ps(1.000_000_1), _mm256_set1_ps(1e-9));
    for _ in 0..n {
        for v in a.iter_mut() {
            *v = _mm256_fmadd_ps(*v, b, c);
        }
    }
    std::hint::black_box(a);
}

/// # Safety
/// AVX2 available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn madd256(n: u64) {
    use std::arch::x86_64::*;
    let mut a: [__m256i; 12] = core::array::from_fn(|i| _mm256_set1_epi16(i as i16 + 1));
    let (b, c) = (_mm256_set1_epi16(3), _mm256_set1_epi32(-7));
    for _ in 0..n {
        for v in a.iter_mut() {
            *v = _mm256_add_epi32(_mm256_madd_epi16(*v, b), c);
        }
    }
    std::hint::black_box(a);
}

/// # Safety
/// AVX2 available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn maddubs256(n: u64) {
    use std::arch::x86_64::*;
    let mut a: [__m256i; 12] = core::array::from_fn(|i| _mm256_set1_epi8(i as i8 + 1));
    let b = _mm256_set1_epi8(3);
    for _ in 0..n {
        for v in a.iter_mut() {
            *v = _mm256_maddubs_epi16(*v, b);
        }
    }
    std::hint::black_box(a);
}

/// # Safety
/// AVX-512F available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn fma512(n: u64) {
    use std::arch::x86_64::*;
    let mut a = [_mm512_set1_ps(0.0); 24];
    let (b, c) = (_mm512_set1_ps(1.000_000_1), _mm512_set1_ps(1e-9));
    for _ in 0..n {
        for v in a.iter_mut() {
            *v = _mm512_fmadd_ps(*v, b, c);
        }
    }
    std::hint::black_box(a);
}

/// # Safety
/// AVX-512F and AVX-512 VNNI available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn vnni512(n: u64) {
    use std::arch::x86_64::*;
    let mut a = [_mm512_setzero_si512(); 24];
    let (b, c) = (_mm512_set1_epi8(3), _mm512_set1_epi8(-5));
    for _ in 0..n {
        for v in a.iter_mut() {
            *v = _mm512_dpbusd_epi32(*v, b, c);
        }
    }
    std::hint::black_box(a);
}

/// # Safety
/// AVX-512F and AVX-512 VNNI available.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vnni")]
unsafe fn vnni512_16(n: u64) {
    use std::arch::x86_64::*;
    let mut a = [_mm512_setzero_si512(); 24];
    let (b, c) = (_mm512_set1_epi16(3), _mm512_set1_epi16(-5));
    for _ in 0..n {
        for v in a.iter_mut() {
            *v = _mm512_dpwssd_epi32(*v, b, c);
        }
    }
    std::hint::black_box(a);
}
