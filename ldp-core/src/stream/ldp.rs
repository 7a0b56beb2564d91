//! Streaming `ldp`: column strips, each computed top to bottom with ring buffers of rows.
//!
//! Per strip of output columns `[ox0, ox1)` the stages work on these columns of the full map:
//! `x`, `a`: `[a0, a1)` (the `c` columns plus one halo column of DW1 on each inner side);
//! `b`, `c`: `[c0, c1)` (the output columns' DW2 taps, `2·ox0 − 1 ..= 2·ox1 − 1`);
//! `r`, `f`, `y`: `[ox0, ox1)`.
//!
//! Schedule (greedy, so every ring holds what its consumers still need):
//! after input row `t` arrives, `a[t] = GELU(PW1(x[t]))`; every skip row `r[oy]` whose lower tap
//! row has arrived is resized (from `x` rows when `c_in == c_out`, else from `a` rows); every
//! `c[i]` whose DW1 window is complete is computed pixel chunk by pixel chunk
//! (`b = DW1(a) + a`, `c = GELU(LN1(PW2(b)))`); after each `c` row, every output row whose DW2
//! window is complete is computed chunk by chunk (`f = DW2(c) + r`, `y = LN2(PW3(f))`) and sent.

use super::kernels::{
    depthwise_row_float, depthwise_row_i8, resize_row_float, resize_row_i8, DwRows, ResizeQ,
};
use super::params::{idx, P};
use super::{
    check_scratch, ldp_scratch_bytes, ldp_strip_cols, ldp_widths, strip_bounds, strip_count,
    Carver, RowSink, RowSource, CHUNK,
};
use crate::arch::ldp::{LdpConfig, LdpWeights};
use crate::blob::int8::ldp_meta as L;
use crate::blob::{DType, Model, ModelConfig};
use crate::elem::Elem;
use crate::error::Error;
use crate::kernels::activation::{apply_inplace, Activation};
use crate::kernels::depthwise::DwShape;
use crate::kernels::norm::layer_norm_inplace;
use crate::kernels::pointwise::pointwise;
use crate::kernels::resize::taps;
use crate::quant::kernels::{self as qk, taps_q10, AddQ, ConvQ, NormQ};

/// The per-layer operations of one dtype; the schedule is shared.
trait LdpOps {
    type X: bytemuck::Pod;
    type A: bytemuck::Pod;
    type Y: bytemuck::Pod;
    /// Rows `(y0, y1)` of the skip resize of output row `oy`.
    fn skip_taps(&self, oy: usize) -> (usize, usize);
    /// `a = GELU(PW1(x))` on whole pixels.
    fn pw1(&self, x: &[Self::X], a: &mut [Self::A]) -> Result<(), Error>;
    /// Skip row `oy` (columns from `ox0`) resized from input rows `y0`, `y1`.
    fn skip_x(
        &self,
        rows: [&[Self::X]; 2],
        col0: usize,
        oy: usize,
        ox0: usize,
        r: &mut [Self::A],
    ) -> Result<(), Error>;
    /// Skip row `oy` resized from `a` rows `y0`, `y1`.
    fn skip_a(
        &self,
        rows: [&[Self::A]; 2],
        col0: usize,
        oy: usize,
        ox0: usize,
        r: &mut [Self::A],
    ) -> Result<(), Error>;
    /// `b = DW1(a) + a` for row `i`, columns from `ox0`; `a_cur` is `a` at those pixels.
    fn dw1_add(
        &self,
        inp: &DwRows<'_, Self::A>,
        i: usize,
        ox0: usize,
        a_cur: &[Self::A],
        b: &mut [Self::A],
    ) -> Result<(), Error>;
    /// `c = GELU(LN1(PW2(b)))`; `mid` holds int8's 16-bit `PW2` output (empty for floats).
    fn pw2_ln1(&self, b: &[Self::A], mid: &mut [i16], c: &mut [Self::A]) -> Result<(), Error>;
    /// `f = DW2(c) + r` for output row `oy`, columns from `ox0`.
    fn dw2_add(
        &self,
        inp: &DwRows<'_, Self::A>,
        oy: usize,
        ox0: usize,
        r: &[Self::A],
        f: &mut [Self::A],
    ) -> Result<(), Error>;
    /// `y = LN2(PW3(f))`.
    fn pw3_ln2(&self, f: &[Self::A], mid: &mut [i16], y: &mut [Self::Y]) -> Result<(), Error>;
}

