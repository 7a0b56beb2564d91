//! Multithreaded host execution (`std` feature only): the pointwise layers — f32/f16
//! ([`crate::kernels::pointwise::pointwise`]) and int8 ([`crate::quant::kernels::pointwise`]),
//! which carry almost all of the multiply-accumulates — split their pixels into bands, one per
//! thread: the calling thread takes the last band, a small pool of persistent workers the
//! others. A worker spins for 2 ms after its band before it parks, so the next layer finds it
//! awake (threads created per layer, as before, gave no speed-up at all on a 2-vCPU VM, the
//! bands running one after the other). While one thread of a program runs
//! bands, another that wants the pool gets threads of its own ([`std::thread::scope`]).
//!
//! Every kernel computes each output from its own pixel row alone, in an order that depends
//! only on the channel counts (never on the pixel count or the tile an output lands in), so the
//! result is the same bits for any thread count: int8 is exact, and f32/f16 keep the serial
//! per-output chain of the GEMMs. The band boundaries are multiples of 12 pixels (the AVX-512
//! tile) and layers below [`MIN_MACS`] multiply-accumulates stay on the calling thread (handing
//! a band over costs microseconds; other kernels count their work in the GEMMs' units:
//! `NORM_COST`, `DEPTHWISE_COST`, `ELEM_COST`).
//!
//! What else splits, each output computed alone as on one thread:
//! * the LayerNorms (float, int8 in place and of 16-bit inputs): bands of pixels;
//! * the depthwise convs (f32/f16 and int8 on x86-64, the 16-bit one everywhere): bands of
//!   output rows, each reading the shared input (`split_inplace_at`, `row_bands`); the int8
//!   depthwise fused row by row with its LayerNorm too, each band with its own 16-bit row;
//! * squeeze-excitation: the gate's two FCs in bands of outputs (float, int8), the gate
//!   multiplication in bands of pixels (int8, 16-bit);
//! * elementwise kernels: the int8 and 16-bit ADD, the 16-bit GELU, the int8 and 16-bit
//!   input quantization (of channels-last inputs) and output dequantization.
//!
//! What stays on the calling thread: the channel sums of squeeze-excitation (a float sum split by
//! pixels would change its order), the float gate multiplication, the fused
//! quantize-and-transpose of channels-first inputs, resizes and pools.
//!
//! The thread count is process-wide: [`set_threads`]; the default is 1.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Threads the pointwise layers may use (0 = not set: 1).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Layers with fewer multiply-accumulates than this run on one thread.
pub const MIN_MACS: usize = 1 << 22;

/// The cost of a LayerNorm per element, in multiply-accumulates, for [`bands`].
pub(crate) const NORM_COST: usize = 16;

/// The cost of one element of an elementwise kernel (an ADD, a requantization, a gate
/// multiplication), in multiply-accumulates, for [`bands`] (whose threshold counts the GEMMs'
/// multiply-accumulates).
pub(crate) const ELEM_COST: usize = 16;

/// The cost of one output of a depthwise 3×3 conv, in the GEMMs' multiply-accumulates, for
/// [`row_bands`]: nine multiply-accumulates, each about four times a GEMM's (the taps are
/// loaded for every output; measured on Zen 4).
pub(crate) const DEPTHWISE_COST: usize = 36;

/// Pixels per band are a multiple of this.
const ALIGN: usize = 12;

/// Lets the pointwise layers use up to `n` threads (`0` = as many as the OS reports
/// available, [`std::thread::available_parallelism`]). Process-wide; results do not depend on
/// it.
pub fn set_threads(n: usize) {
    let n = if n == 0 { available() } else { n };
    THREADS.store(n, Ordering::Relaxed);
}

/// The thread count set by [`set_threads`] (1 when never set).
pub fn threads() -> usize {
    THREADS.load(Ordering::Relaxed).max(1)
}

/// The number of threads the OS reports available (1 when it cannot tell).
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How many bands of `pixels` rows to use for a layer of `macs_per_pixel` MACs per pixel.
pub(crate) fn bands(pixels: usize, macs_per_pixel: usize) -> usize {
    let t = threads();
    if t <= 1 || pixels.saturating_mul(macs_per_pixel) < MIN_MACS {
        return 1;
    }
    t.min(pixels / ALIGN).max(1)
}

