//! Arbitrary bytes → `Model::parse` (from a 16-byte aligned copy, as on the device). A blob that
//! parses is run once on a zero input. Neither may panic, whatever the bytes.
#![no_main]

use ldp_core::Model;
use libfuzzer_sys::fuzz_target;

/// Largest forward pass worth running per input (elements of input + output + scratch):
/// a valid header may declare a big grid, and the fuzzer should spend its time on parsing.
const MAX_RUN_ELEMS: usize = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let mut words = vec![0u128; data.len().div_ceil(16)];
    let aligned: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    let bytes = &mut aligned[..data.len()];
    bytes.copy_from_slice(data);
    let Ok(model) = Model::parse(bytes) else {
        return;
    };
    // Every accessor of a parsed model must be safe to call.
    for i in 0..model.tensor_count() + 1 {
        let _ = model.tensor(i);
    }
    let (inp, out, scr) = (model.input_len(), model.output_len(), model.scratch_bytes());
    if inp + out + scr / 4 > MAX_RUN_ELEMS {
        return;
    }
    let x = vec![0.0f32; inp];
    let mut y = vec![0.0f32; out];
    let mut scratch_words = vec![0u128; scr.div_ceil(16)];
    let scratch: &mut [u8] = bytemuck::cast_slice_mut(&mut scratch_words);
    let _ = model.forward(&x, &mut y, &mut scratch[..scr]);
});
