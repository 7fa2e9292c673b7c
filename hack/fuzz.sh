#!/usr/bin/env bash
# Bounded coverage-guided fuzz runs (fuzz/, cargo fuzz + libFuzzer, with AddressSanitizer) of
# the manifest loader and the webhook verifier, one after the other in SECONDS in all.
# Usage: hack/fuzz.sh [SECONDS] (default $MEME_FUZZ_SECONDS, else 60).
#
# cargo fuzz needs nightly compiler flags (-Zsanitizer, sancov passes). The only toolchain on
# our machines is stable and no other can be fetched, so the flags are unlocked with
# RUSTC_BOOTSTRAP=1 on stable (measured: stable 1.95 builds and runs the ASan targets). A crash,
# a leak, an abort, a timeout or going over the memory limit fails the run; the input that did
# it is kept under fuzz/artifacts/<target>/ and printed as a reproduction command.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-${MEME_FUZZ_SECONDS:-60}}
# The verifier's input space is small (a secret, a body, three headers): its coverage levels
# off quickly (measured, 60 s alone: 562 of its 566 edges after ~15 s, 565 after ~28 s; ~14,000
# runs/s), so it gets a quarter of the time and the loader, a whole YAML parser, the rest.
verifier_seconds=$((seconds / 4 > 0 ? seconds / 4 : 1))
loader_seconds=$((seconds - verifier_seconds > 0 ? seconds - verifier_seconds : 1))
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version 0.13.2
fi

# Seeds: every manifest we ship and every case of the loader's error corpus. The writable
# corpora are temporary folders, so runs do not accumulate files in the checkout.
corpus=$(mktemp -d)
seeds=$(mktemp -d)
verifier_corpus=$(mktemp -d)
trap 'rm -rf "$corpus" "$seeds" "$verifier_corpus"' EXIT
i=0
while IFS= read -r -d '' f; do
    cp "$f" "$seeds/seed-$i"
    i=$((i + 1))
done < <(find manifests controller/api/tests/corpus -name '*.yaml' -print0)

export RUSTC_BOOTSTRAP=1
cd fuzz
# fuzz/ is its own workspace with its own lockfile (started from the main one, so the code is
# fuzzed with the dependency versions we ship); it must be up to date.
cargo fetch --locked
# One instrumented build of both targets (about 5-9 minutes on 2 cores the first time).
cargo fuzz build

echo "== fuzz: manifest_loader for ${loader_seconds}s"
# -max_len: manifests are small and the interesting structure fits in 4 KiB; bigger inputs only
# slow the run down. -timeout: one input may take long under ASan (the alias-bomb seed takes
# about 15 s), not forever. -rss_limit_mb: the loader must stay bounded on any input.
cargo fuzz run manifest_loader "$corpus" "$seeds" -- \
    -max_total_time="$loader_seconds" -max_len=4096 -timeout=60 -rss_limit_mb=2048 -print_final_stats=1

echo "== fuzz: webhook_verifier for ${verifier_seconds}s"
# Webhook bodies are bounded by the HTTP layer; 4 KiB covers every branch of the verifier.
cargo fuzz run webhook_verifier "$verifier_corpus" -- \
    -max_total_time="$verifier_seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
