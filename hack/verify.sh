#!/usr/bin/env bash
# The static checks CI runs before any test: formatting, clippy with warnings as errors, the
# crds/ drift check, and the dependency audit against the offline RustSec snapshot.
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
# The offline RustSec snapshot sits beside the checkout (../shared); a clone elsewhere finds
# it at its fixed place on the machine, or via $ADVISORY_DB.
ADVISORY_DB=${ADVISORY_DB:-}
for candidate in ../shared/advisory-db /work/shared/advisory-db; do
    if [ -z "$ADVISORY_DB" ] && [ -d "$candidate" ]; then
        ADVISORY_DB=$candidate
    fi
done
if [ -z "$ADVISORY_DB" ]; then
    echo "no advisory database: set ADVISORY_DB or put the RustSec snapshot at ../shared/advisory-db" >&2
    exit 1
fi
if ! command -v cargo-audit >/dev/null 2>&1; then
    cargo install cargo-audit --locked --version 0.22.2
fi
cargo audit --db "$ADVISORY_DB" --no-fetch --deny warnings
