//! The large per-call buffers of the host GEMM kernels (packed weight panels, converted pixel
//! rows: up to about 600 KiB for the AVX-512 f32 GEMM), and on hosts the 16-bit rows of the int8
//! fused pointwise → LayerNorm (up to 4 MiB, `with_len`).
//!
//! With `std` they live in two heap buffers per thread (a caller and one nested kernel each
//! get one), kept for the thread's life and reused by every call, so a forward pass needs only
//! tens of KiB of stack and runs on threads with small stacks (a C library's 128 KiB pthreads,
//! an async runtime's workers); without `std` they are stack arrays, as on the devices. Their contents on entry are unspecified (whatever the last
//! call left): every kernel writes what it reads.

use bytemuck::Pod;

/// Runs `f` on a buffer of `N` values of `T`, 64-byte aligned with `std`.
///
/// With `std`: one of this thread's reused buffers (grown on first use), or a new one when both
/// are already in use by callers up the stack. Without: a zeroed stack array of `N` values.
#[cfg(feature = "std")]
pub(crate) fn with<T: Pod, const N: usize, R>(f: impl FnOnce(&mut [T]) -> R) -> R {
    with_len(N, f)
}

/// Runs `f` on a buffer of `n` values of `T` (a length known at run time; `std` only),
/// 64-byte aligned: one of this thread's two reused buffers (grown on first use, so a caller
/// and one nested kernel each keep theirs), or a new one when both are in use further up the
/// stack. Its contents on entry are unspecified.
#[cfg(feature = "std")]
pub(crate) fn with_len<T: Pod, R>(n: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    use core::cell::RefCell;
    std::thread_local! {
        static BUFS: [RefCell<std::vec::Vec<u64>>; 2] =
            const { [RefCell::new(std::vec::Vec::new()), RefCell::new(std::vec::Vec::new())] };
    }
    /// `n` values of `T` at a 64-byte boundary of `v`, grown if it is too short.
    fn carve<T: Pod>(v: &mut std::vec::Vec<u64>, n: usize) -> &mut [T] {
        // T is f32, u32, i16 or i8 here: its size divides 8 and its alignment is at most 8, so
        // the casts from u64 words cannot fail; 8 spare words reach a 64-byte boundary.
        let words = n
            .saturating_mul(core::mem::size_of::<T>())
            .div_ceil(8)
            .saturating_add(8);
        if v.len() < words {
            v.resize(words, 0);
        }
        let skip = v.as_ptr().align_offset(64).min(8);
        let all: &mut [T] = bytemuck::cast_slice_mut(&mut v[skip..]);
        &mut all[..n]
    }
    let mut f = Some(f);
    let reused = BUFS
        .try_with(|bufs| {
            let mut v = bufs.iter().find_map(|b| b.try_borrow_mut().ok())?;
            let f = f.take()?;
            Some(f(carve::<T>(&mut v, n)))
        })
        .ok()
        .flatten();
    match (reused, f) {
        (Some(r), _) => r,
        // Both in use further up the stack (or the thread's locals already destroyed): a
        // buffer of its own.
        (None, Some(f)) => f(carve::<T>(&mut std::vec::Vec::new(), n)),
        // `f` is taken only to be run, and then `reused` is `Some`.
        (None, None) => unreachable!("`f` runs at most once"),
    }
}

/// Runs `f` on a buffer of `N` values of `T`, 64-byte aligned with `std`.
///
/// With `std`: this thread's reused buffer (grown on first use), or a new one when it is
/// already in use by a caller up the stack. Without: a zeroed stack array of `N` values.
#[cfg(not(feature = "std"))]
pub(crate) fn with<T: Pod, const N: usize, R>(f: impl FnOnce(&mut [T]) -> R) -> R {
    f(&mut [T::zeroed(); N])
}

#[cfg(all(test, feature = "std"))]
mod tests {
    #[test]
    fn aligned_sized_reused_and_nested() {
        let (p1, n1) = super::with::<f32, 1000, _>(|b| {
            b.fill(1.0);
            (b.as_ptr() as usize, b.len())
        });
        assert_eq!((p1 % 64, n1), (0, 1000));
        // The same thread's buffer again, grown for a larger request.
        let n2 = super::with::<u32, 3000, _>(|b| {
            assert_eq!(b.as_ptr() as usize % 64, 0);
            // Nested: a separate buffer, not aliasing the outer one; the second slot, reused
            // by the next nested call; a third level gets a buffer of its own.
            let outer = b.as_ptr() as usize..b.as_ptr() as usize + 4 * b.len();
            let (inner, third) = super::with::<i16, 10, _>(|c| {
                c.fill(7);
                let third = super::with_len::<i8, _>(5, |d| {
                    d.fill(1);
                    d.as_ptr() as usize
                });
                (c.as_ptr() as usize, third)
            });
            let again = super::with_len::<i16, _>(10, |c| c.as_ptr() as usize);
            assert!(!outer.contains(&inner) && !outer.contains(&third));
            assert!(third < inner || third >= inner + 20);
            assert_eq!(again, inner);
            b.len()
        });
        assert_eq!(n2, 3000);
    }
}
