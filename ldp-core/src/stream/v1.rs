//! Streaming MobileVLM V1 in three passes over the input.
//!
//! Each squeeze-excitation multiplies its map by a gate computed from the mean of the **whole**
//! map, so no row of a block's output is final before the block's last input row is known.
//! Rather than keep the maps, the executor recomputes them:
//!
//! 1. `z = mlp(x)` row by row, block 1's `hs = Hardswish(LN(DW(z)))` through a 3-row window of
//!    `z`; accumulate the per-channel sums of `hs` → gate 1.
//! 2. Again, now also `z2 = z + LN(PW(hs·gate1))` and block 2's `hs2` through a 3-row window of
//!    `z2`; accumulate the sums of `hs2` → gate 2.
//! 3. Again, now also `y = LN(PW(hs2·gate2))`, sent row by row.
//!
//! RAM: two 3-row windows (`z`, `z2`), pixel chunks, and `3·C + S` SE words. Cost: the MLP and
//! block 1's depthwise run three times, block 1's SE/pointwise and block 2's depthwise twice
//! ([`super::v1_macs`]).

use super::kernels::{depthwise_row_float, depthwise_row_i8, DwRows};
use super::params::{idx, P};
use super::{check_scratch, v1_scratch_bytes, Carver, RowSink, RowSource, CHUNK};
use crate::arch::mobilevlm_v1::{V1BlockWeights, V1Config, V1Weights};
use crate::blob::{DType, Model, ModelConfig};
use crate::elem::Elem;
use crate::error::{check_len, Error};
use crate::graph::meta;
use crate::graph::mobilevlm_v1::{block_node, NODES};
use crate::graph::Node;
use crate::kernels::activation::{apply_inplace, hardsigmoid, relu, Activation};
use crate::kernels::depthwise::DwShape;
use crate::kernels::norm::layer_norm_inplace;
use crate::kernels::pointwise::pointwise;
use crate::quant::kernels::{self as qk, AddQ, ConvQ, NormQ, SeQ};

trait V1Ops {
    type X: bytemuck::Pod;
    type A: bytemuck::Pod;
    type Y: bytemuck::Pod;
    /// SE sums and gates: `i32` (int8) or `f32`.
    type Acc: bytemuck::Pod;
    /// `z = fc2(GELU(fc1(x)))` on whole pixels.
    fn mlp(&self, x: &[Self::X], h1: &mut [Self::A], z: &mut [Self::A]) -> Result<(), Error>;
    /// Block `b`'s `Hardswish(LN(DW(z)))`, output row `oy`, columns from `ox0`.
    fn dw_ln_hs(
        &self,
        b: usize,
        inp: &DwRows<'_, Self::A>,
        oy: usize,
        ox0: usize,
        mid: &mut [i16],
        d: &mut [Self::A],
    ) -> Result<(), Error>;
    /// `sums += d` per channel.
    fn se_accumulate(&self, b: usize, sums: &mut [Self::Acc], d: &[Self::A]);
    /// Gate of block `b` from the channel sums of its map (`pixels` pixels); `sums` is clobbered.
    fn se_gate(
        &self,
        b: usize,
        sums: &mut [Self::Acc],
        pixels: usize,
        hid: &mut [Self::Acc],
        gate: &mut [Self::Acc],
    ) -> Result<(), Error>;
    /// `d *= gate` per channel.
    fn se_apply(&self, b: usize, gate: &[Self::Acc], d: &mut [Self::A]);
    /// Block 1's `u = LN(PW(d))` into `zu`, then `zu = z + u`.
    fn block1_out(
        &self,
        d: &[Self::A],
        z: &[Self::A],
        mid: &mut [i16],
        zu: &mut [Self::A],
    ) -> Result<(), Error>;
    /// Block 2's `y = LN(PW(d))`.
    fn block2_out(&self, d: &[Self::A], mid: &mut [i16], y: &mut [Self::Y]) -> Result<(), Error>;
}

const INTERNAL: Error = Error::InvalidConfig("stream mobilevlm-v1: internal schedule error");

fn rows3<'r, T>(ring: &'r [T], oy: usize, stride: usize, h: usize, len: usize) -> DwRows<'r, T> {
    let at = |r: usize| &ring[(r % 3) * len..(r % 3) * len + len];
    let base = oy * stride;
    DwRows {
        rows: [
            base.checked_sub(1).map(at),
            Some(at(base)),
            (base + 1 < h).then(|| at(base + 1)),
        ],
        col0: 0,
    }
}

