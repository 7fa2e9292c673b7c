#!/usr/bin/env bash
# Runs the e2e suite against the real Docker engine: builds the binaries and the local test
# images, then runs e2e/tests one test at a time (they share one engine). The engine-restart
# test stops and starts dockerd, so it runs last, on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
    echo "e2e: the Docker engine is not reachable (e2e tests never skip)" >&2
    exit 1
fi
cargo build --locked -p meme-controller -p memectl
hack/build-images.sh >/dev/null
cargo test --locked -p meme-e2e --no-fail-fast -- --test-threads 1 "$@"
