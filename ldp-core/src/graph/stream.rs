//! Row streaming of graph architectures: every operation so far works token by token, so each
//! input row runs through all nodes on its own and is emitted at once. RAM: one input row, the
//! intermediate rows and one output row ([`GraphConfig::stream_scratch_bytes`]). The kernels are
//! the whole-tensor executor's own on row slices, so the output is bit-identical to it. An int8
//! blob with a 16-bit input streams 16-bit input rows (one more byte per input value).

use super::float::activation;
use super::int8::node;
use super::GraphConfig;
use crate::blob::Model;
use crate::elem::Elem;
use crate::error::Error;
use crate::kernels::pointwise::pointwise;
use crate::quant::graph::{Params, QInput};
use crate::stream::{check_scratch, elem_sizes, Carver, RowSink, RowSource};

/// An input row element of an int8 graph blob: `i8` (per-tensor int8 input) or `i16`
/// ([`crate::blob::specs::FLAG_INPUT16`]); only node 0 reads it.
pub(crate) trait QRow: bytemuck::Pod + Default {
    /// The row as the first conv's input.
    fn row(x: &[Self]) -> QInput<'_>;
}

impl QRow for i8 {
    fn row(x: &[i8]) -> QInput<'_> {
        QInput::I8(x)
    }
}

impl QRow for i16 {
    fn row(x: &[i16]) -> QInput<'_> {
        QInput::I16(x)
    }
}

/// Streams an int8 graph blob row by row (`X` input rows — `i8`, or `i16` for a blob with a
/// 16-bit input — to int8 output rows). The caller has checked that `X` is the blob's input
/// type.
pub(crate) fn forward_q<X: QRow, S: RowSource<X>, K: RowSink<i8>>(
    m: &Model<'_>,
    cfg: &GraphConfig,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    cfg.validate()?;
    let sx = core::mem::size_of::<X>();
    check_scratch(scratch, cfg.stream_scratch_bytes((sx, 1, 1)))?;
    let p = Params::new(m)?;
    let nodes = cfg.nodes();
    let w = cfg.w;
    let widest = cfg.widest_mid();
    let mut c = Carver::new(scratch);
    let x: &mut [X] = c.take(w * cfg.c_in)?;
    let mut a: &mut [i8] = c.take(if nodes.len() > 1 { w * widest } else { 0 })?;
    let mut b: &mut [i8] = c.take(if nodes.len() > 2 { w * widest } else { 0 })?;
    let y: &mut [i8] = c.take(w * cfg.c_out)?;
    for row in 0..cfg.h {
        src.read(row, 0, x)?;
        for (i, nd) in nodes.iter().enumerate() {
            let (ci, co) = nd.widths(cfg.c_in, cfg.c_out);
            let last = i + 1 == nodes.len();
            match (i == 0, last) {
                (true, true) => node(&p, cfg, i, X::row(x), y)?,
                (true, false) => node(&p, cfg, i, X::row(x), &mut a[..w * co])?,
                (false, true) => node(&p, cfg, i, QInput::I8(&a[..w * ci]), y)?,
                (false, false) => {
                    node(&p, cfg, i, QInput::I8(&a[..w * ci]), &mut b[..w * co])?;
                    core::mem::swap(&mut a, &mut b);
                }
            }
        }
        sink.write(row, 0, y)?;
    }
    Ok(())
}

/// Streams a float graph blob row by row (f32 rows in and out; activations of type `A`).
pub(crate) fn forward_float<W: Elem, A: Elem, S: RowSource<f32>, K: RowSink<f32>>(
    m: &Model<'_>,
    cfg: &GraphConfig,
    src: &mut S,
    sink: &mut K,
    scratch: &mut [u8],
) -> Result<(), Error> {
    cfg.validate()?;
    check_scratch(scratch, cfg.stream_scratch_bytes(elem_sizes(m.dtype())))?;
    let nodes = cfg.nodes();
    let w = cfg.w;
    let widest = cfg.widest_mid();
    let mut c = Carver::new(scratch);
    let x: &mut [f32] = c.take(w * cfg.c_in)?;
    let mut a: &mut [A] = c.take(if nodes.len() > 1 { w * widest } else { 0 })?;
    let mut b: &mut [A] = c.take(if nodes.len() > 2 { w * widest } else { 0 })?;
    let y: &mut [f32] = c.take(w * cfg.c_out)?;
    for row in 0..cfg.h {
        src.read(row, 0, x)?;
        for (i, nd) in nodes.iter().enumerate() {
            let (ci, co) = nd.widths(cfg.c_in, cfg.c_out);
            let act = nd.act();
            let k = super::float_index(nodes, i);
            let (wt, bias) = (m.graph_weights::<W>(k)?, m.f32s(k + 1)?);
            let (act, bias) = (activation(act), Some(bias));
            let last = i + 1 == nodes.len();
            match (i == 0, last) {
                (true, true) => pointwise(&*x, ci, wt, bias, co, act, &mut *y)?,
                (true, false) => pointwise(&*x, ci, wt, bias, co, act, &mut a[..w * co])?,
                (false, true) => pointwise(&a[..w * ci], ci, wt, bias, co, act, &mut *y)?,
                (false, false) => {
                    pointwise(&a[..w * ci], ci, wt, bias, co, act, &mut b[..w * co])?;
                    core::mem::swap(&mut a, &mut b);
                }
            }
        }
        sink.write(row, 0, y)?;
    }
    Ok(())
}