fn slot<T>(buf: &[T], i: usize, stride: usize, len: usize) -> &[T] {
    &buf[i * stride..i * stride + len]
}

fn slot_mut<T>(buf: &mut [T], i: usize, stride: usize, len: usize) -> &mut [T] {
    &mut buf[i * stride..i * stride + len]
}

const INTERNAL: Error = Error::InvalidConfig("stream ldp: internal schedule error");

fn run<O: LdpOps, S: RowSource<O::X>, K: RowSink<O::Y>>(
    cfg: &LdpConfig,
    ops: &O,
    strip: usize,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    use core::mem::size_of;
    cfg.validate()?;
    if strip == 0 {
        return Err(Error::InvalidConfig("stream: strip width must be > 0"));
    }
    let sizes = (size_of::<O::X>(), size_of::<O::A>(), size_of::<O::Y>());
    check_scratch(scratch, ldp_scratch_bytes(cfg, strip, sizes))?;
    let (h, w, ci, c) = (cfg.h, cfg.w, cfg.c_in, cfg.c_out);
    let (h2, w2) = (cfg.h2(), cfg.w2());
    let [wa, wc, wo, _, _] = ldp_widths(cfg, strip);
    let skip_from_x = ci == c;
    let dx = if skip_from_x { 2 } else { 1 };
    let mut cv = Carver::new(scratch);
    let xr: &mut [O::X] = cv.take(dx * wa * ci)?;
    let ar: &mut [O::A] = cv.take(3 * wa * c)?;
    let cr: &mut [O::A] = cv.take(3 * wc * c)?;
    let rr: &mut [O::A] = cv.take(2 * wo * c)?;
    let bch: &mut [O::A] = cv.take(CHUNK * c)?;
    let fch: &mut [O::A] = cv.take(CHUNK * c)?;
    let ych: &mut [O::Y] = cv.take(CHUNK * c)?;
    let mid: &mut [i16] = if size_of::<O::A>() == 1 {
        cv.take(CHUNK * c)?
    } else {
        &mut []
    };
    let n = strip_count(w2, strip);
    for k in 0..n {
        let (ox0, ox1) = strip_bounds(w2, n, k);
        let [_, _, c0, c1, a0, a1] = ldp_strip_cols(w, ox0, ox1);
        let (la, lc, lo) = ((a1 - a0) * c, (c1 - c0) * c, (ox1 - ox0) * c);
        let lx = (a1 - a0) * ci;
        let (mut nr, mut nc, mut ne) = (0usize, 0usize, 0usize);
        for t in 0..h {
            let xs = slot_mut(xr, t % dx, wa * ci, lx);
            src.read(t, a0, xs)?;
            ops.pw1(xs, slot_mut(ar, t % 3, wa * c, la))?;
            let na = t + 1;
            // Skip rows whose taps have arrived.
            while nr < h2 {
                let (y0, y1) = ops.skip_taps(nr);
                if y1 >= na {
                    break;
                }
                if y0 + 2 < na || y1 + 2 < na {
                    return Err(INTERNAL);
                }
                let r = slot_mut(rr, nr % 2, wo * c, lo);
                if skip_from_x {
                    let rows = [slot(xr, y0 % 2, wa * ci, lx), slot(xr, y1 % 2, wa * ci, lx)];
                    ops.skip_x(rows, a0, nr, ox0, r)?;
                } else {
                    let rows = [slot(ar, y0 % 3, wa * c, la), slot(ar, y1 % 3, wa * c, la)];
                    ops.skip_a(rows, a0, nr, ox0, r)?;
                }
                nr += 1;
            }
            // c rows whose DW1 window is complete, then the outputs they complete.
            while nc < h && na >= (nc + 2).min(h) {
                let i = nc;
                let inp = DwRows {
                    rows: [
                        i.checked_sub(1).map(|r| slot(ar, r % 3, wa * c, la)),
                        Some(slot(ar, i % 3, wa * c, la)),
                        (i + 1 < h).then(|| slot(ar, (i + 1) % 3, wa * c, la)),
                    ],
                    col0: a0,
                };
                let a_row = slot(ar, i % 3, wa * c, la);
                let c_row = slot_mut(cr, i % 3, wc * c, lc);
                let mut x = c0;
                while x < c1 {
                    let e = (x + CHUNK).min(c1);
                    let b = &mut bch[..(e - x) * c];
                    ops.dw1_add(&inp, i, x, &a_row[(x - a0) * c..(e - a0) * c], b)?;
                    ops.pw2_ln1(b, mid, &mut c_row[(x - c0) * c..(e - c0) * c])?;
                    x = e;
                }
                nc += 1;
                while ne < h2 && nc >= (2 * ne + 2).min(h) {
                    let oy = ne;
                    if nr <= oy {
                        return Err(INTERNAL);
                    }
                    let inp = DwRows {
                        rows: [
                            (2 * oy).checked_sub(1).map(|r| slot(cr, r % 3, wc * c, lc)),
                            Some(slot(cr, (2 * oy) % 3, wc * c, lc)),
                            (2 * oy + 1 < h).then(|| slot(cr, (2 * oy + 1) % 3, wc * c, lc)),
                        ],
                        col0: c0,
                    };
                    let r_row = slot(rr, oy % 2, wo * c, lo);
                    let mut x = ox0;
                    while x < ox1 {
                        let e = (x + CHUNK).min(ox1);
                        let f = &mut fch[..(e - x) * c];
                        ops.dw2_add(&inp, oy, x, &r_row[(x - ox0) * c..(e - ox0) * c], f)?;
                        let y = &mut ych[..(e - x) * c];
                        ops.pw3_ln2(f, mid, y)?;
                        sink.write(oy, x, y)?;
                        x = e;
                    }
                    ne += 1;
                }
            }
        }
        if ne != h2 || nc != h || nr != h2 {
            return Err(INTERNAL);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// int8

struct I8Ops<'a> {
    cfg: LdpConfig,
    pw1: ConvQ<'a>,
    skip_mult: &'a [i16],
    skip_shift: i32,
    z_r: i32,
    in_zero: &'a [i8],
    a_zero: [i8; 1],
    dw1: ConvQ<'a>,
    add1: AddQ,
    pw2: ConvQ<'a>,
    ln1: NormQ<'a>,
    dw2: ConvQ<'a>,
    add2: AddQ,
    pw3: ConvQ<'a>,
    ln2: NormQ<'a>,
}

impl I8Ops<'_> {
    fn s(&self, stride: usize) -> DwShape {
        DwShape {
            h: self.cfg.h,
            w: self.cfg.w,
            c: self.cfg.c_out,
            stride,
        }
    }
    fn resize(
        &self,
        rows: [&[i8]; 2],
        zero: &[i8],
        col0: usize,
        oy: usize,
        ox0: usize,
        r: &mut [i8],
    ) -> Result<(), Error> {
        let (_, _, ly) = taps_q10(oy, self.cfg.h, self.cfg.h2());
        let q = ResizeQ {
            in_zero: zero,
            mult: self.skip_mult,
            shift: self.skip_shift,
            out_zero: self.z_r,
        };
        resize_row_i8(
            rows,
            col0,
            self.cfg.w,
            self.cfg.w2(),
            self.cfg.c_out,
            &q,
            ly,
            ox0,
            r,
        )
    }
}

impl LdpOps for I8Ops<'_> {
    type X = i8;
    type A = i8;
    type Y = i8;
    fn skip_taps(&self, oy: usize) -> (usize, usize) {
        let (y0, y1, _) = taps_q10(oy, self.cfg.h, self.cfg.h2());
        (y0, y1)
    }
    fn pw1(&self, x: &[i8], a: &mut [i8]) -> Result<(), Error> {
        qk::pointwise(x, self.cfg.c_in, &self.pw1, self.cfg.c_out, a)
    }
    fn skip_x(
        &self,
        rows: [&[i8]; 2],
        col0: usize,
        oy: usize,
        ox0: usize,
        r: &mut [i8],
    ) -> Result<(), Error> {
        self.resize(rows, self.in_zero, col0, oy, ox0, r)
    }
    fn skip_a(
        &self,
        rows: [&[i8]; 2],
        col0: usize,
        oy: usize,
        ox0: usize,
        r: &mut [i8],
    ) -> Result<(), Error> {
        self.resize(rows, &self.a_zero, col0, oy, ox0, r)
    }
    fn dw1_add(
        &self,
        inp: &DwRows<'_, i8>,
        i: usize,
        ox0: usize,
        a_cur: &[i8],
        b: &mut [i8],
    ) -> Result<(), Error> {
        depthwise_row_i8(self.s(1), inp, &self.dw1, i, ox0, b)?;
        qk::add_inplace(b, a_cur, &self.add1)
    }
    fn pw2_ln1(&self, b: &[i8], mid: &mut [i16], c: &mut [i8]) -> Result<(), Error> {
        let co = self.cfg.c_out;
        qk::pointwise_layer_norm(b, co, &self.pw2, co, &self.ln1, mid, c)
    }
    fn dw2_add(
        &self,
        inp: &DwRows<'_, i8>,
        oy: usize,
        ox0: usize,
        r: &[i8],
        f: &mut [i8],
    ) -> Result<(), Error> {
        depthwise_row_i8(self.s(2), inp, &self.dw2, oy, ox0, f)?;
        qk::add_inplace(f, r, &self.add2)
    }
    fn pw3_ln2(&self, f: &[i8], mid: &mut [i16], y: &mut [i8]) -> Result<(), Error> {
        let co = self.cfg.c_out;
        qk::pointwise_layer_norm(f, co, &self.pw3, co, &self.ln2, mid, y)
    }
}

