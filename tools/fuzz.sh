#!/usr/bin/env bash
# Runs every cargo-fuzz target of host-tests/fuzz for a bounded time each (default 60 s), from
# the committed seed corpus, and fails on the first crash, leak or timeout (libFuzzer's exit
# code). For CI: needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz --locked`: 6 min 22 s measured with `-j 1` on a shared 2-core
# machine; with FUZZ_INSTALL=1 this script installs it when it is missing). The first run also
# builds the instrumented targets (about 5 min there); FUZZ_SECONDS=30 took 6.5 min in all.
#
#   tools/fuzz.sh                 # 60 s per target
#   FUZZ_SECONDS=300 tools/fuzz.sh
#
# A crash leaves its input in host-tests/fuzz/artifacts/<target>/ (see host-tests/fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/../host-tests/fuzz"
secs="${FUZZ_SECONDS:-60}"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: no nightly toolchain (rustup toolchain install nightly); skipped" >&2
    exit 1
fi
if ! cargo +nightly fuzz --help >/dev/null 2>&1; then
    if [ "${FUZZ_INSTALL:-0}" = 1 ]; then
        cargo install cargo-fuzz --locked
    else
        echo "fuzz: cargo-fuzz is not installed (cargo install cargo-fuzz --locked, or FUZZ_INSTALL=1)" >&2
        exit 1
    fi
fi

targets=$(cargo +nightly fuzz list)
for t in $targets; do
    corpus="corpus/$t"
    mkdir -p "$corpus"
    cp -n seeds/parse_blob/* "$corpus/" 2>/dev/null || true
    echo "fuzz: $t for ${secs} s"
    start=$(date +%s)
    cargo +nightly fuzz run "$t" "$corpus" -- -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1
    echo "fuzz: $t ran $(( $(date +%s) - start )) s (build included), no crash"
done
