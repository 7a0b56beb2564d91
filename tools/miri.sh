#!/usr/bin/env bash
# Runs a bounded subset of ldp-core's tests under Miri (undefined-behaviour checker): the
# portable kernels, whatever the host CPU (Miri reports no AVX2, so the dispatchers take the
# portable paths; the AVX2/NEON/DSP kernels are not interpreted).
#
#   * tests/bad_dims.rs, whole: every public kernel with overflowing and inconsistent
#     dimensions (must return Err), and small valid calls of each (must succeed);
#   * tests/kernels.rs: `errors_not_panics_on_bad_lengths` and one proptest case of
#     `int8_add_kernels_equal_reference`.
#
# Measured on a shared 2-core machine: about 1 minute once the Miri sysroot exists (its first
# preparation adds a few minutes). The proptest suites of tests/kernels.rs are too slow for CI
# under Miri: one case of `depthwise_kernels_match_reference_bitwise` alone took 6 minutes.
#
# Needs nightly with the miri component: rustup +nightly component add miri rust-src
set -euo pipefail
cd "$(dirname "$0")/.."
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-disable-isolation}"   # proptest reads the working directory
export PROPTEST_CASES="${PROPTEST_CASES:-1}"
cargo +nightly miri test -p ldp-core --test bad_dims
cargo +nightly miri test -p ldp-core --test kernels -- --exact \
    errors_not_panics_on_bad_lengths int8_add_kernels_equal_reference
