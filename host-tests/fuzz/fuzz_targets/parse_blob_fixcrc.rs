//! Like `parse_blob`, but first makes the length field and the CRC trailer consistent with the
//! mutated bytes, so that the fuzzer spends its time on the checks *behind* the CRC (header
//! limits, the tensor table, int8 parameters) and on the forward pass of blobs that pass them.
#![no_main]

use ldp_core::blob::crc::crc32;
use ldp_core::Model;
use libfuzzer_sys::fuzz_target;

const MAX_RUN_ELEMS: usize = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let mut words = vec![0u128; data.len().div_ceil(16)];
    let aligned: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
    let bytes = &mut aligned[..data.len()];
    bytes.copy_from_slice(data);
    let n = bytes.len();
    if n >= 68 {
        bytes[44..48].copy_from_slice(&(n as u32).to_le_bytes());
        let crc = crc32(&bytes[..n - 4]);
        bytes[n - 4..].copy_from_slice(&crc.to_le_bytes());
    }
    let Ok(model) = Model::parse(bytes) else {
        return;
    };
    for i in 0..model.tensor_count() + 1 {
        let _ = model.tensor(i);
    }
    let (inp, out, scr) = (model.input_len(), model.output_len(), model.scratch_bytes());
    if inp + out + scr / 4 > MAX_RUN_ELEMS {
        return;
    }
    let x: Vec<f32> = (0..inp).map(|i| (i % 7) as f32 - 3.0).collect();
    let mut y = vec![0.0f32; out];
    let mut scratch_words = vec![0u128; scr.div_ceil(16)];
    let scratch: &mut [u8] = bytemuck::cast_slice_mut(&mut scratch_words);
    let _ = model.forward(&x, &mut y, &mut scratch[..scr]);
});
