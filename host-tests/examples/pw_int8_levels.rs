//! Times the int8 pointwise kernels at the seed and MobileVLM shapes on every x86 level the CPU
//! has (AMX-INT8, AVX-512 VNNI, AVX2), **interleaved** run by run so that all of them see the
//! same machine load, and prints per shape and level the minimum and median thread CPU time and
//! GMAC/s of the minimum. One thread. For a busy machine, where criterion's wall times vary by 2×.
//!
//! ```sh
//! cargo run --release -p host-tests --example pw_int8_levels -- [runs]
//! ```

use ldp_core::quant::kernels::{self as qk, ConvQ};

fn thread_cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; CLOCK_THREAD_CPUTIME_ID is always supported
    // on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn i8s(n: usize, seed: u64) -> Vec<i8> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 56) as i8
        })
        .collect()
}

#[cfg(target_arch = "x86_64")]
fn main() {
    use ldp_core::kernels::cpu::{self, X86Level};
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    // (name, pixels, c_in, c_out, table)
    let shapes: &[(&str, usize, usize, usize, bool)] = &[
        ("seed pw1 128->128 +GELU, 4096 px", 4096, 128, 128, true),
        ("seed pw3 128->128, 1024 px", 1024, 128, 128, false),
        ("fc1 1024->2048 +GELU, 576 px", 576, 1024, 2048, true),
        ("fc2 2048->2048, 576 px", 576, 2048, 2048, false),
        ("pw 2048->2048, 144 px", 144, 2048, 2048, false),
        // V1's block projections run in chunks (`pointwise_layer_norm`): 64 pixels in block 1
        // (the model output as the 16-bit buffer), all 144 in block 2; a row without room.
        ("pw 2048->2048, 64 px (V1 b1 chunk)", 64, 2048, 2048, false),
        ("pw 2048->2048, 24 px (one V1 row)", 24, 2048, 2048, false),
        ("pw 2048->2048, 12 px (one row)", 12, 2048, 2048, false),
    ];
    let levels: Vec<(X86Level, &str)> = [
        (X86Level::Amx, "amx"),
        (X86Level::Avx512, "vnni"),
        (X86Level::Avx2, "avx2"),
    ]
    .into_iter()
    .filter(|(l, _)| cpu::x86_detected() >= *l)
    .collect();
    println!(
        "detected {:?}; {runs} runs, thread CPU time",
        cpu::x86_detected()
    );
    for &(name, p, ci, co, table) in shapes {
        let x = i8s(p * ci, 4);
        let w = i8s(co * ci, 5);
        let bias: Vec<i16> = (0..co).map(|i| (i % 1000) as i16 * 37 - 1000).collect();
        let mult: Vec<u8> = (0..co).map(|i| 150 + (i % 100) as u8).collect();
        let lut: Vec<i8> = (0..256i32).map(|i| (i - 128).max(-20) as i8).collect();
        let q = ConvQ {
            weight: &w,
            bias: &bias,
            bias_shift: 0,
            mult: &mult,
            shift: 17,
            in_zero: 0,
            out_zero: -3,
            lut: table.then_some(&lut[..]),
        };
        let mut y = vec![0i8; p * co];
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); levels.len()];
        let mut first: Option<Vec<i8>> = None;
        for r in 0..runs + 2 {
            for (i, &(l, _)) in levels.iter().enumerate() {
                cpu::set_x86_level(l);
                let t0 = thread_cpu_seconds();
                qk::pointwise(&x, ci, &q, co, &mut y).expect("pointwise");
                let t = thread_cpu_seconds() - t0;
                if r >= 2 {
                    times[i].push(t * 1e3);
                }
                match &first {
                    None => first = Some(y.clone()),
                    Some(f) => assert_eq!(f, &y, "{name}: levels disagree"),
                }
            }
        }
        let macs = (p * ci * co) as f64;
        let mut line = format!("{name:<36}");
        for (i, &(_, tag)) in levels.iter().enumerate() {
            let v = &mut times[i];
            v.sort_by(|a, b| a.total_cmp(b));
            let (mn, med) = (v[0], v[v.len() / 2]);
            line += &format!(
                " | {tag} min {mn:7.3} ms ({:5.0} GMAC/s) med {med:7.3}",
                macs / mn * 1e-6
            );
        }
        println!("{line}");
    }
    cpu::set_x86_level(X86Level::Amx);
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("x86-64 only");
}