fn run<O: V1Ops, S: RowSource<O::X>, K: RowSink<O::Y>>(
    cfg: &V1Config,
    ops: &O,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    use core::mem::size_of;
    cfg.validate()?;
    let sizes = (size_of::<O::X>(), size_of::<O::A>(), size_of::<O::Y>());
    check_scratch(scratch, v1_scratch_bytes(cfg, sizes))?;
    let (h, h2, ci, c, s) = (cfg.h, cfg.h2(), cfg.c_in, cfg.c_out, cfg.squeeze);
    let row = h * c;
    let mut cv = Carver::new(scratch);
    let xb: &mut [O::X] = cv.take(CHUNK * ci)?;
    let h1: &mut [O::A] = cv.take(CHUNK * c)?;
    let zr: &mut [O::A] = cv.take(3 * row)?;
    let z2r: &mut [O::A] = cv.take(3 * row)?;
    let db: &mut [O::A] = cv.take(CHUNK * c)?;
    let yb: &mut [O::Y] = cv.take(CHUNK * c)?;
    let se: &mut [O::Acc] = cv.take(3 * c + s)?;
    // int8: the projections' 16-bit output before their LayerNorm (empty for floats).
    let mid: &mut [i16] = if size_of::<O::A>() == 1 {
        cv.take(CHUNK * c)?
    } else {
        &mut []
    };
    let (sums, rest) = se.split_at_mut(c);
    let (gate1, rest) = rest.split_at_mut(c);
    let (gate2, hid) = rest.split_at_mut(c);
    sums.fill(<O::Acc as bytemuck::Zeroable>::zeroed());
    for pass in 1..=3 {
        let (mut n1, mut n2) = (0usize, 0usize);
        for t in 0..h {
            let zrow = &mut zr[(t % 3) * row..(t % 3 + 1) * row];
            let mut x0 = 0;
            while x0 < h {
                let x1 = (x0 + CHUNK).min(h);
                let npx = x1 - x0;
                src.read(t, x0, &mut xb[..npx * ci])?;
                ops.mlp(
                    &xb[..npx * ci],
                    &mut h1[..npx * c],
                    &mut zrow[x0 * c..x1 * c],
                )?;
                x0 = x1;
            }
            let nz = t + 1;
            while n1 < h && nz >= (n1 + 2).min(h) {
                let i = n1;
                let inp = rows3(zr, i, 1, h, row);
                let mut x0 = 0;
                while x0 < h {
                    let x1 = (x0 + CHUNK).min(h);
                    let d = &mut db[..(x1 - x0) * c];
                    ops.dw_ln_hs(0, &inp, i, x0, mid, d)?;
                    if pass == 1 {
                        ops.se_accumulate(0, sums, d);
                    } else {
                        ops.se_apply(0, gate1, d);
                        let z = &zr[(i % 3) * row + x0 * c..(i % 3) * row + x1 * c];
                        let zu = &mut z2r[(i % 3) * row + x0 * c..(i % 3) * row + x1 * c];
                        ops.block1_out(d, z, mid, zu)?;
                    }
                    x0 = x1;
                }
                n1 += 1;
                while pass >= 2 && n2 < h2 && n1 >= (2 * n2 + 2).min(h) {
                    let o = n2;
                    let inp = rows3(z2r, o, 2, h, row);
                    let mut x0 = 0;
                    while x0 < h2 {
                        let x1 = (x0 + CHUNK).min(h2);
                        let d = &mut db[..(x1 - x0) * c];
                        ops.dw_ln_hs(1, &inp, o, x0, mid, d)?;
                        if pass == 2 {
                            ops.se_accumulate(1, sums, d);
                        } else {
                            ops.se_apply(1, gate2, d);
                            let y = &mut yb[..(x1 - x0) * c];
                            ops.block2_out(d, mid, y)?;
                            sink.write(o, x0, y)?;
                        }
                        x0 = x1;
                    }
                    n2 += 1;
                }
            }
        }
        if n1 != h || (pass >= 2 && n2 != h2) {
            return Err(INTERNAL);
        }
        if pass == 1 {
            ops.se_gate(0, sums, h * h, hid, gate1)?;
            sums.fill(<O::Acc as bytemuck::Zeroable>::zeroed());
        } else if pass == 2 {
            ops.se_gate(1, sums, h2 * h2, hid, gate2)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// int8

struct BlockQ<'a> {
    dw: ConvQ<'a>,
    ln1: NormQ<'a>,
    se: SeQ<'a>,
    pw: ConvQ<'a>,
    ln2: NormQ<'a>,
}

struct I8Ops<'a> {
    cfg: V1Config,
    fc1: ConvQ<'a>,
    fc2: ConvQ<'a>,
    add: AddQ,
    blocks: [BlockQ<'a>; 2],
}

/// The int8 parameters of block `b` (0 or 1), read by the graph's node names and `quant.meta`
/// indices ([`crate::graph::mobilevlm_v1`]).
fn block_q<'a>(p: &P<'_, 'a>, b: usize) -> Result<BlockQ<'a>, Error> {
    let k = block_node(b);
    let node = |j: usize| NODES.get(j).ok_or(INTERNAL);
    let (dw, ln1, se, pw, ln2) = (
        node(k)?,
        node(k + 1)?,
        node(k + 2)?,
        node(k + 3)?,
        node(k + 4)?,
    );
    let m = |j: usize| meta::node(NODES, j);
    let (md, m1, ms, mp, m2) = (m(k), m(k + 1), m(k + 2), m(k + 3), m(k + 4));
    let z_in = p.z(m(k - 1).result());
    let norm = |nd: &Node, nm: meta::NodeMeta, lut| -> Result<NormQ<'a>, Error> {
        Ok(NormQ {
            gamma: p.m.i16s(idx(p.m, nd.name, ".gamma")?)?,
            beta: p.m.i16s(idx(p.m, nd.name, ".beta")?)?,
            shift: p.z(nm.shift),
            eps_q8: p.z(nm.eps),
            out_zero: p.z(nm.pre),
            lut,
        })
    };
    let hs = p.m.i8s(idx(p.m, ln1.table_name(), ".lut")?)?;
    Ok(BlockQ {
        dw: p.conv(dw.name, md.shift, z_in, p.z(md.out), None)?,
        ln1: norm(ln1, m1, Some(hs))?,
        se: SeQ {
            in_zero: p.z(m1.out),
            fc1: p.conv_at(
                idx(p.m, se.name, ".fc1.weight")?,
                ms.shift,
                0,
                p.z(ms.pre),
                None,
            )?,
            fc2: p.conv_at(
                idx(p.m, se.name, ".fc2.weight")?,
                ms.se,
                0,
                p.z(ms.se + 1),
                None,
            )?,
            gate: p.m.u8s(idx(p.m, se.name, ".gate.lut")?)?,
            mult: p.z(ms.se + 2),
            shift: p.z(ms.se + 3),
            out_zero: p.z(ms.out),
        },
        pw: p.conv(pw.name, mp.shift, 0, p.z(mp.out), None)?,
        ln2: norm(ln2, m2, None)?,
    })
}

impl V1Ops for I8Ops<'_> {
    type X = i8;
    type A = i8;
    type Y = i8;
    type Acc = i32;
    fn mlp(&self, x: &[i8], h1: &mut [i8], z: &mut [i8]) -> Result<(), Error> {
        let co = self.cfg.c_out;
        qk::pointwise(x, self.cfg.c_in, &self.fc1, co, &mut *h1)?;
        qk::pointwise(h1, co, &self.fc2, co, z)
    }
    fn dw_ln_hs(
        &self,
        b: usize,
        inp: &DwRows<'_, i8>,
        oy: usize,
        ox0: usize,
        mid: &mut [i16],
        d: &mut [i8],
    ) -> Result<(), Error> {
        let s = DwShape {
            h: self.cfg.h,
            w: self.cfg.h,
            c: self.cfg.c_out,
            stride: b + 1,
        };
        let q = &self.blocks[b];
        let have = 2 * mid.len();
        let mid = mid.get_mut(..d.len()).ok_or(Error::ScratchTooSmall {
            need: 2 * d.len(),
            have,
        })?;
        depthwise_row_i8(s, inp, &q.dw, oy, ox0, &mut *mid)?;
        qk::layer_norm_i16(mid, self.cfg.c_out, &q.ln1, d)
    }
    fn se_accumulate(&self, b: usize, sums: &mut [i32], d: &[i8]) {
        let z = self.blocks[b].se.in_zero;
        for px in d.chunks_exact(sums.len()) {
            for (s, &v) in sums.iter_mut().zip(px) {
                *s = s.wrapping_add((v as i32).wrapping_sub(z));
            }
        }
    }
    fn se_gate(
        &self,
        b: usize,
        sums: &mut [i32],
        pixels: usize,
        hid: &mut [i32],
        gate: &mut [i32],
    ) -> Result<(), Error> {
        // The same function `quant::kernels::squeeze_excite` uses, from the sums on.
        qk::se_gate_from_sums(&self.blocks[b].se, sums, pixels, hid, gate)
    }
    fn se_apply(&self, b: usize, gate: &[i32], d: &mut [i8]) {
        qk::se_apply(&self.blocks[b].se, gate, d);
    }
    fn block1_out(&self, d: &[i8], z: &[i8], mid: &mut [i16], zu: &mut [i8]) -> Result<(), Error> {
        let (co, q) = (self.cfg.c_out, &self.blocks[0]);
        qk::pointwise_layer_norm(d, co, &q.pw, co, &q.ln2, mid, &mut *zu)?;
        check_len("residual", z, zu.len())?;
        for (o, &zv) in zu.iter_mut().zip(z) {
            *o = self.add.add(zv, *o);
        }
        Ok(())
    }
    fn block2_out(&self, d: &[i8], mid: &mut [i16], y: &mut [i8]) -> Result<(), Error> {
        let (co, q) = (self.cfg.c_out, &self.blocks[1]);
        qk::pointwise_layer_norm(d, co, &q.pw, co, &q.ln2, mid, y)
    }
}

