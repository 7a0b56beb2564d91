//! Streaming MobileVLM V2: `mlp` per pixel chunk, the adaptive average pool accumulated over the
//! rows of every open bin (bins of neighbouring pooled rows may share an input row), the PEG
//! depthwise conv over a 3-row window of pooled rows. On grids of more than 144 tokens
//! ([`V2Config::pool_first`]) the pool accumulates `GELU(fc1(x))` and `fc2` runs on the pooled
//! rows, as in the whole-tensor pass. Whole rows (no column strips): the pool
//! bins and the PEG halo would make strips recompute the MLP, which holds nearly all the MACs.

use super::kernels::{depthwise_row_float, depthwise_row_i8, DwRows};
use super::params::P;
use super::{check_scratch, v2_open_rows, v2_scratch_bytes, Carver, RowSink, RowSource, CHUNK};
use crate::arch::mobilevlm_v2::{V2Config, V2Weights, POOL};
use crate::blob::int8::v2_meta as V2;
use crate::blob::{DType, Model, ModelConfig};
use crate::elem::Elem;
use crate::error::Error;
use crate::kernels::activation::Activation;
use crate::kernels::depthwise::DwShape;
use crate::kernels::pointwise::pointwise;
use crate::kernels::pool::bin;
use crate::quant::fixed::{div_round, sat_i8};
use crate::quant::kernels::{self as qk, AddQ, ConvQ};

trait V2Ops {
    type X: bytemuck::Pod;
    type A: bytemuck::Pod;
    type Y: bytemuck::Pod;
    /// Pool accumulator: `i32` (int8) or `f32`.
    type Acc: bytemuck::Pod;
    /// `h1 = GELU(fc1(x))` on whole pixels.
    fn fc1(&self, x: &[Self::X], h1: &mut [Self::A]) -> Result<(), Error>;
    /// `m = fc2(h1)` on whole pixels.
    fn fc2(&self, h1: &[Self::A], m: &mut [Self::A]) -> Result<(), Error>;
    /// `acc += v` (one pixel of the pooled tensor: `h1` when pooling first, else `m`).
    fn accumulate(&self, acc: &mut [Self::Acc], v: &[Self::A]);
    /// The pooled values of one pixel from its accumulator and bin size.
    fn pool_finish(&self, acc: &[Self::Acc], count: usize, out: &mut [Self::A]);
    /// `y = DW(pooled) + pooled` for output row `oy`, columns from `ox0`.
    fn peg(
        &self,
        inp: &DwRows<'_, Self::A>,
        oy: usize,
        ox0: usize,
        cur: &[Self::A],
        y: &mut [Self::Y],
    ) -> Result<(), Error>;
}

const INTERNAL: Error = Error::InvalidConfig("stream mobilevlm-v2: internal schedule error");

