//! `ldp-quant`: see `ldp-quant --help`.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    ldp_quant::cli::main()
}