/// Streams an int8 `mobilevlm-v1` blob in three passes (see the module docs): bit-identical to
/// [`crate::quant::forward_i8`]. The source is read three times.
pub fn v1_i8<S: RowSource<i8>, K: RowSink<i8>>(
    m: &Model<'_>,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    let ModelConfig::MobileVlmV1(cfg) = m.config() else {
        return Err(Error::Unsupported("v1_i8 needs a mobilevlm-v1 blob"));
    };
    if m.dtype() != DType::Int8 {
        return Err(Error::Unsupported("v1_i8 needs an int8 blob"));
    }
    // The SE sums stay exact in i32 while the map holds fewer than 2^23 pixels.
    if cfg.tokens_in() >= 1 << 23 {
        return Err(Error::Unsupported("grid too large for streaming"));
    }
    let p = P::new(m)?;
    let (fc1, fc2) = (&NODES[0], &NODES[1]);
    let (m0, m1) = (meta::node(NODES, 0), meta::node(NODES, 1));
    // Block 1's LayerNorm after its projection carries the residual `z + u`.
    let ma = meta::node(NODES, block_node(0) + 4);
    let ops = I8Ops {
        cfg,
        fc1: p.conv(
            fc1.name,
            m0.shift,
            0,
            p.z(m0.pre),
            Some(p.m.i8s(idx(p.m, fc1.table_name(), ".lut")?)?),
        )?,
        fc2: p.conv(fc2.name, m1.shift, 0, p.z(m1.out), None)?,
        add: p.add(
            p.z(m1.out),
            p.z(ma.out),
            ma.add,
            ma.add + 1,
            ma.add + 2,
            ma.add + 3,
        ),
        blocks: [block_q(&p, 0)?, block_q(&p, 1)?],
    };
    run(&cfg, &ops, src, sink, scratch)
}

