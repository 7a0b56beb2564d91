//! The float (f32/f16) whole-tensor executor of graph architectures: walks the nodes, node 0
//! reading the input, the last writing the output, the others ping-ponging between two scratch
//! maps ([`GraphConfig::scratch_len`]).

use super::{Act, GraphConfig, Op};
use crate::blob::Model;
use crate::elem::Elem;
use crate::error::{check_len, Error};
use crate::kernels::activation::Activation;
use crate::kernels::pointwise::pointwise;

pub(super) const fn activation(a: Act) -> Option<Activation> {
    match a {
        Act::None => None,
        Act::Gelu => Some(Activation::Gelu),
    }
}

/// Runs a float graph blob (`W` = the blob's weight type) on `input` (`[N][c_in]`), writing
/// `output` (`[N][c_out]`); `scratch` needs [`GraphConfig::scratch_len`] elements.
pub fn forward<W: Elem, A: Elem>(
    m: &Model<'_>,
    cfg: &GraphConfig,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [A],
) -> Result<(), Error> {
    let weights = |i: usize| -> Result<(&[W], &[f32]), Error> {
        let k = super::float_index(cfg.nodes(), i);
        Ok((m.graph_weights::<W>(k)?, m.f32s(k + 1)?))
    };
    forward_with(cfg, weights, input, output, scratch)
}

/// [`forward`] with the weights of node `i` (`(weight, bias)` of its Linear) from `weights`:
/// the same executor for a blob and for an owned model (`ldp-quant`'s f32 reference).
pub fn forward_with<'w, W: Elem + 'w, A: Elem>(
    cfg: &GraphConfig,
    weights: impl Fn(usize) -> Result<(&'w [W], &'w [f32]), Error>,
    input: &[f32],
    output: &mut [f32],
    scratch: &mut [A],
) -> Result<(), Error> {
    cfg.validate()?;
    check_len("input", input, cfg.input_len())?;
    check_len("output", output, cfg.output_len())?;
    let need = cfg.scratch_len();
    if scratch.len() < need {
        return Err(Error::ScratchTooSmall {
            need,
            have: scratch.len(),
        });
    }
    let nodes = cfg.nodes();
    let n = cfg.tokens();
    let half = if nodes.len() > 2 { need / 2 } else { need };
    let (mut cur, mut other) = scratch[..need].split_at_mut(half);
    for (i, nd) in nodes.iter().enumerate() {
        let (ci, co) = nd.widths(cfg.c_in, cfg.c_out);
        let Op::Linear { act, .. } = nd.op;
        let (w, b) = weights(i)?;
        check_len("Linear weight", w, ci * co)?;
        check_len("Linear bias", b, co)?;
        let act = activation(act);
        let last = i + 1 == nodes.len();
        match (i == 0, last) {
            (true, true) => pointwise(input, ci, w, Some(b), co, act, output)?,
            (true, false) => pointwise(input, ci, w, Some(b), co, act, &mut cur[..n * co])?,
            (false, true) => pointwise(&cur[..n * ci], ci, w, Some(b), co, act, output)?,
            (false, false) => {
                pointwise(
                    &cur[..n * ci],
                    ci,
                    w,
                    Some(b),
                    co,
                    act,
                    &mut other[..n * co],
                )?;
                core::mem::swap(&mut cur, &mut other);
            }
        }
    }
    Ok(())
}
