#!/usr/bin/env bash
# Builds the release binaries (meme-controller, meme-bench) and the local test images, then runs
# the benchmarks against the real Docker engine. See hack/bench/README.md.
#
# usage: hack/bench.sh [MEME-BENCH ARGS...]
#
#   hack/bench.sh                  every benchmark, full size (about 12 minutes), one summary
#   hack/bench.sh --quick          every benchmark, smoke size (about 3 minutes)
#   hack/bench.sh converge 1 10    one benchmark (meme-bench --help lists them):
#                                  converge rollout watch resync heal idle api traffic reload
#                                  serve admit recreate scale
#   hack/bench.sh traffic          image swaps under load through Caddy vs docker-compose up -d
#                                  (about 2.5 minutes, not part of `all`; needs docker-compose)
#   hack/bench.sh reload           Caddyfile changes under load, with vs without `reload`
#   hack/bench.sh scale            the issue's goals under load at 50, 100, 200 services (about 25
#                                  minutes, not part of `all`)
#   hack/bench.sh release          release binaries: a from-scratch static build in a temporary
#                                  target dir, its time, each binary's size (goal <= 20 MB)
#
# Without a subcommand, `all` is run. Figures go to stdout, progress to stderr.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  exit 0
fi

if [[ "${1:-}" == release ]]; then
  shift
  exec hack/release.sh --clean --no-tarball "$@"
fi

docker info >/dev/null 2>&1 || { echo "bench: the Docker engine is not reachable" >&2; exit 1; }
echo "== building meme-controller and meme-bench (release)" >&2
cargo build --release -p meme-controller -p meme-bench >&2
echo "== building the test images" >&2
# meme-demo-caddy:test (traffic, reload and so all) packs Debian's caddy package.
hack/build-images.sh v1 v2 caddy >&2

has_command=no
for arg in "$@"; do
  case "$arg" in
    converge | rollout | watch | resync | heal | idle | api | traffic | reload | serve | admit | recreate | scale | all | help) has_command=yes ;;
  esac
done
[[ "$has_command" == yes ]] || set -- "$@" all

exec target/release/meme-bench --controller target/release/meme-controller "$@"