// ---------------------------------------------------------------------------------------------
// float

struct FloatOps<'a, W, A> {
    cfg: V1Config,
    w: V1Weights<'a, W>,
    _a: core::marker::PhantomData<A>,
}

impl<'a, W: Elem, A: Elem> FloatOps<'a, W, A> {
    fn block(&self, b: usize) -> &V1BlockWeights<'a, W> {
        if b == 0 {
            &self.w.block1
        } else {
            &self.w.block2
        }
    }
}

impl<W: Elem, A: Elem> V1Ops for FloatOps<'_, W, A> {
    type X = f32;
    type A = A;
    type Y = f32;
    type Acc = f32;
    fn mlp(&self, x: &[f32], h1: &mut [A], z: &mut [A]) -> Result<(), Error> {
        let (co, w) = (self.cfg.c_out, &self.w);
        pointwise(
            x,
            self.cfg.c_in,
            w.fc1_w,
            Some(w.fc1_b),
            co,
            Some(Activation::Gelu),
            &mut *h1,
        )?;
        pointwise(h1, co, w.fc2_w, Some(w.fc2_b), co, None, z)
    }
    fn dw_ln_hs(
        &self,
        b: usize,
        inp: &DwRows<'_, A>,
        oy: usize,
        ox0: usize,
        _mid: &mut [i16],
        d: &mut [A],
    ) -> Result<(), Error> {
        let s = DwShape {
            h: self.cfg.h,
            w: self.cfg.h,
            c: self.cfg.c_out,
            stride: b + 1,
        };
        let q = self.block(b);
        depthwise_row_float::<A, W, A, A>(s, inp, q.dw_w, None, None, oy, ox0, &mut *d)?;
        layer_norm_inplace(&mut *d, self.cfg.c_out, q.ln1_w, q.ln1_b)?;
        apply_inplace(Activation::Hardswish, d);
        Ok(())
    }
    fn se_accumulate(&self, _b: usize, sums: &mut [f32], d: &[A]) {
        for px in d.chunks_exact(sums.len()) {
            for (s, v) in sums.iter_mut().zip(px) {
                *s += v.to_f32();
            }
        }
    }
    fn se_gate(
        &self,
        b: usize,
        sums: &mut [f32],
        pixels: usize,
        hid: &mut [f32],
        gate: &mut [f32],
    ) -> Result<(), Error> {
        // `kernels::se::squeeze_excite`, from the sums on.
        let w = &self.block(b).se;
        let (c, s) = (sums.len(), hid.len());
        check_len("se.fc1.weight", w.fc1_w, s * c)?;
        check_len("se.fc1.bias", w.fc1_b, s)?;
        check_len("se.fc2.weight", w.fc2_w, c * s)?;
        check_len("se.fc2.bias", w.fc2_b, c)?;
        check_len("se gate", gate, c)?;
        let inv = 1.0 / pixels as f32;
        sums.iter_mut().for_each(|m| *m *= inv);
        for j in 0..s {
            let mut acc = w.fc1_b[j];
            for i in 0..c {
                acc += w.fc1_w[j * c + i].to_f32() * sums[i];
            }
            hid[j] = relu(acc);
        }
        for i in 0..c {
            let mut acc = w.fc2_b[i];
            for j in 0..s {
                acc += w.fc2_w[i * s + j].to_f32() * hid[j];
            }
            gate[i] = hardsigmoid(acc);
        }
        Ok(())
    }
    fn se_apply(&self, _b: usize, gate: &[f32], d: &mut [A]) {
        for px in d.chunks_exact_mut(gate.len()) {
            for (v, g) in px.iter_mut().zip(gate) {
                *v = A::from_f32(v.to_f32() * g);
            }
        }
    }
    fn block1_out(&self, d: &[A], z: &[A], _mid: &mut [i16], zu: &mut [A]) -> Result<(), Error> {
        let (co, q) = (self.cfg.c_out, &self.w.block1);
        pointwise(d, co, q.pw_w, None, co, None, &mut *zu)?;
        layer_norm_inplace(&mut *zu, co, q.ln2_w, q.ln2_b)?;
        check_len("residual", z, zu.len())?;
        for (o, zv) in zu.iter_mut().zip(z) {
            *o = A::from_f32(zv.to_f32() + o.to_f32());
        }
        Ok(())
    }
    fn block2_out(&self, d: &[A], _mid: &mut [i16], y: &mut [f32]) -> Result<(), Error> {
        let (co, q) = (self.cfg.c_out, &self.w.block2);
        pointwise(d, co, q.pw_w, None, co, None, &mut *y)?;
        layer_norm_inplace(y, co, q.ln2_w, q.ln2_b)
    }
}

/// Streams MobileVLM V1 with float weights `W` and activations stored as `A`, in three passes
/// (see the module docs): bit-identical to [`crate::arch::mobilevlm_v1::forward`].
pub fn v1_float<W: Elem, A: Elem, S: RowSource<f32>, K: RowSink<f32>>(
    cfg: &V1Config,
    w: &V1Weights<'_, W>,
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