fn run<O: V2Ops, S: RowSource<O::X>, K: RowSink<O::Y>>(
    cfg: &V2Config,
    ops: &O,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    use core::mem::size_of;
    cfg.validate()?;
    let sizes = (size_of::<O::X>(), size_of::<O::A>(), size_of::<O::Y>());
    check_scratch(scratch, v2_scratch_bytes(cfg, sizes))?;
    let (h, ci, c) = (cfg.h, cfg.c_in, cfg.c_out);
    let pool_first = cfg.pool_first();
    let open = v2_open_rows(h);
    let mut cv = Carver::new(scratch);
    let xb: &mut [O::X] = cv.take(CHUNK * ci)?;
    let h1: &mut [O::A] = cv.take(CHUNK * c)?;
    let mb: &mut [O::A] = cv.take(CHUNK * c)?;
    let acc: &mut [O::Acc] = cv.take(open * POOL * c)?;
    let pr: &mut [O::A] = cv.take(3 * POOL * c)?;
    let yb: &mut [O::Y] = cv.take(CHUNK * c)?;
    acc.fill(<O::Acc as bytemuck::Zeroable>::zeroed());
    let bins: [(usize, usize); POOL] = core::array::from_fn(|i| bin(i, h, POOL));
    let row_len = POOL * c;
    let (mut np, mut no) = (0usize, 0usize);
    for t in 0..h {
        let mut x0 = 0;
        while x0 < h {
            let x1 = (x0 + CHUNK).min(h);
            let npx = x1 - x0;
            src.read(t, x0, &mut xb[..npx * ci])?;
            ops.fc1(&xb[..npx * ci], &mut h1[..npx * c])?;
            let pv: &[O::A] = if pool_first {
                &h1[..npx * c]
            } else {
                ops.fc2(&h1[..npx * c], &mut mb[..npx * c])?;
                &mb[..npx * c]
            };
            // Rows np.. whose bins contain t (contiguous).
            let mut i = np;
            while i < POOL && bins[i].0 <= t {
                if t < bins[i].1 {
                    let a = &mut acc[(i % open) * row_len..(i % open + 1) * row_len];
                    for (p, ix) in (x0..x1).enumerate() {
                        let m = &pv[p * c..(p + 1) * c];
                        for (j, &(s0, e0)) in bins.iter().enumerate() {
                            if s0 <= ix && ix < e0 {
                                ops.accumulate(&mut a[j * c..(j + 1) * c], m);
                            }
                        }
                    }
                }
                i += 1;
            }
            x0 = x1;
        }
        // Finalize the pooled rows whose bins end here, and the outputs they complete.
        while np < POOL && bins[np].1 <= t + 1 {
            let (rs, re) = bins[np];
            let a = &mut acc[(np % open) * row_len..(np % open + 1) * row_len];
            let out = &mut pr[(np % 3) * row_len..(np % 3 + 1) * row_len];
            if pool_first {
                // Pool CHUNK pixels of `h1` into the `h1` buffer, then fc2 into the pooled row.
                let mut j0 = 0;
                while j0 < POOL {
                    let j1 = (j0 + CHUNK).min(POOL);
                    for j in j0..j1 {
                        let count = (re - rs) * (bins[j].1 - bins[j].0);
                        let o = &mut h1[(j - j0) * c..(j - j0 + 1) * c];
                        ops.pool_finish(&a[j * c..(j + 1) * c], count, o);
                    }
                    ops.fc2(&h1[..(j1 - j0) * c], &mut out[j0 * c..j1 * c])?;
                    j0 = j1;
                }
            } else {
                for (j, &(cs, ce)) in bins.iter().enumerate() {
                    let count = (re - rs) * (ce - cs);
                    ops.pool_finish(&a[j * c..(j + 1) * c], count, &mut out[j * c..(j + 1) * c]);
                }
            }
            a.fill(<O::Acc as bytemuck::Zeroable>::zeroed());
            np += 1;
            while no < POOL && np >= (no + 2).min(POOL) {
                let oy = no;
                let inp = DwRows {
                    rows: [
                        oy.checked_sub(1)
                            .map(|r| &pr[(r % 3) * row_len..(r % 3 + 1) * row_len]),
                        Some(&pr[(oy % 3) * row_len..(oy % 3 + 1) * row_len]),
                        (oy + 1 < POOL)
                            .then(|| &pr[((oy + 1) % 3) * row_len..((oy + 1) % 3 + 1) * row_len]),
                    ],
                    col0: 0,
                };
                let cur = &pr[(oy % 3) * row_len..(oy % 3 + 1) * row_len];
                let mut x = 0;
                while x < POOL {
                    let e = (x + CHUNK).min(POOL);
                    let y = &mut yb[..(e - x) * c];
                    ops.peg(&inp, oy, x, &cur[x * c..e * c], y)?;
                    sink.write(oy, x, y)?;
                    x = e;
                }
                no += 1;
            }
        }
    }
    if np != POOL || no != POOL {
        return Err(INTERNAL);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// int8

struct I8Ops<'a> {
    cfg: V2Config,
    fc1: ConvQ<'a>,
    fc2: ConvQ<'a>,
    /// Zero point of the pooled tensor (`h1` when pooling first, else `m`).
    z_pool: i32,
    peg: ConvQ<'a>,
    add: AddQ,
}

impl V2Ops for I8Ops<'_> {
    type X = i8;
    type A = i8;
    type Y = i8;
    type Acc = i32;
    fn fc1(&self, x: &[i8], h1: &mut [i8]) -> Result<(), Error> {
        qk::pointwise(x, self.cfg.c_in, &self.fc1, self.cfg.c_out, h1)
    }
    fn fc2(&self, h1: &[i8], m: &mut [i8]) -> Result<(), Error> {
        let co = self.cfg.c_out;
        qk::pointwise(h1, co, &self.fc2, co, m)
    }
    fn accumulate(&self, acc: &mut [i32], v: &[i8]) {
        for (a, &v) in acc.iter_mut().zip(v) {
            *a = a.wrapping_add((v as i32).wrapping_sub(self.z_pool));
        }
    }
    fn pool_finish(&self, acc: &[i32], count: usize, out: &mut [i8]) {
        for (o, &s) in out.iter_mut().zip(acc) {
            *o = sat_i8(
                self.z_pool
                    .wrapping_add(div_round(s as i64, count as i64) as i32),
            );
        }
    }
    fn peg(
        &self,
        inp: &DwRows<'_, i8>,
        oy: usize,
        ox0: usize,
        cur: &[i8],
        y: &mut [i8],
    ) -> Result<(), Error> {
        let s = DwShape {
            h: POOL,
            w: POOL,
            c: self.cfg.c_out,
            stride: 1,
        };
        depthwise_row_i8(s, inp, &self.peg, oy, ox0, &mut *y)?;
        qk::add_inplace(y, cur, &self.add)
    }
}

