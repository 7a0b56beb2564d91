//! Serve mode (`--features <board>,serve`): the board as a device in the loop.
//!
//! The firmware holds no model. It answers framed requests on its UART (`src/uart.rs`): HELLO
//! (capabilities), UPLOAD (a model blob, validated with `Model::parse`), RUN (one input; the
//! reply carries the output, the instruction count and the RAM used). The protocol is described
//! in `firmware/README.md` ("Serve mode") and implemented on the host by `ldp-quant`'s
//! `device` module.
//!
//! Memory: one fixed static pool (`POOL_BYTES`, the board's arena budget from build.rs). An
//! uploaded blob lives at its start; a run lays out the scratch arena, the output and the input
//! after it, each 16-byte aligned. What does not fit is refused with "does not fit: needs N
//! bytes, have M" before a byte of it is stored. Payloads are streamed straight into the pool
//! (no frame buffer); replies are streamed out with their CRC computed on the way.
//!
//! A bad frame never wedges the device: the receiver hunts for the magic, checks the header's
//! CRC before trusting its length, refuses unknown types and impossible lengths as soon as the
//! header is in, checks the payload's CRC, and gives up on a frame whose bytes stop coming
//! (`TIMEOUT_POLLS` empty polls) with a `TRUNCATED` error.

use core::fmt::Write as _;
use core::ptr::addr_of_mut;

use defmt::info;
use ldp_core::stream::crc32_update;
use ldp_core::{Aligned, Model};

use crate::board::{self, Board as _, Current};
use crate::stack;
use crate::uart::Uart;

mod gen {
    include!(concat!(env!("OUT_DIR"), "/serve_board.rs"));
}

/// Protocol version reported by HELLO.
const VERSION: u16 = 1;
/// Frame magic.
const MAGIC: [u8; 4] = *b"LDPF";
/// Header bytes: magic, type, flags, seq (u16), length (u32), header CRC (u32).
const HEADER: usize = 16;
/// Sequence number of replies that cannot be attributed to a request (garbled header).
const SEQ_NONE: u16 = 0xFFFF;

// Request types.
const T_HELLO: u8 = 0x01;
const T_UPLOAD: u8 = 0x02;
const T_RUN: u8 = 0x03;
// Reply types.
const T_HELLO_OK: u8 = 0x81;
const T_UPLOAD_OK: u8 = 0x82;
const T_OUTPUT: u8 = 0x83;
const T_ERROR: u8 = 0xEE;

// Error codes.
const E_HEADER_CRC: u16 = 1;
const E_PAYLOAD_CRC: u16 = 2;
const E_UNKNOWN_TYPE: u16 = 3;
const E_TOO_LARGE: u16 = 4;
const E_TRUNCATED: u16 = 5;
const E_BAD_BLOB: u16 = 6;
const E_NO_MODEL: u16 = 7;
const E_BAD_LENGTH: u16 = 8;
const E_FORWARD: u16 = 9;

/// Empty polls of the UART after which a frame that stopped arriving is abandoned.
const TIMEOUT_POLLS: u32 = gen::TIMEOUT_POLLS;

/// The pool: blob, scratch, output, input.
static mut POOL: Aligned<[u8; gen::POOL_BYTES]> = Aligned([0; gen::POOL_BYTES]);

fn align16(n: usize) -> Option<usize> {
    Some(n.checked_add(15)? & !15)
}

/// A short message built without allocation (truncated at 200 bytes).
struct Msg {
    buf: [u8; 200],
    len: usize,
}

