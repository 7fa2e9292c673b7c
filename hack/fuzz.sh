#!/usr/bin/env bash
# A bounded coverage-guided fuzz run of the manifest loader (fuzz/, cargo fuzz + libFuzzer, with
# AddressSanitizer). Usage: hack/fuzz.sh [SECONDS] (default $MEME_FUZZ_SECONDS, else 60).
#
# cargo fuzz needs nightly compiler flags (-Zsanitizer, sancov passes). The only toolchain on
# our machines is stable and no other can be fetched, so the flags are unlocked with
# RUSTC_BOOTSTRAP=1 on stable (measured: stable 1.95 builds and runs the ASan target). A crash,
# a leak, an abort, a timeout or going over the memory limit fails the run; the input that did
# it is kept under fuzz/artifacts/ and printed as a reproduction command.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-${MEME_FUZZ_SECONDS:-60}}
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi

# Seeds: every manifest we ship and every case of the loader's error corpus. The writable
# corpus is a temporary folder, so runs do not accumulate files in the checkout.
corpus=$(mktemp -d)
seeds=$(mktemp -d)
trap 'rm -rf "$corpus" "$seeds"' EXIT
i=0
while IFS= read -r -d '' f; do
    cp "$f" "$seeds/seed-$i"
    i=$((i + 1))
done < <(find manifests controller/api/tests/corpus -name '*.yaml' -print0)

export RUSTC_BOOTSTRAP=1
cd fuzz
# fuzz/ is its own workspace with its own lockfile (started from the main one, so the loader is
# fuzzed with the dependency versions we ship); it must be up to date.
cargo fetch --locked
# -max_len: manifests are small and the interesting structure fits in 4 KiB; bigger inputs only
# slow the run down. -timeout: one input may take long under ASan (the alias-bomb seed takes
# about 15 s), not forever. -rss_limit_mb: the loader must stay bounded on any input.
cargo fuzz run manifest_loader "$corpus" "$seeds" -- \
    -max_total_time="$seconds" -max_len=4096 -timeout=60 -rss_limit_mb=2048 -print_final_stats=1