/// How many bands of output rows to use for a layer of `rows` rows of `macs_per_row`
/// multiply-accumulates each (a depthwise conv): as [`bands`], but rows need no alignment, so
/// up to one band per row.
pub(crate) fn row_bands(rows: usize, macs_per_row: usize) -> usize {
    let t = threads();
    if t <= 1 || rows.saturating_mul(macs_per_row) < MIN_MACS {
        return 1;
    }
    t.min(rows).max(1)
}

/// How many bands a LayerNorm of `pixels` pixels of `c` channels splits into ([`bands`] at
/// `NORM_COST` per element).
pub(crate) fn norm_bands(pixels: usize, c: usize) -> usize {
    bands(pixels, c.saturating_mul(NORM_COST))
}

/// Rows per band when `rows` rows are split `n` ways: a multiple of `align` (at least 1).
fn band_rows(rows: usize, n: usize, align: usize) -> usize {
    (rows.div_ceil(n.max(1)).div_ceil(align) * align).max(1)
}

/// Runs `f(x_band, y_band)` on `n` bands of rows (`x_row` elements of `x` and `y_row` of `y` per
/// row), in parallel; the calling thread runs the last band. `x.len() / x_row` rows are split;
/// `y` must hold as many rows of `y_row`. Returns the first error (in band order).
pub(crate) fn split_rows<X: Sync, Y: Send, E: Send>(
    x: &[X],
    x_row: usize,
    y: &mut [Y],
    y_row: usize,
    n: usize,
    f: impl Fn(&[X], &mut [Y]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let per = band_rows(x.len() / x_row.max(1), n, ALIGN);
    let f = &f;
    let jobs = x
        .chunks(per * x_row.max(1))
        .zip(y.chunks_mut(per * y_row.max(1)))
        .map(|(xb, yb)| move || f(xb, yb));
    run_bands(jobs.collect())
}

/// [`split_rows`] on one buffer, in place: `f(band)` on `n` bands of rows of `row` elements.
pub(crate) fn split_inplace<T: Send, E: Send>(
    buf: &mut [T],
    row: usize,
    n: usize,
    f: impl Fn(&mut [T]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let per = band_rows(buf.len() / row.max(1), n, ALIGN);
    let f = &f;
    let jobs = buf.chunks_mut(per * row.max(1)).map(|b| move || f(b));
    run_bands(jobs.collect())
}

/// [`split_inplace`] passing each band's first row too: `f(first_row, band)` (for kernels that
/// compute output rows from a shared input, as the depthwise convs). The rows are output rows
/// of a map, not pixels: the bands need no alignment (`n` from [`row_bands`]).
pub(crate) fn split_inplace_at<T: Send, E: Send>(
    buf: &mut [T],
    row: usize,
    n: usize,
    f: impl Fn(usize, &mut [T]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let per = band_rows(buf.len() / row.max(1), n, 1);
    let f = &f;
    let jobs = buf
        .chunks_mut(per * row.max(1))
        .enumerate()
        .map(|(i, b)| move || f(i * per, b));
    run_bands(jobs.collect())
}

/// The output rows of a depthwise conv's map `s` in bands on the threads, when the map is
/// large enough ([`row_bands`] at `DEPTHWISE_COST` per output): `f(oy0, oy1, band)` fills rows
/// `oy0..oy1` (`band` holds just those rows of `y`); a `false` from it is an error (a band
/// outside the map: cannot happen for a validated `y`). `None`, nothing run, when the map stays
/// on the calling thread.
pub(crate) fn depthwise_bands<T: Send>(
    s: crate::kernels::depthwise::DwShape,
    y: &mut [T],
    f: impl Fn(usize, usize, &mut [T]) -> bool + Sync,
) -> Option<Result<(), crate::Error>> {
    let row = s.wo().saturating_mul(s.c).max(1);
    let n = row_bands(s.ho(), row.saturating_mul(DEPTHWISE_COST));
    if n <= 1 {
        return None;
    }
    Some(split_inplace_at(y, row, n, |oy0, yb| {
        if f(oy0, oy0 + yb.len() / row, yb) {
            Ok(())
        } else {
            Err(crate::Error::InvalidConfig(
                "depthwise: band outside the map",
            ))
        }
    }))
}

/// [`split_inplace_at`] with a scratch chunk of `scratch_len` elements per band, cut from
/// `scratch`: `f(first_row, band, chunk)`. `None` (nothing run) when `scratch` holds fewer
/// chunks than there are bands.
pub(crate) fn split_inplace_at_with<T: Send, S: Send, E: Send>(
    buf: &mut [T],
    row: usize,
    n: usize,
    scratch: &mut [S],
    scratch_len: usize,
    f: impl Fn(usize, &mut [T], &mut [S]) -> Result<(), E> + Sync,
) -> Option<Result<(), E>> {
    let per = band_rows(buf.len() / row.max(1), n, 1);
    let bands = buf.len().div_ceil(per * row.max(1));
    if scratch_len == 0 || scratch.len() / scratch_len < bands {
        return None;
    }
    let f = &f;
    let jobs = buf
        .chunks_mut(per * row.max(1))
        .zip(scratch.chunks_mut(scratch_len))
        .enumerate()
        .map(|(i, (b, s))| move || f(i * per, b, s));
    Some(run_bands(jobs.collect()))
}

/// Runs the bands: all but the last on the pool's workers (see [`pool`]), the last on the
/// calling thread; waits for all of them; returns the first error in band order. When the pool
/// is busy (another thread of the program is running bands, or a band itself splits), the
/// bands run on threads spawned for the call instead ([`std::thread::scope`]).
fn run_bands<E: Send, J: FnOnce() -> Result<(), E> + Send>(
    mut jobs: std::vec::Vec<J>,
) -> Result<(), E> {
    use std::vec::Vec;
    let Some(last) = jobs.pop() else {
        return Ok(());
    };
    if jobs.is_empty() {
        return last();
    }
    let Some(guard) = pool::acquire(jobs.len()) else {
        return std::thread::scope(|s| {
            let handles: Vec<_> = jobs.into_iter().map(|j| s.spawn(j)).collect();
            let last = last();
            let mut out = Ok(());
            for h in handles {
                match h.join() {
                    Ok(r) => out = out.and(r),
                    Err(p) => std::panic::resume_unwind(p),
                }
            }
            out.and(last)
        });
    };
    // Each band writes its result into its own slot.
    let mut results: Vec<Option<Result<(), E>>> = jobs.iter().map(|_| None).collect();
    let boxed: Vec<pool::Job<'_>> = jobs
        .into_iter()
        .zip(results.iter_mut())
        .map(|(j, r)| std::boxed::Box::new(move || *r = Some(j())) as pool::Job<'_>)
        .collect();
    // The calling thread's band runs while the workers run theirs; `run` returns only when
    // every worker has finished (and dropped) its job, and re-raises a worker's panic, so
    // every slot is filled here.
    let last = guard.run(boxed, last);
    let mut out = Ok(());
    for v in results.into_iter().flatten() {
        out = out.and(v);
    }
    out.and(last)
}

/// The persistent workers of [`run_bands`]. Each worker spins for a short while after its job
/// (a layer's band), then parks: consecutive layers find it awake, and no thread is created per
/// layer (creating one costs tens of microseconds; created per layer, two threads measured no
/// faster than one on a 2-vCPU VM).
mod pool {
    use core::sync::atomic::{AtomicBool, Ordering};
    use std::boxed::Box;
    use std::sync::{Arc, Mutex, MutexGuard};
    use std::thread::Thread;
    use std::time::{Duration, Instant};
    use std::vec::Vec;

    /// A band handed to a worker.
    pub(super) type Job<'a> = Box<dyn FnOnce() + Send + 'a>;

    /// How long a worker spins for its next job before parking.
    const SPIN: Duration = Duration::from_millis(2);

    struct Slot {
        /// The job, lifetime erased (see `Guard::run`).
        job: Mutex<Option<Job<'static>>>,
        /// Set with the job, cleared by the worker when it takes it.
        ready: AtomicBool,
        /// Set by the worker when its job has finished and been dropped.
        done: AtomicBool,
        /// Set when the job panicked.
        panicked: AtomicBool,
        thread: Thread,
    }

    /// The workers; the lock is held by the one caller running bands at a time.
    static WORKERS: Mutex<Vec<Arc<Slot>>> = Mutex::new(Vec::new());

    /// Exclusive use of at least `n` workers (spawned on first use), or `None` when another
    /// caller holds them or a worker cannot be spawned.
    pub(super) fn acquire(n: usize) -> Option<Guard> {
        let mut w = WORKERS.try_lock().ok()?;
        while w.len() < n {
            let (tx, rx) = std::sync::mpsc::channel::<Arc<Slot>>();
            let spawned = std::thread::Builder::new()
                .name(std::format!("ldp-worker-{}", w.len()))
                .spawn(move || {
                    let slot = Arc::new(Slot {
                        job: Mutex::new(None),
                        ready: AtomicBool::new(false),
                        done: AtomicBool::new(true),
                        panicked: AtomicBool::new(false),
                        thread: std::thread::current(),
                    });
                    if tx.send(slot.clone()).is_ok() {
                        worker(&slot);
                    }
                });
            spawned.ok()?;
            w.push(rx.recv().ok()?);
        }
        Some(Guard { workers: w })
    }

    fn worker(slot: &Slot) {
        loop {
            let start = Instant::now();
            let mut k = 0u32;
            while !slot.ready.load(Ordering::Acquire) {
                k = k.wrapping_add(1);
                if k % 64 != 0 {
                    core::hint::spin_loop();
                } else if start.elapsed() < SPIN {
                    // Other threads of the program (a reader, say) get this core if they need it.
                    std::thread::yield_now();
                } else {
                    // A wake-up (`unpark`) given before this point is kept, so none is lost.
                    std::thread::park();
                }
            }
            slot.ready.store(false, Ordering::Relaxed);
            let job = slot.job.lock().ok().and_then(|mut g| g.take());
            if let Some(job) = job {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                slot.panicked.store(r.is_err(), Ordering::Relaxed);
            }
            slot.done.store(true, Ordering::Release);
        }
    }

    pub(super) struct Guard {
        workers: MutexGuard<'static, Vec<Arc<Slot>>>,
    }

    impl Guard {
        /// Hands `jobs[i]` to worker `i`, runs `last` here, and returns its result once every
        /// worker is done. Re-raises a panic of `last` or of a worker's job, after all are done.
        pub(super) fn run<'a, R>(&self, jobs: Vec<Job<'a>>, last: impl FnOnce() -> R) -> R {
            for (slot, job) in self.workers.iter().zip(jobs) {
                // SAFETY: only the lifetime is changed. The job borrows data of the caller's
                // frame for 'a; this function does not return or unwind before every worker it
                // handed a job has set `done`, which a worker does only after the job has run
                // (or panicked, caught) and been dropped. So the job never outlives 'a.
                let job: Job<'static> =
                    unsafe { core::mem::transmute::<Job<'a>, Job<'static>>(job) };
                slot.done.store(false, Ordering::Relaxed);
                if let Ok(mut g) = slot.job.lock() {
                    *g = Some(job);
                }
                slot.ready.store(true, Ordering::Release);
                slot.thread.unpark();
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(last));
            let mut k = 0u32;
            let mut worker_panicked = false;
            for slot in self.workers.iter() {
                while !slot.done.load(Ordering::Acquire) {
                    k = k.wrapping_add(1);
                    if k % 1024 == 0 {
                        std::thread::yield_now();
                    } else {
                        core::hint::spin_loop();
                    }
                }
                worker_panicked |= slot.panicked.swap(false, Ordering::Relaxed);
            }
            match r {
                Err(p) => std::panic::resume_unwind(p),
                Ok(_) if worker_panicked => panic!("a worker band panicked"),
                Ok(v) => v,
            }
        }
    }
}
