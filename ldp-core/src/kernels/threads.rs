//! Multithreaded host execution (`std` feature only): the pointwise layers — f32/f16
//! ([`crate::kernels::pointwise::pointwise`]) and int8 ([`crate::quant::kernels::pointwise`]),
//! which carry almost all of the multiply-accumulates — split their pixels into bands, one per
//! thread, run in a [`std::thread::scope`] (the calling thread takes the last band).
//!
//! Every kernel computes each output from its own pixel row alone, in an order that depends
//! only on the channel counts (never on the pixel count or the tile an output lands in), so the
//! result is the same bits for any thread count: int8 is exact, and f32/f16 keep the serial
//! per-output chain of the GEMMs. The band boundaries are multiples of 12 pixels (the AVX-512
//! tile) and layers below [`MIN_MACS`] multiply-accumulates stay on the calling thread (spawning
//! costs tens of microseconds). The int8 LayerNorms (in place and of 16-bit inputs) split their
//! pixels the same way, counting 16 multiply-accumulates per element; each pixel is normalized alone, so
//! their bits do not depend on the split either. Other layers (float LayerNorm — splitting it
//! measured no gain on 2 cores, only a wider spread —, depthwise, SE, ADD) run on the calling
//! thread.
//!
//! The thread count is process-wide: [`set_threads`]; the default is 1.

use core::sync::atomic::{AtomicUsize, Ordering};

/// Threads the pointwise layers may use (0 = not set: 1).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Layers with fewer multiply-accumulates than this run on one thread.
pub const MIN_MACS: usize = 1 << 22;

/// The cost of a LayerNorm per element, in multiply-accumulates, for [`bands`].
const NORM_COST: usize = 16;

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

/// How many bands a LayerNorm of `pixels` pixels of `c` channels splits into ([`bands`] at
/// `NORM_COST` per element).
pub(crate) fn norm_bands(pixels: usize, c: usize) -> usize {
    bands(pixels, c.saturating_mul(NORM_COST))
}

/// Rows per band when `rows` rows are split `n` ways: a multiple of [`ALIGN`] (at least 1).
fn band_rows(rows: usize, n: usize) -> usize {
    (rows.div_ceil(n.max(1)).div_ceil(ALIGN) * ALIGN).max(1)
}

/// Runs `f(x_band, y_band)` on `n` bands of rows (`x_row` elements of `x` and `y_row` of `y` per
/// row), in parallel; the calling thread runs the last band. `x.len() / x_row` rows are split;
/// `y` must hold as many rows of `y_row`. Returns the first error.
pub(crate) fn split_rows<X: Sync, Y: Send, E: Send>(
    x: &[X],
    x_row: usize,
    y: &mut [Y],
    y_row: usize,
    n: usize,
    f: impl Fn(&[X], &mut [Y]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let per = band_rows(x.len() / x_row.max(1), n);
    std::thread::scope(|s| {
        let mut handles = std::vec::Vec::new();
        let mut xs = x.chunks(per * x_row).peekable();
        let mut ys = y.chunks_mut(per * y_row);
        let mut last = Ok(());
        while let (Some(xb), Some(yb)) = (xs.next(), ys.next()) {
            if xs.peek().is_none() {
                last = f(xb, yb);
            } else {
                let f = &f;
                // Default stack (2 MiB): the largest kernel frame is about 400 KiB.
                handles.push(s.spawn(move || f(xb, yb)));
            }
        }
        join(handles, last)
    })
}

/// [`split_rows`] on one buffer, in place: `f(band)` on `n` bands of rows of `row` elements.
pub(crate) fn split_inplace<T: Send, E: Send>(
    buf: &mut [T],
    row: usize,
    n: usize,
    f: impl Fn(&mut [T]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let per = band_rows(buf.len() / row.max(1), n);
    std::thread::scope(|s| {
        let mut handles = std::vec::Vec::new();
        let mut bands = buf.chunks_mut(per * row.max(1)).peekable();
        let mut last = Ok(());
        while let Some(b) = bands.next() {
            if bands.peek().is_none() {
                last = f(b);
            } else {
                let f = &f;
                handles.push(s.spawn(move || f(b)));
            }
        }
        join(handles, last)
    })
}

/// Joins the spawned bands (re-raising a panic), then the calling thread's: the first error.
fn join<E>(
    handles: std::vec::Vec<std::thread::ScopedJoinHandle<'_, Result<(), E>>>,
    last: Result<(), E>,
) -> Result<(), E> {
    let mut out = Ok(());
    for h in handles {
        match h.join() {
            Ok(r) => {
                if out.is_ok() {
                    out = r;
                }
            }
            Err(p) => std::panic::resume_unwind(p),
        }
    }
    out.and(last)
}
