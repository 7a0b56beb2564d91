//! What the fast kernels need to pick a path: CPU feature detection (at run time with `std`,
//! else from the compile-time target features) and views of generic element slices as `f32`
//! or `f16`.

use crate::elem::Elem;
use crate::DType;
use half::f16;

/// `true` when AVX2, FMA and F16C can be used (every x86-64 CPU with AVX2 has the other two):
/// detected at run time with the `std` feature (`std` caches the answer), else known at compile
/// time (`-C target-feature=+avx2,+fma,+f16c` or `-C target-cpu=native`).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn x86_avx2_fma() -> bool {
    #[cfg(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    ))]
    {
        true
    }
    #[cfg(not(all(
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )))]
    {
        #[cfg(feature = "std")]
        {
            x86_level() >= X86Level::Avx2
        }
        #[cfg(not(feature = "std"))]
        {
            false
        }
    }
}

/// The x86-64 kernel families, slowest first; [`x86_level`] says which one runs.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum X86Level {
    /// The portable kernels only.
    Portable,
    /// AVX2 + FMA + F16C.
    Avx2,
    /// [`X86Level::Avx2`] plus AVX-VNNI (`vpdpbusd` on ymm, VEX-encoded) for int8 pointwise
    /// ([`x86_avxvnni`]): CPUs with AVX2 and AVX-VNNI but no AVX-512, such as Intel's Alder
    /// Lake and later client cores and the Sierra Forest Xeons. Never detected when `ldp-core`
    /// was built with a Rust older than 1.89 (the intrinsics are stable since then).
    AvxVnni,
    /// AVX-512 F/BW/VL/DQ (f32/f16 pointwise GEMM), with AVX-512 VNNI for int8 pointwise when
    /// the CPU also has it ([`x86_vnni`]); implies everything of [`X86Level::Avx2`].
    Avx512,
    /// [`X86Level::Avx512`] plus AMX-INT8 tiles (`tdpbssd`) for int8 pointwise
    /// ([`x86_amx`]): detected only with the `std` feature on Linux, when the CPU has AMX-TILE,
    /// AMX-INT8, AVX-512 VNNI and VBMI, the OS enables the tile state (`XCR0` bits 17–18) and grants this process
    /// the tile-data permission (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`, asked
    /// once).
    Amx,
}

/// The level detected at run time (0 = not yet), and the level forced by [`set_x86_level`]
/// (0 = none). Values are `X86Level as u8 + 1`.
#[cfg(all(target_arch = "x86_64", feature = "std"))]
static X86_DETECTED: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
#[cfg(all(target_arch = "x86_64", feature = "std"))]
static X86_FORCED: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn x86_level_of(v: u8) -> X86Level {
    match v {
        1 => X86Level::Portable,
        2 => X86Level::Avx2,
        3 => X86Level::AvxVnni,
        4 => X86Level::Avx512,
        _ => X86Level::Amx,
    }
}