/// Streams an int8 `mobilevlm-v2` blob (see [`super::forward_i8`]): bit-identical to
/// [`crate::quant::forward_i8`].
pub fn v2_i8<S: RowSource<i8>, K: RowSink<i8>>(
    m: &Model<'_>,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    let ModelConfig::MobileVlmV2(cfg) = m.config() else {
        return Err(Error::Unsupported("v2_i8 needs a mobilevlm-v2 blob"));
    };
    if m.dtype() != DType::Int8 {
        return Err(Error::Unsupported("v2_i8 needs an int8 blob"));
    }
    // The pool sums stay exact in i32 while a bin holds fewer than 2^23 pixels.
    let side = cfg.h / POOL + 2;
    if side * side >= 1 << 23 {
        return Err(Error::Unsupported("grid too large for streaming"));
    }
    let p = P::new(m)?;
    let ops = I8Ops {
        cfg,
        fc1: p.conv(
            "mlp.mlp.0",
            V2::FC1_SHIFT,
            0,
            p.z(V2::Z_H1P),
            Some(p.lut("gelu.lut")?),
        )?,
        fc2: p.conv("mlp.mlp.2", V2::FC2_SHIFT, 0, p.z(V2::Z_M), None)?,
        z_pool: p.z(if cfg.pool_first() { V2::Z_H1 } else { V2::Z_M }),
        peg: p.conv("peg.peg.0", V2::PEG_SHIFT, p.z(V2::Z_M), p.z(V2::Z_D), None)?,
        add: p.add(
            p.z(V2::Z_D),
            p.z(V2::Z_M),
            V2::ADD_MA,
            V2::ADD_MB,
            V2::ADD_SHIFT,
            V2::Z_Y,
        ),
    };
    run(&cfg, &ops, src, sink, scratch)
}

// ---------------------------------------------------------------------------------------------
// float

struct FloatOps<'a, W, A> {
    cfg: V2Config,
    w: V2Weights<'a, W>,
    _a: core::marker::PhantomData<A>,
}

impl<W: Elem, A: Elem> V2Ops for FloatOps<'_, W, A> {
    type X = f32;
    type A = A;
    type Y = f32;
    type Acc = f32;
    fn fc1(&self, x: &[f32], h1: &mut [A]) -> Result<(), Error> {
        let (co, w) = (self.cfg.c_out, &self.w);
        pointwise(
            x,
            self.cfg.c_in,
            w.fc1_w,
            Some(w.fc1_b),
            co,
            Some(Activation::Gelu),
            h1,
        )
    }
    fn fc2(&self, h1: &[A], m: &mut [A]) -> Result<(), Error> {
        let (co, w) = (self.cfg.c_out, &self.w);
        pointwise(h1, co, w.fc2_w, Some(w.fc2_b), co, None, m)
    }
    fn accumulate(&self, acc: &mut [f32], m: &[A]) {
        for (a, &v) in acc.iter_mut().zip(m) {
            *a += v.to_f32();
        }
    }
    fn pool_finish(&self, acc: &[f32], count: usize, out: &mut [A]) {
        let inv = 1.0 / count as f32;
        for (o, &s) in out.iter_mut().zip(acc) {
            *o = A::from_f32(s * inv);
        }
    }
    fn peg(
        &self,
        inp: &DwRows<'_, A>,
        oy: usize,
        ox0: usize,
        cur: &[A],
        y: &mut [f32],
    ) -> Result<(), Error> {
        let s = DwShape {
            h: POOL,
            w: POOL,
            c: self.cfg.c_out,
            stride: 1,
        };
        depthwise_row_float(
            s,
            inp,
            self.w.peg_w,
            Some(self.w.peg_b),
            Some(cur),
            oy,
            ox0,
            y,
        )
    }
}

/// Streams MobileVLM V2 with float weights `W` and activations stored as `A`: bit-identical to
/// [`crate::arch::mobilevlm_v2::forward`] with the same types.
pub fn v2_float<W: Elem, A: Elem, S: RowSource<f32>, K: RowSink<f32>>(
    cfg: &V2Config,
    w: &V2Weights<'_, W>,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    cfg.validate()?;
    w.validate(cfg)?;
    let ops = FloatOps::<W, A> {
        cfg: *cfg,
        w: *w,
        _a: core::marker::PhantomData,
    };
    run(cfg, &ops, src, sink, scratch)
}