impl Msg {
    fn new() -> Msg {
        Msg {
            buf: [0; 200],
            len: 0,
        }
    }
    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl core::fmt::Write for Msg {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Waits for one byte; `None` after `TIMEOUT_POLLS` empty polls.
fn read_timeout() -> Option<u8> {
    let mut polls = 0u32;
    loop {
        if let Some(b) = Uart::read() {
            return Some(b);
        }
        polls += 1;
        if polls >= TIMEOUT_POLLS {
            return None;
        }
    }
}

/// Fills `buf` (with the timeout per byte); `Err(got)` when the bytes stop.
fn read_exact(buf: &mut [u8]) -> Result<(), usize> {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = read_timeout().ok_or(i)?;
    }
    Ok(())
}

/// A reply being written: header first, then payload pieces, then the CRC.
struct Reply {
    crc: u32,
}

impl Reply {
    fn start(ty: u8, seq: u16, len: usize) -> Reply {
        let mut h = [0u8; HEADER];
        h[..4].copy_from_slice(&MAGIC);
        h[4] = ty;
        h[6..8].copy_from_slice(&seq.to_le_bytes());
        h[8..12].copy_from_slice(&(len as u32).to_le_bytes());
        let hc = crc32_update(0, &h[..12]);
        h[12..16].copy_from_slice(&hc.to_le_bytes());
        for &b in &h {
            Uart::write(b);
        }
        Reply { crc: 0 }
    }
    fn put(&mut self, data: &[u8]) {
        self.crc = crc32_update(self.crc, data);
        for &b in data {
            Uart::write(b);
        }
    }
    fn finish(self) {
        for b in self.crc.to_le_bytes() {
            Uart::write(b);
        }
    }
}

fn send(ty: u8, seq: u16, payload: &[u8]) {
    let mut r = Reply::start(ty, seq, payload.len());
    r.put(payload);
    r.finish();
}

fn send_error(seq: u16, code: u16, msg: &Msg) {
    let mut r = Reply::start(T_ERROR, seq, 4 + msg.len);
    r.put(&code.to_le_bytes());
    r.put(&[0, 0]);
    r.put(msg.bytes());
    r.finish();
}

macro_rules! fail {
    ($seq:expr, $code:expr, $($arg:tt)*) => {{
        let mut m = Msg::new();
        let _ = write!(m, $($arg)*);
        send_error($seq, $code, &m);
    }};
}

/// Receives `len` payload bytes into `dst` (or discards them when `dst` is `None`) and checks
/// the CRC that follows. `Err(())` after an error reply has been sent.
fn receive_payload(seq: u16, len: usize, mut dst: Option<&mut [u8]>) -> Result<(), ()> {
    let mut crc = 0u32;
    for i in 0..len {
        let Some(b) = read_timeout() else {
            fail!(
                seq,
                E_TRUNCATED,
                "truncated frame: got {} of {} payload bytes, then nothing",
                i,
                len
            );
            return Err(());
        };
        crc = crc32_update(crc, &[b]);
        if let Some(d) = dst.as_deref_mut() {
            d[i] = b;
        }
    }
    let mut c = [0u8; 4];
    if let Err(got) = read_exact(&mut c) {
        fail!(
            seq,
            E_TRUNCATED,
            "truncated frame: got {} of the 4 CRC bytes",
            got
        );
        return Err(());
    }
    let want = u32::from_le_bytes(c);
    if want != crc {
        fail!(
            seq,
            E_PAYLOAD_CRC,
            "payload CRC mismatch: frame says {:#010x}, the {} bytes give {:#010x}",
            want,
            len,
            crc
        );
        return Err(());
    }
    Ok(())
}

/// Offsets in the pool of a run of this model: scratch, output, input, end (blob first, each
/// part 16-aligned). `None` when the sizes overflow the address space (it cannot fit then).
fn layout(blob_len: usize, model: &Model<'_>) -> Option<(usize, usize, usize, usize)> {
    let scratch_at = align16(blob_len)?;
    let out_at = scratch_at.checked_add(align16(model.scratch_bytes())?)?;
    let in_at = out_at.checked_add(align16(model.output_len().checked_mul(4)?)?)?;
    let end = in_at.checked_add(align16(model.input_len().checked_mul(4)?)?)?;
    Some((scratch_at, out_at, in_at, end))
}

fn f32s(bytes: &mut [u8]) -> &mut [f32] {
    // SAFETY: every bit pattern is a valid f32; `align_to_mut` only yields the aligned middle.
    let (head, mid, _) = unsafe { bytes.align_to_mut::<f32>() };
    debug_assert!(head.is_empty());
    mid
}

fn kernels() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "neon"
    } else if cfg!(target_abi = "eabihf") {
        // thumbv7em / thumbv8m.main: ldp-core's Arm DSP int8 kernels.
        "arm-dsp"
    } else {
        "portable"
    }
}

fn isa() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else if cfg!(target_abi = "eabihf") {
        "armv7e-m"
    } else {
        "armv7-m"
    }
}

