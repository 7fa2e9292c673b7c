#!/usr/bin/env bash
# The static checks CI runs before any test: formatting, clippy with warnings as errors, the
# crds/ drift check, and the dependency audit (RustSec).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== crds/ drift"
hack/update-crds.sh >/dev/null
untracked=$(git ls-files --others --exclude-standard -- crds/)
if ! git diff --exit-code -- crds/ || [ -n "$untracked" ]; then
    echo "$untracked"
    echo "crds/ is out of date: run hack/update-crds.sh and commit the result" >&2
    exit 1
fi

echo "== cargo audit"
# The RustSec snapshot beside the checkout (../shared/advisory-db) when there is one (offline,
# reproducible), or $ADVISORY_DB; else cargo audit fetches the current database itself.
ADVISORY_DB=${ADVISORY_DB:-}
if [ -z "$ADVISORY_DB" ] && [ -d ../shared/advisory-db ]; then
    ADVISORY_DB=../shared/advisory-db
fi
if ! command -v cargo-audit >/dev/null 2>&1; then
    cargo install cargo-audit --locked --version 0.22.2
fi
# Both lockfiles: the workspace's and fuzz/'s (its own workspace, built by hack/fuzz.sh in CI).
for lock in Cargo.lock fuzz/Cargo.lock; do
    if [ -n "$ADVISORY_DB" ]; then
        cargo audit --db "$ADVISORY_DB" --no-fetch --deny warnings --file "$lock"
    else
        cargo audit --deny warnings --file "$lock"
    fi
done
