#!/usr/bin/env bash
# A longer run of the chaos test (e2e/tests/chaos.rs; CI runs 10 rounds through hack/e2e.sh):
# SIGKILL of the controller at random points of rollouts, between a create and a start, and
# between a rotation move's disconnect and connect; then exact convergence checked every round.
# Real engine, real git, the real binary.
#
# usage: hack/chaos.sh [ROUNDS]     (default 50; 10-30 s a round on 2 cores, with the load)
# env:   MEME_CHAOS_SEED=<seed>     replays a run (the test prints its seed first)
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${1:-50}
if ! docker info >/dev/null 2>&1; then
    echo "chaos: the Docker engine is not reachable" >&2
    exit 1
fi
cargo build --locked -p meme-controller
hack/build-images.sh v1 v2 v3 >/dev/null
MEME_CHAOS_ROUNDS=$rounds exec cargo test --locked -p meme-e2e --test chaos -- --nocapture --test-threads 1
