#!/usr/bin/env bash
# The test command (README, .ci/run): static checks, then unit and integration tests, then the
# e2e suite against the real Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."

hack/verify.sh

echo "== unit and integration tests"
cargo test --workspace --locked --exclude meme-e2e

if [ -d e2e ]; then
    echo "== e2e tests (real Docker engine, real git, real binaries)"
    hack/e2e.sh
fi