/// Streams an int8 `ldp` blob (see [`super::forward_i8`]): bit-identical to
/// [`crate::quant::forward_i8`]. `scratch` needs [`super::scratch_bytes`]`(cfg, Int8, strip)`.
pub fn ldp_i8<S: RowSource<i8>, K: RowSink<i8>>(
    m: &Model<'_>,
    strip: usize,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    let ModelConfig::Ldp(cfg) = m.config() else {
        return Err(Error::Unsupported("ldp_i8 needs an ldp blob"));
    };
    if m.dtype() != DType::Int8 {
        return Err(Error::Unsupported("ldp_i8 needs an int8 blob"));
    }
    let p = P::new(m)?;
    let ops = I8Ops {
        cfg,
        pw1: p.conv(
            "pointwise1",
            L::PW1_SHIFT,
            0,
            p.z(L::Z_P),
            Some(p.lut("gelu1.lut")?),
        )?,
        skip_mult: m.i16s(idx(m, "skip.mult", "")?)?,
        skip_shift: p.z(L::SKIP_SHIFT),
        z_r: p.z(L::Z_R),
        in_zero: m.i8s(idx(m, "input.zero", "")?)?,
        a_zero: [p.z(L::Z_A).clamp(-128, 127) as i8],
        dw1: p.conv("depthwise1", L::DW1_SHIFT, p.z(L::Z_A), p.z(L::Z_D), None)?,
        add1: p.add(
            p.z(L::Z_D),
            p.z(L::Z_A),
            L::ADD1_MA,
            L::ADD1_MB,
            L::ADD1_SHIFT,
            L::Z_B,
        ),
        pw2: p.conv("pointwise2", L::PW2_SHIFT, 0, p.z(L::Z_Q), None)?,
        ln1: p.norm(
            "norm1",
            L::LN1_SHIFT,
            L::LN1_EPS,
            p.z(L::Z_N),
            Some(p.lut("gelu2.lut")?),
        )?,
        dw2: p.conv("depthwise2", L::DW2_SHIFT, p.z(L::Z_C), p.z(L::Z_E), None)?,
        add2: p.add(
            p.z(L::Z_E),
            p.z(L::Z_R),
            L::ADD2_MA,
            L::ADD2_MB,
            L::ADD2_SHIFT,
            L::Z_F,
        ),
        pw3: p.conv("pointwise3", L::PW3_SHIFT, 0, p.z(L::Z_G), None)?,
        ln2: p.norm("norm2", L::LN2_SHIFT, L::LN2_EPS, p.z(L::Z_Y), None)?,
    };
    run(&cfg, &ops, strip, src, sink, scratch)
}

