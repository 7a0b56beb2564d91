//! What the firmware does: run every embedded model, check it, report.

use core::ptr::addr_of_mut;

use defmt::{error, info, println, warn};
use ldp_core::{Aligned, Model};

use crate::board::{self, Board as _, Current};
use crate::check;
use crate::models::{self, Embedded, MODELS};
use crate::stack;

/// The scratch arena, sized at build time from the largest `scratch_bytes` of the models that fit
/// the board. On qemu-m55 in the DDR (`memory/qemu-mps3-an547.x`): not loaded, and not zeroed
/// by the startup code (QEMU's memory starts zeroed; the arena is scratch, written before read).
#[cfg_attr(feature = "qemu-m55", link_section = ".ldp_big.arena")]
static mut ARENA: Aligned<[u8; models::ARENA_BYTES]> = Aligned([0; models::ARENA_BYTES]);
/// The output buffer (on qemu-m55 in the DDR, as the arena).
#[cfg_attr(feature = "qemu-m55", link_section = ".ldp_big.output")]
static mut OUTPUT: Aligned<[f32; models::OUTPUT_LEN]> = Aligned([0.0; models::OUTPUT_LEN]);

/// Exit status when a model failed its check.
const EXIT_FAILED: i32 = 1;
/// Exit status when no model ran.
const EXIT_NOTHING_RAN: i32 = 3;

/// Flash the image would take with only this model: code and constants (the image minus every
/// embedded blob and test vector) plus this model's blob.
fn flash_bytes(m: &Embedded) -> usize {
    board::code_bytes() + m.blob.len()
}

/// The firmware's main function, called by the board's entry point after `Current::init()`.
#[cfg_attr(feature = "perf", allow(unreachable_code))]
pub fn run() -> ! {
    // SAFETY: `run` is entered once; these are the only references to the two statics.
    let arena: &'static mut [u8] = unsafe { &mut (*addr_of_mut!(ARENA)).0 };
    let output: &'static mut [f32] = unsafe { &mut (*addr_of_mut!(OUTPUT)).0 };
    models::keep_board_marker();
    selftest();
    #[cfg(feature = "perf")]
    crate::perf::run(arena, output);
    info!(
        "ldp firmware: board {=str}, {=usize} model(s) from {=str}, arena {=usize} bytes; image: {=usize} bytes of code and constants, {=usize} bytes of model data",
        models::BOARD,
        MODELS.len(),
        models::DATA_DIR,
        arena.len(),
        board::code_bytes(),
        {
            let (s, e) = board::model_data_range();
            e - s
        }
    );

    let (mut ran, mut failed) = (0usize, 0usize);
    for m in MODELS.iter() {
        match run_one(m, arena, output) {
            Some(true) => ran += 1,
            Some(false) => {
                ran += 1;
                failed += 1;
            }
            None => {}
        }
    }
    let code = if failed > 0 {
        error!("{=usize} of {=usize} model(s) failed", failed, ran);
        EXIT_FAILED
    } else if ran == 0 {
        error!("no model ran");
        EXIT_NOTHING_RAN
    } else {
        info!("all {=usize} model(s) passed", ran);
        0
    };
    Current::exit(code)
}

/// With `LDP_FW_SELFTEST=panic|fault` at build time: fail on purpose, to check that the failure
/// paths end the program with the right status (101, 102) instead of hanging.
fn selftest() {
    #[cfg(ldp_selftest = "panic")]
    panic!("self-test: panic on purpose");
    #[cfg(ldp_selftest = "fault")]
    {
        info!("self-test: executing an undefined instruction");
        // SAFETY: not safe at all, on purpose: the fault handler must end the program.
        unsafe { core::arch::asm!("udf #0") };
    }
}

/// Runs one model; `None` when it was skipped, else whether it passed.
fn run_one(m: &Embedded, arena: &mut [u8], output: &mut [f32]) -> Option<bool> {
    let board = models::BOARD;
    if m.scratch_bytes > arena.len() || m.expected.len() > output.len() {
        warn!(
            "SKIP board={=str} arch={=str} dtype={=str} reason=needs {=usize} bytes of scratch, the board's arena has {=usize}",
            board, m.arch, m.dtype, m.scratch_bytes, arena.len()
        );
        return None;
    }
    let out = &mut output[..m.expected.len()];
    // Stale values from the previous model must never pass the check.
    out.fill(f32::NAN);

    let model = Model::parse(m.blob);
    let scratch = &mut arena[..m.scratch_bytes];
    stack::paint();
    board::mark();
    let i0 = Current::insn_counter();
    let c0 = Current::cycle_counter();
    let result = match &model {
        Ok(model) => model.forward(m.input, out, scratch),
        Err(e) => Err(ldp_core::Error::Blob(*e)),
    };
    let c1 = Current::cycle_counter();
    let i1 = Current::insn_counter();
    board::mark();
    let stack_bytes = stack::high_water();
    let instructions = board::delta(i0, i1, Current::INSN_COUNTER_BITS);

    let verdict = check::compare(out, m.expected, m.tolerance);
    let ok = result.is_ok() && verdict.pass;
    if let Err(e) = result {
        error!("{=str}/{=str}: forward failed: {}", m.arch, m.dtype, e);
    }
    info!(
        "METRIC board={=str} arch={=str} dtype={=str} rel_l2={=f64} max_abs={=f32} mismatches={=usize} macs={=usize} params={=usize} blob_bytes={=usize}",
        board,
        m.arch,
        m.dtype,
        verdict.rel_l2,
        verdict.max_abs,
        verdict.mismatches,
        m.macs,
        m.params,
        m.blob.len()
    );
    if let (Some(c0), Some(c1)) = (c0, c1) {
        println!(
            "CYCLES board={=str} arch={=str} dtype={=str} cycles={=u64}",
            board,
            m.arch,
            m.dtype,
            board::delta(c0, c1, Current::CYCLE_COUNTER_BITS)
        );
    }
    println!(
        "RESULT board={=str} arch={=str} dtype={=str} ok={=bool} instructions={=u64} arena_bytes={=usize} stack_bytes={=usize} flash_bytes={=usize}",
        board,
        m.arch,
        m.dtype,
        ok,
        instructions,
        m.scratch_bytes,
        stack_bytes,
        flash_bytes(m)
    );
    Some(ok)
}
