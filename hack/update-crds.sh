#!/usr/bin/env bash
# Regenerates crds/ (JSON Schema and Kubernetes CRD per kind) from the Rust types in
# controller/api. The files there are never edited by hand; hack/verify.sh fails on drift.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p meme-api --bin crdgen -- crds