// ---------------------------------------------------------------------------------------------
// float

struct FloatOps<'a, W, A> {
    cfg: LdpConfig,
    w: LdpWeights<'a, W>,
    _a: core::marker::PhantomData<A>,
}

impl<W: Elem, A: Elem> FloatOps<'_, W, A> {
    fn s(&self, stride: usize) -> DwShape {
        DwShape {
            h: self.cfg.h,
            w: self.cfg.w,
            c: self.cfg.c_out,
            stride,
        }
    }
}

impl<W: Elem, A: Elem> LdpOps for FloatOps<'_, W, A> {
    type X = f32;
    type A = A;
    type Y = f32;
    fn skip_taps(&self, oy: usize) -> (usize, usize) {
        let (y0, y1, _) = taps(oy, self.cfg.h, self.cfg.h2());
        (y0, y1)
    }
    fn pw1(&self, x: &[f32], a: &mut [A]) -> Result<(), Error> {
        let w = &self.w;
        pointwise(
            x,
            self.cfg.c_in,
            w.pw1_w,
            Some(w.pw1_b),
            self.cfg.c_out,
            Some(Activation::Gelu),
            a,
        )
    }
    fn skip_x(
        &self,
        rows: [&[f32]; 2],
        col0: usize,
        oy: usize,
        ox0: usize,
        r: &mut [A],
    ) -> Result<(), Error> {
        let (_, _, ly) = taps(oy, self.cfg.h, self.cfg.h2());
        resize_row_float(
            rows,
            col0,
            self.cfg.w,
            self.cfg.w2(),
            self.cfg.c_out,
            ly,
            ox0,
            r,
        )
    }
    fn skip_a(
        &self,
        rows: [&[A]; 2],
        col0: usize,
        oy: usize,
        ox0: usize,
        r: &mut [A],
    ) -> Result<(), Error> {
        let (_, _, ly) = taps(oy, self.cfg.h, self.cfg.h2());
        resize_row_float(
            rows,
            col0,
            self.cfg.w,
            self.cfg.w2(),
            self.cfg.c_out,
            ly,
            ox0,
            r,
        )
    }
    fn dw1_add(
        &self,
        inp: &DwRows<'_, A>,
        i: usize,
        ox0: usize,
        a_cur: &[A],
        b: &mut [A],
    ) -> Result<(), Error> {
        depthwise_row_float(
            self.s(1),
            inp,
            self.w.dw1_w,
            Some(self.w.dw1_b),
            Some(a_cur),
            i,
            ox0,
            b,
        )
    }
    fn pw2_ln1(&self, b: &[A], _mid: &mut [i16], c: &mut [A]) -> Result<(), Error> {
        let (co, w) = (self.cfg.c_out, &self.w);
        pointwise(b, co, w.pw2_w, Some(w.pw2_b), co, None, &mut *c)?;
        layer_norm_inplace(&mut *c, co, w.ln1_w, w.ln1_b)?;
        apply_inplace(Activation::Gelu, c);
        Ok(())
    }
    fn dw2_add(
        &self,
        inp: &DwRows<'_, A>,
        oy: usize,
        ox0: usize,
        r: &[A],
        f: &mut [A],
    ) -> Result<(), Error> {
        depthwise_row_float(
            self.s(2),
            inp,
            self.w.dw2_w,
            Some(self.w.dw2_b),
            Some(r),
            oy,
            ox0,
            f,
        )
    }
    fn pw3_ln2(&self, f: &[A], _mid: &mut [i16], y: &mut [f32]) -> Result<(), Error> {
        let (co, w) = (self.cfg.c_out, &self.w);
        pointwise(f, co, w.pw3_w, Some(w.pw3_b), co, None, &mut *y)?;
        layer_norm_inplace(y, co, w.ln2_w, w.ln2_b)
    }
}

/// Streams an `ldp` block with float weights `W` and activations stored as `A` (f32 input and
/// output rows): bit-identical to [`crate::arch::ldp::forward`] with the same types. `scratch`
/// needs [`super::ldp_scratch_bytes`]`(cfg, strip, (4, size_of::<A>(), 4))` bytes.
pub fn ldp_float<W: Elem, A: Elem, S: RowSource<f32>, K: RowSink<f32>>(
    cfg: &LdpConfig,
    w: &LdpWeights<'_, W>,
    strip: usize,
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
    run(cfg, &ops, strip, src, sink, scratch)
}