/// The serve loop; never returns.
pub fn run() -> ! {
    Uart::init();
    gen::keep_board_marker();
    // SAFETY: `run` is entered once; this is the only reference to the pool.
    let pool: &'static mut [u8] = unsafe { &mut (*addr_of_mut!(POOL)).0 };
    info!(
        "ldp serve: board {=str}, protocol {=u16}, pool {=usize} bytes, code {=usize} bytes",
        gen::BOARD,
        VERSION,
        pool.len(),
        board::code_bytes()
    );
    // Bytes of the uploaded blob (valid per Model::parse), if any.
    let mut blob: Option<usize> = None;
    let mut window = [0u8; 4];
    loop {
        // Hunt for the magic (blocking: no timeout between frames).
        let b = loop {
            if let Some(b) = Uart::read() {
                break b;
            }
        };
        window = [window[1], window[2], window[3], b];
        if window != MAGIC {
            continue;
        }
        window = [0; 4];
        let mut h = [0u8; HEADER];
        h[..4].copy_from_slice(&MAGIC);
        if let Err(got) = read_exact(&mut h[4..]) {
            fail!(
                SEQ_NONE,
                E_TRUNCATED,
                "truncated frame: got {} of the 12 header bytes after the magic",
                got
            );
            continue;
        }
        let hc = u32::from_le_bytes([h[12], h[13], h[14], h[15]]);
        let seq = u16::from_le_bytes([h[6], h[7]]);
        if crc32_update(0, &h[..12]) != hc {
            fail!(
                SEQ_NONE,
                E_HEADER_CRC,
                "header CRC mismatch: the frame header is corrupted (resynchronizing on the next magic)"
            );
            continue;
        }
        let ty = h[4];
        let len = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
        match ty {
            T_HELLO => {
                if len != 0 {
                    fail!(
                        seq,
                        E_BAD_LENGTH,
                        "HELLO takes no payload, got {} bytes",
                        len
                    );
                    continue;
                }
                if receive_payload(seq, 0, None).is_err() {
                    continue;
                }
                hello(seq, pool.len(), blob);
            }
            T_UPLOAD => {
                if len > pool.len() {
                    fail!(
                        seq,
                        E_TOO_LARGE,
                        "does not fit: the blob needs {} bytes, have {}",
                        len,
                        pool.len()
                    );
                    continue;
                }
                blob = None;
                if receive_payload(seq, len, Some(&mut pool[..len])).is_err() {
                    continue;
                }
                let model = match Model::parse(&pool[..len]) {
                    Ok(m) => m,
                    Err(e) => {
                        fail!(seq, E_BAD_BLOB, "invalid model blob: {}", e);
                        continue;
                    }
                };
                let Some((_, _, _, end)) = layout(len, &model) else {
                    fail!(
                        seq,
                        E_TOO_LARGE,
                        "does not fit: the model's buffers exceed the address space, have {}",
                        pool.len()
                    );
                    continue;
                };
                if end > pool.len() {
                    fail!(
                        seq,
                        E_TOO_LARGE,
                        "does not fit: needs {} bytes (blob {} + scratch {} + output {} + input {}), have {}",
                        end,
                        len,
                        model.scratch_bytes(),
                        model.output_len() * 4,
                        model.input_len() * 4,
                        pool.len()
                    );
                    continue;
                }
                let mut p = [0u8; 24];
                p[0..4].copy_from_slice(&(len as u32).to_le_bytes());
                p[4..8].copy_from_slice(&(model.scratch_bytes() as u32).to_le_bytes());
                p[8..12].copy_from_slice(&(model.input_len() as u32).to_le_bytes());
                p[12..16].copy_from_slice(&(model.output_len() as u32).to_le_bytes());
                p[16..20].copy_from_slice(&(end as u32).to_le_bytes());
                p[20] = model.arch() as u8;
                p[21] = model.dtype() as u8;
                info!(
                    "upload: {=str} {=str}, {=usize} bytes, needs {=usize} bytes of RAM",
                    model.arch().name(),
                    model.dtype().name(),
                    len,
                    end
                );
                blob = Some(len);
                send(T_UPLOAD_OK, seq, &p);
            }
            T_RUN => {
                let Some(blob_len) = blob else {
                    fail!(seq, E_NO_MODEL, "no model: UPLOAD a blob first");
                    continue;
                };
                let pool_len = pool.len();
                let (blob_part, rest) = pool.split_at_mut(blob_len);
                let model = match Model::parse(blob_part) {
                    Ok(m) => m,
                    Err(e) => {
                        fail!(seq, E_BAD_BLOB, "stored blob became invalid: {}", e);
                        continue;
                    }
                };
                // The upload checked the layout; it cannot overflow or exceed the pool now.
                let Some((scratch_at, out_at, in_at, end)) = layout(blob_len, &model) else {
                    fail!(seq, E_BAD_BLOB, "stored blob has no valid layout");
                    continue;
                };
                if end > pool_len {
                    fail!(
                        seq,
                        E_TOO_LARGE,
                        "does not fit: needs {} bytes, have {}",
                        end,
                        pool_len
                    );
                    continue;
                }
                if Some(len) != model.input_len().checked_mul(4) {
                    fail!(
                        seq,
                        E_BAD_LENGTH,
                        "the model takes {} f32 ({} bytes) of input, the frame has {} bytes",
                        model.input_len(),
                        model.input_len() * 4,
                        len
                    );
                    continue;
                }
                // Offsets relative to `rest`, which starts at `blob_len`.
                let (scratch_at, out_at, in_at, end) = (
                    scratch_at - blob_len,
                    out_at - blob_len,
                    in_at - blob_len,
                    end - blob_len,
                );
                let (scratch, tail) = rest[..end].split_at_mut(out_at);
                let scratch = &mut scratch[scratch_at..scratch_at + model.scratch_bytes()];
                let (out, input) = tail.split_at_mut(in_at - out_at);
                let input = &mut input[..len];
                if receive_payload(seq, len, Some(input)).is_err() {
                    continue;
                }
                let out = &mut f32s(out)[..model.output_len()];
                out.fill(f32::NAN);
                let x = &*f32s(input);
                stack::paint();
                board::mark();
                let i0 = Current::insn_counter();
                let c0 = Current::cycle_counter();
                let r = model.forward(x, out, scratch);
                let c1 = Current::cycle_counter();
                let i1 = Current::insn_counter();
                board::mark();
                let stack_bytes = stack::high_water();
                if let Err(e) = r {
                    fail!(seq, E_FORWARD, "forward pass failed: {}", e);
                    continue;
                }
                let insns = board::delta(i0, i1, Current::INSN_COUNTER_BITS);
                let cycles = match (c0, c1) {
                    (Some(a), Some(b)) => board::delta(a, b, Current::CYCLE_COUNTER_BITS),
                    _ => 0,
                };
                let mut m = [0u8; 32];
                m[0..8].copy_from_slice(&insns.to_le_bytes());
                m[8..16].copy_from_slice(&cycles.to_le_bytes());
                m[16..20].copy_from_slice(&(model.scratch_bytes() as u32).to_le_bytes());
                m[20..24].copy_from_slice(&(stack_bytes as u32).to_le_bytes());
                m[24..28].copy_from_slice(&((blob_len + end) as u32).to_le_bytes());
                m[28..32].copy_from_slice(&(out.len() as u32).to_le_bytes());
                let mut r = Reply::start(T_OUTPUT, seq, 32 + out.len() * 4);
                r.put(&m);
                for v in out.iter() {
                    r.put(&v.to_le_bytes());
                }
                r.finish();
            }
            other => {
                fail!(
                    seq,
                    E_UNKNOWN_TYPE,
                    "unknown frame type {:#04x} (requests: 0x01 HELLO, 0x02 UPLOAD, 0x03 RUN)",
                    other
                );
            }
        }
    }
}

/// HELLO reply: version, pool size, flash free for blobs (0: blobs live in RAM), then
/// `key=value` text.
fn hello(seq: u16, pool: usize, blob: Option<usize>) {
    let mut m = Msg::new();
    let _ = write!(
        m,
        "board={} isa={} kernels={} f16arith={} dtypes=f32,f16,int8 counter={} model={}",
        gen::BOARD,
        isa(),
        kernels(),
        if ldp_core::kernels::cpu::fp16_arith() {
            "yes"
        } else {
            "no"
        },
        if cfg!(target_arch = "aarch64") {
            "pmu"
        } else if cfg!(feature = "real-cortex-m") {
            "dwt-cycles"
        } else {
            "none"
        },
        if blob.is_some() { "loaded" } else { "none" }
    );
    let mut r = Reply::start(T_HELLO_OK, seq, 12 + m.len);
    r.put(&VERSION.to_le_bytes());
    r.put(&[0, 0]);
    r.put(&(pool as u32).to_le_bytes());
    r.put(&0u32.to_le_bytes());
    r.put(m.bytes());
    r.finish();
}
