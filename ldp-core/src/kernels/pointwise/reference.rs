//! The plain pointwise loop: one output at a time, serial f32 sum in input-channel order.

use crate::elem::Elem;
use crate::error::Error;
use crate::kernels::activation::Activation;

/// Reference pointwise convolution (see the module docs of [`super`] for the layout).
pub fn pointwise<X: Elem, W: Elem, Y: Elem>(
    x: &[X],
    c_in: usize,
    w: &[W],
    bias: Option<&[f32]>,
    c_out: usize,
    act: Option<Activation>,
    y: &mut [Y],
) -> Result<(), Error> {
    let pixels = super::check_shapes(x, c_in, w, bias, c_out, y)?;
    for p in 0..pixels {
        let xp = &x[p * c_in..(p + 1) * c_in];
        for o in 0..c_out {
            let wo = &w[o * c_in..(o + 1) * c_in];
            let mut acc = bias.map_or(0.0, |b| b[o]);
            for i in 0..c_in {
                acc += xp[i].to_f32() * wo[i].to_f32();
            }
            let v = act.map_or(acc, |a| a.apply(acc));
            y[p * c_out + o] = Y::from_f32(v);
        }
    }
    Ok(())
}