/// Asks Linux once for this process's permission to use the AMX tile data
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18)`), after checking that
/// the CPU has AMX-TILE and AMX-INT8 (`CPUID.(7,0):EDX` bits 24, 25) and that the OS enabled
/// the tile state (`OSXSAVE`, `XCR0` bits 17 and 18). `true` when AMX-INT8 may be used; any
/// failure means no AMX. The permission is process-wide (every thread, also later ones).
#[cfg(all(target_arch = "x86_64", feature = "std", target_os = "linux"))]
fn amx_permitted() -> bool {
    static AMX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMX.get_or_init(|| {
        use core::arch::x86_64::__cpuid_count;
        // SAFETY: CPUID exists on every x86-64 CPU (a safe function since Rust 1.87, unsafe in
        // the 1.85 this crate supports).
        #[allow(unused_unsafe)]
        let (max_leaf, l1, l7) = unsafe {
            (
                __cpuid_count(0, 0).eax,
                __cpuid_count(1, 0),
                __cpuid_count(7, 0),
            )
        };
        if max_leaf < 7 {
            return false;
        }
        let osxsave = l1.ecx & (1 << 27) != 0;
        let amx = l7.edx & (1 << 24) != 0 && l7.edx & (1 << 25) != 0;
        if !osxsave || !amx {
            return false;
        }
        let (lo, _hi): (u32, u32);
        // SAFETY: XGETBV with ECX = 0 is valid when CPUID reports OSXSAVE (checked above); it
        // only reads XCR0.
        unsafe {
            core::arch::asm!("xgetbv", in("ecx") 0u32, out("eax") lo, out("edx") _hi,
                             options(nomem, nostack, preserves_flags));
        }
        if lo & (0b11 << 17) != 0b11 << 17 {
            return false;
        }
        let ret: i64;
        // SAFETY: the raw Linux x86-64 system call `arch_prctl` (158) with
        // ARCH_REQ_XCOMP_PERM (0x1023) and XFEATURE_XTILEDATA (18): it only changes this
        // process's permitted extended-state set and returns 0 or a negative errno; `syscall`
        // clobbers rcx and r11 (declared) and does not touch the stack.
        unsafe {
            core::arch::asm!("syscall", inlateout("rax") 158i64 => ret,
                             in("rdi") 0x1023u64, in("rsi") 18u64,
                             lateout("rcx") _, lateout("r11") _, options(nostack));
        }
        ret == 0
    })
}

/// AMX-INT8 usable by this process (Linux only: [`amx_permitted`]).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn amx_ok() -> bool {
    #[cfg(target_os = "linux")]
    {
        amx_permitted()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// The best level this CPU supports (with the `std` feature; else what the compile-time target
/// features give, AVX-512 and AMX only with `std`). Never AVX-512 or AMX when `ldp-core` was
/// built with a Rust older than 1.89 (no AVX-512 kernels then); AMX only on Linux, after the
/// tile-data permission was granted (asked here, once per process).
#[cfg(target_arch = "x86_64")]
pub fn x86_detected() -> X86Level {
    #[cfg(feature = "std")]
    {
        use core::sync::atomic::Ordering;
        let v = X86_DETECTED.load(Ordering::Relaxed);
        if v != 0 {
            return x86_level_of(v);
        }
        // The AVX-512 kernels exist only when built with Rust ≥ 1.89 (`ldp_avx512`, build.rs).
        let l = if cfg!(ldp_avx512)
            && std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512vl")
            && std::is_x86_feature_detected!("avx512dq")
            && std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            if std::is_x86_feature_detected!("avx512vnni")
                && std::is_x86_feature_detected!("avx512vbmi")
                && amx_ok()
            {
                X86Level::Amx
            } else {
                X86Level::Avx512
            }
        } else if std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
        {
            if avx_vnni_present() {
                X86Level::AvxVnni
            } else {
                X86Level::Avx2
            }
        } else {
            X86Level::Portable
        };
        X86_DETECTED.store(l as u8 + 1, Ordering::Relaxed);
        l
    }
    #[cfg(not(feature = "std"))]
    {
        if x86_avx2_fma() {
            X86Level::Avx2
        } else {
            X86Level::Portable
        }
    }
}

/// The level the dispatching kernels use: the detected one ([`x86_detected`]), lowered by
/// [`set_x86_level`] or, when that was never called, by the environment variable `LDP_X86`
/// (`portable`, `avx2`, `avxvnni`, `avx512` — AVX-512 and VNNI but no AMX — or `amx`, read
/// once). Never above what the CPU has.
#[cfg(target_arch = "x86_64")]
pub fn x86_level() -> X86Level {
    #[cfg(feature = "std")]
    {
        use core::sync::atomic::Ordering;
        let det = x86_detected();
        let mut f = X86_FORCED.load(Ordering::Relaxed);
        if f == 0 {
            let env = std::env::var("LDP_X86").unwrap_or_default();
            let l = match env.to_ascii_lowercase().as_str() {
                "portable" => X86Level::Portable,
                "avx2" => X86Level::Avx2,
                "avxvnni" => X86Level::AvxVnni,
                "avx512" => X86Level::Avx512,
                _ => X86Level::Amx,
            };
            f = l as u8 + 1;
            // Only the first reader stores; a concurrent `set_x86_level` wins.
            let _ = X86_FORCED.compare_exchange(0, f, Ordering::Relaxed, Ordering::Relaxed);
            f = X86_FORCED.load(Ordering::Relaxed);
        }
        det.min(x86_level_of(f))
    }
    #[cfg(not(feature = "std"))]
    {
        x86_detected()
    }
}

/// Caps the kernels the dispatchers use at `level` (the CPU's own limit still applies): e.g.
/// `set_x86_level(X86Level::Avx2)` runs the AVX2 kernels on an AVX-512 machine, for
/// comparisons and tests. Process-wide. Without the `std` feature it has no effect (the level
/// is fixed at compile time).
#[cfg(target_arch = "x86_64")]
pub fn set_x86_level(level: X86Level) {
    #[cfg(feature = "std")]
    X86_FORCED.store(level as u8 + 1, core::sync::atomic::Ordering::Relaxed);
    #[cfg(not(feature = "std"))]
    let _ = level;
}

/// `true` when the AVX-512 kernels may run ([`x86_level`] is [`X86Level::Avx512`] or above).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn x86_avx512() -> bool {
    x86_level() >= X86Level::Avx512
}

/// `true` when the AVX-512 f32/f16 GEMM should run rather than the AVX2 one: [`x86_avx512`],
/// and the CPU is not one that splits every 512-bit FMA into two 256-bit halves
/// ([`x86_split_512_fma`]). Both GEMMs compute the same bits; this only picks the faster.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn x86_avx512_float() -> bool {
    x86_avx512() && !x86_split_512_fma()
}

/// `true` on CPUs whose AVX-512 floating-point units are 256 bits wide, so that a 512-bit FMA
/// costs two 256-bit ones and the AVX-512 f32 GEMM gains nothing over the AVX2 one: AMD's Zen 4
/// (`AuthenticAMD`, family 19h; Zen 5, family 1Ah, has full-width units). Measured on an EPYC
/// Zen 4: AVX2 and AVX-512 FMA peaks both 16 f32 MAC/cycle, and the AVX2 GEMM 2–20 % faster
/// than the AVX-512 one on every shape of `docs/PERFORMANCE.md`. The integer VNNI kernels are
/// not affected (`vpdpbusd` does 64 MACs per cycle there against 25 for AVX2's exact int8
/// step). Read once from CPUID with the `std` feature; `false` without it.
#[cfg(target_arch = "x86_64")]
pub fn x86_split_512_fma() -> bool {
    #[cfg(feature = "std")]
    {
        static SPLIT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *SPLIT.get_or_init(|| {
            use core::arch::x86_64::__cpuid_count;
            // SAFETY: CPUID exists on every x86-64 CPU (a safe function since Rust 1.87,
            // unsafe in the 1.85 this crate supports).
            #[allow(unused_unsafe)]
            let (l0, l1) = unsafe { (__cpuid_count(0, 0), __cpuid_count(1, 0)) };
            // "AuthenticAMD" in EBX, EDX, ECX.
            let amd = l0.ebx == 0x6874_7541 && l0.edx == 0x6974_6e65 && l0.ecx == 0x444d_4163;
            let base = (l1.eax >> 8) & 0xf;
            let family = if base == 0xf {
                base + ((l1.eax >> 20) & 0xff)
            } else {
                base
            };
            amd && family <= 0x19
        })
    }
    #[cfg(not(feature = "std"))]
    {
        false
    }
}

/// `true` when the AMX-INT8 int8 kernels may run: [`x86_level`] is [`X86Level::Amx`] (the CPU
/// has AMX-INT8, the OS gave this process the tile-data permission, nothing capped the level).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn x86_amx() -> bool {
    x86_level() == X86Level::Amx
}

/// `true` when the AVX-512 VBMI kernels may run: [`x86_avx512`] and the CPU has AVX512_VBMI
/// (`vpermi2b`, byte permutes across two registers: the 16-bit LayerNorm's table lookups).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn x86_vbmi() -> bool {
    #[cfg(feature = "std")]
    {
        x86_avx512() && std::is_x86_feature_detected!("avx512vbmi")
    }
    #[cfg(not(feature = "std"))]
    {
        false
    }
}

/// Whether the CPU has AVX-VNNI (and this build its intrinsics: Rust ≥ 1.89, `ldp_avx512`).
#[cfg(all(target_arch = "x86_64", feature = "std"))]
fn avx_vnni_present() -> bool {
    #[cfg(ldp_avx512)]
    {
        std::is_x86_feature_detected!("avxvnni") && std::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(ldp_avx512))]
    {
        false
    }
}

/// `true` when the AVX-VNNI int8 kernel may run: [`x86_level`] is [`X86Level::AvxVnni`] or
/// above and the CPU has AVX-VNNI (an AVX-512 CPU may lack it, e.g. Ice Lake).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn x86_avxvnni() -> bool {
    #[cfg(feature = "std")]
    {
        x86_level() >= X86Level::AvxVnni && avx_vnni_present()
    }
    #[cfg(not(feature = "std"))]
    {
        false
    }
}

/// `true` when the AVX-512 VNNI int8 kernels may run: [`x86_avx512`] and the CPU has
/// AVX512_VNNI (`vpdpbusd`).
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn x86_vnni() -> bool {
    #[cfg(feature = "std")]
    {
        x86_avx512() && std::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(feature = "std"))]
    {
        false
    }
}

/// The slice as `&[f32]` when `A` is `f32`.
#[inline]
pub fn as_f32<A: Elem>(b: &[A]) -> Option<&[f32]> {
    (A::DTYPE == DType::F32).then(|| bytemuck::cast_slice(b))
}

/// The slice as `&mut [f32]` when `A` is `f32`.
#[inline]
pub fn as_f32_mut<A: Elem>(b: &mut [A]) -> Option<&mut [f32]> {
    if A::DTYPE == DType::F32 {
        Some(bytemuck::cast_slice_mut(b))
    } else {
        None
    }
}

/// The slice as `&[f16]` when `A` is `f16`.
#[inline]
pub fn as_f16<A: Elem>(b: &[A]) -> Option<&[f16]> {
    (A::DTYPE == DType::F16).then(|| bytemuck::cast_slice(b))
}

/// The slice as `&mut [f16]` when `A` is `f16`.
#[inline]
pub fn as_f16_mut<A: Elem>(b: &mut [A]) -> Option<&mut [f16]> {
    if A::DTYPE == DType::F16 {
        Some(bytemuck::cast_slice_mut(b))
    } else {
        None
    }
}

/// FP16 arithmetic on AArch64 (FEAT_FP16): 0 = not yet detected, 1 = unavailable or disallowed,
/// 2 = available.
#[cfg(target_arch = "aarch64")]
static FP16: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// `true` when the f16 kernels may use FEAT_FP16 arithmetic (half-precision FMLA, f16 products
/// summed in f16 over 16 channels and then in f32; see
/// `kernels::pointwise::neon`, AArch64 builds only). Known at compile time with `-C target-feature=+fp16`
/// (e.g. `-C target-cpu=cortex-a76`); else detected at run time: with the `std` feature through
/// the OS, on bare metal (`target_os = "none"`, running at EL1 or higher) from `ID_AA64PFR0_EL1`.
/// Always `false` after [`set_fp16_arith`]`(false)` and on other architectures.
#[inline]
pub fn fp16_arith() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        use core::sync::atomic::Ordering;
        match FP16.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let yes = fp16_detect();
                FP16.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
        }
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        false
    }
}

/// Allows (`true`, the default where the CPU has it) or forbids FEAT_FP16 arithmetic in the f16
/// kernels. Forbidding it makes f16 results identical to CPUs without FEAT_FP16 (f16 storage,
/// f32 arithmetic); allowing it on a CPU without the feature changes nothing.
pub fn set_fp16_arith(allow: bool) {
    #[cfg(target_arch = "aarch64")]
    {
        let v = if allow && fp16_detect() { 2 } else { 1 };
        FP16.store(v, core::sync::atomic::Ordering::Relaxed);
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = allow;
    }
}

#[cfg(target_arch = "aarch64")]
fn fp16_detect() -> bool {
    if cfg!(target_feature = "fp16") {
        return true;
    }
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("fp16")
    }
    #[cfg(all(not(feature = "std"), target_os = "none"))]
    {
        let pfr0: u64;
        // SAFETY: reading an ID register has no side effects; bare-metal code runs at EL1 or
        // higher, where ID_AA64PFR0_EL1 is readable.
        unsafe {
            core::arch::asm!("mrs {}, ID_AA64PFR0_EL1", out(reg) pfr0,
                             options(nomem, nostack, preserves_flags));
        }
        // FP (bits 19:16) and AdvSIMD (bits 23:20): 1 = implemented with half precision.
        (pfr0 >> 16) & 0xf == 1 && (pfr0 >> 20) & 0xf == 1
    }
    #[cfg(all(not(feature = "std"), not(target_os = "none")))]
    {
        false
    }
}

/// The int8 dot-product instructions on AArch64 (FEAT_DotProd, `SDOT`): 0 = not yet detected,
/// 1 = unavailable or disallowed, 2 = available.
#[cfg(target_arch = "aarch64")]
static DOTPROD: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// `true` when the int8 kernels may use FEAT_DotProd (`SDOT`, see `kernels::pointwise::neon::sdot`). Known at
/// compile time with `-C target-feature=+dotprod`; else detected at run time: with the `std`
/// feature through the OS, on bare metal (`target_os = "none"`, running at EL1 or higher) from
/// `ID_AA64ISAR0_EL1.DP`. Always `false` after [`set_dotprod`]`(false)` and on other
/// architectures. The int8 results are the same bits either way.
#[inline]
pub fn dotprod() -> bool {
    #[cfg(target_arch = "aarch64")]
    {
        use core::sync::atomic::Ordering;
        match DOTPROD.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => {
                let yes = dotprod_detect();
                DOTPROD.store(if yes { 2 } else { 1 }, Ordering::Relaxed);
                yes
            }
        }
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        false
    }
}

/// Allows (`true`, the default where the CPU has it) or forbids FEAT_DotProd in the int8
/// kernels (forbidding it selects the NEON `SMULL`/`SADALP` kernels, e.g. to compare both on
/// one CPU); allowing it on a CPU without the feature changes nothing.
pub fn set_dotprod(allow: bool) {
    #[cfg(target_arch = "aarch64")]
    {
        let v = if allow && dotprod_detect() { 2 } else { 1 };
        DOTPROD.store(v, core::sync::atomic::Ordering::Relaxed);
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        let _ = allow;
    }
}

#[cfg(target_arch = "aarch64")]
fn dotprod_detect() -> bool {
    if cfg!(target_feature = "dotprod") {
        return true;
    }
    #[cfg(feature = "std")]
    {
        std::arch::is_aarch64_feature_detected!("dotprod")
    }
    #[cfg(all(not(feature = "std"), target_os = "none"))]
    {
        let isar0: u64;
        // SAFETY: reading an ID register has no side effects; bare-metal code runs at EL1 or
        // higher, where ID_AA64ISAR0_EL1 is readable.
        unsafe {
            core::arch::asm!("mrs {}, ID_AA64ISAR0_EL1", out(reg) isar0,
                             options(nomem, nostack, preserves_flags));
        }
        // DP (bits 47:44): 1 = SDOT/UDOT implemented.
        (isar0 >> 44) & 0xf >= 1
    }
    #[cfg(all(not(feature = "std"), not(target_os = "none")))]
    {
        false
    }
}

/// Whether the Helium (MVE) int8 kernels may run (`true` unless [`set_mve`]`(false)`).
static MVE_ALLOWED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(true);

/// `true` when this build has the Helium (MVE) int8 kernels (`quant::ARM_MVE_KERNELS`: the
/// cargo feature `mve` on a thumbv8m.main target) and they are allowed ([`set_mve`]).
#[inline]
pub fn mve() -> bool {
    crate::quant::ARM_MVE_KERNELS && MVE_ALLOWED.load(core::sync::atomic::Ordering::Relaxed)
}

/// Allows (`true`, the default) or forbids the Helium (MVE) int8 kernels: forbidding them
/// selects the DSP kernels (to compare both on one core). The int8 results are the same bits
/// either way.
pub fn set_mve(allow: bool) {
    MVE_ALLOWED.store(allow, core::sync::atomic::Ordering::Relaxed);
}
