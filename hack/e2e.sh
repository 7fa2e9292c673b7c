#!/usr/bin/env bash
# Runs the e2e suite against the real Docker engine: builds the binaries and the local test
# images, then runs e2e/tests one test at a time (they share one engine). The engine-restart
# test stops and starts dockerd, which stops every container on the host: it runs only when
# MEME_E2E_ENGINE_RESTART=1 (.ci/run sets it), last and on its own.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! docker info >/dev/null 2>&1; then
    echo "e2e: the Docker engine is not reachable (e2e tests never skip)" >&2
    exit 1
fi
cargo build --locked -p meme-controller -p memectl
hack/build-images.sh >/dev/null
# Every e2e test binary but the engine restart, then that one alone.
targets=()
for f in e2e/tests/*.rs; do
    name=$(basename "$f" .rs)
    [ "$name" = engine_restart ] || targets+=(--test "$name")
done
cargo test --locked -p meme-e2e --no-fail-fast "${targets[@]}" -- --test-threads 1 "$@"
if [ "${MEME_E2E_ENGINE_RESTART:-}" = 1 ]; then
    cargo test --locked -p meme-e2e --test engine_restart -- --test-threads 1 --ignored "$@"
else
    echo "e2e: engine_restart not run (it stops dockerd; MEME_E2E_ENGINE_RESTART=1 opts in)" >&2
fi
