#!/usr/bin/env bash
# Builds the static meme-testserver binary and packs it into local `FROM scratch` demo/test images.
#
# usage: hack/build-images.sh [IMAGE...]
#
#   IMAGE is one of the images below, either in full (meme-demo:v2) or short (v2, hc:v1, hc).
#   Default: all of them.
#     $MEME_IMAGE_PREFIX:v1, :v2, :v3   same binary, VERSION=v1/v2/v3 (so the image ids differ)
#     $MEME_IMAGE_PREFIX-hc:v1          VERSION=v1 plus a Docker HEALTHCHECK (`meme-testserver check`)
#     $MEME_IMAGE_PREFIX-caddy:test     Debian's `caddy` binary with the libraries `ldd` lists, FROM scratch
#                                       (needs the `caddy` package: .ci/run installs it)
#
# env: MEME_IMAGE_PREFIX   image name prefix (default meme-demo)
#      MEME_RUST_TARGET    Rust target triple (default x86_64-unknown-linux-gnu)
#
# Needs only cargo and a Docker engine (classic builder is fine): no registry, no base image.
# The binary is built into target/static so the normal build cache is not invalidated. Re-runs are
# fast: cargo is incremental and unchanged images come straight from the Docker build cache.
# Every image is labelled pro.memeit.test-image=true, e.g. for cleanup:
#   docker image ls --filter label=pro.memeit.test-image=true
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
prefix="${MEME_IMAGE_PREFIX:-meme-demo}"
rust_target="${MEME_RUST_TARGET:-x86_64-unknown-linux-gnu}"
target_dir="$repo_root/target/static"
label="pro.memeit.test-image=true"

die() {
  echo "build-images: $*" >&2
  exit 1
}

# name -> "VERSION healthcheck(yes|no)"
declare -A images=(
  ["$prefix:v1"]="v1 no"
  ["$prefix:v2"]="v2 no"
  ["$prefix:v3"]="v3 no"
  ["$prefix-hc:v1"]="v1 yes"
)
all=("$prefix:v1" "$prefix:v2" "$prefix:v3" "$prefix-hc:v1" "$prefix-caddy:test")

resolve() {
  local arg="$1"
  case "$arg" in
    caddy) arg="$prefix-caddy:test" ;;
    hc) arg="$prefix-hc:v1" ;;
    hc:*) arg="$prefix-$arg" ;;
    v[0-9]*) arg="$prefix:$arg" ;;
  esac
  [[ -n "${images[$arg]+set}" || "$arg" == "$prefix-caddy:test" ]] || die "unknown image '$1' (known: ${all[*]}, or short: v1 v2 v3 hc caddy)"
  echo "$arg"
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

wanted=()
if [[ "${1:-}" == -h || "${1:-}" == --help ]]; then
  usage
  exit 0
elif (($# == 0)); then
  wanted=("${all[@]}")
else
  for arg in "$@"; do
    wanted+=("$(resolve "$arg")")
  done
fi

command -v cargo >/dev/null || die "cargo not found"
command -v docker >/dev/null || die "docker not found"
docker info >/dev/null 2>&1 || die "cannot reach the Docker engine (docker info failed)"

echo "==> building static meme-testserver ($rust_target, target dir ${target_dir#"$repo_root"/})"
# Static glibc: the binary must run FROM scratch. Debug info is dropped and symbols stripped to keep
# the images small; these overrides only apply to this separate target dir.
(
  cd "$repo_root"
  RUSTFLAGS='-C target-feature=+crt-static' \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    cargo build --release -p meme-testserver --target "$rust_target" --target-dir "$target_dir"
)
binary="$target_dir/$rust_target/release/meme-testserver"
[[ -x "$binary" ]] || die "expected binary at $binary"
if command -v file >/dev/null && ! file -L "$binary" | grep -q 'static'; then
  die "$binary is not statically linked: $(file -L "$binary")"
fi

context="$(mktemp -d "${TMPDIR:-/tmp}/meme-images.XXXXXX")"
trap 'rm -rf "$context"' EXIT
# rootfs/ is copied to / in one layer: the binary plus an empty world-writable /tmp (scratch has no
# directories at all, and /tmp/fail-health is how tests make /health fail).
mkdir -p "$context/rootfs/tmp"
chmod 1777 "$context/rootfs/tmp"
install -m 0755 "$binary" "$context/rootfs/meme-testserver"

# Debian's caddy is linked dynamically: the image gets the binary and every library `ldd`
# lists, at the same paths. HTTP only (tests on loopback); its state goes to /data and /config.
build_caddy() {
  local image="$1" caddy
  caddy="$(command -v caddy)" || die "the caddy image needs Debian's caddy package (apt-get install caddy)"
  local dir="$context/caddy"
  mkdir -p "$dir/rootfs/tmp" "$dir/rootfs/data" "$dir/rootfs/config" "$dir/rootfs/etc/caddy"
  chmod 1777 "$dir/rootfs/tmp"
  install -D -m 0755 "$caddy" "$dir/rootfs/usr/bin/caddy"
  ldd "$caddy" | grep -o '/[^ ]*' | while read -r lib; do
    install -D -m 0755 "$(readlink -f "$lib")" "$dir/rootfs$lib"
  done
  printf ':80 {\n\trespond "caddy up"\n}\n' >"$dir/rootfs/etc/caddy/Caddyfile"
  {
    echo "FROM scratch"
    echo "COPY rootfs/ /"
    echo "ENV XDG_DATA_HOME=/data XDG_CONFIG_HOME=/config HOME=/data"
    echo "LABEL $label"
    echo 'ENTRYPOINT ["/usr/bin/caddy"]'
    echo 'CMD ["run", "--config", "/etc/caddy/Caddyfile", "--adapter", "caddyfile"]'
  } >"$dir/Dockerfile"
  echo "==> docker build $image ($("$caddy" version | cut -d' ' -f1), from $caddy)"
  if ! errors="$(docker build --quiet --tag "$image" "$dir" 2>&1 >/dev/null)"; then
    echo "$errors" >&2
    die "docker build $image failed"
  fi
}

built=()
for image in "${wanted[@]}"; do
  if [[ "$image" == "$prefix-caddy:test" ]]; then
    build_caddy "$image"
    built+=("$image")
    continue
  fi
  read -r version healthcheck <<<"${images[$image]}"
  dockerfile="$context/Dockerfile.${image//[:\/]/_}"
  {
    echo "FROM scratch"
    echo "COPY rootfs/ /"
    echo "ENV PORT=8080"
    echo "EXPOSE 8080"
    echo "LABEL $label"
    if [[ "$healthcheck" == yes ]]; then
      echo 'HEALTHCHECK --interval=1s --timeout=2s --retries=3 CMD ["/meme-testserver","check"]'
    fi
    # Last, so that all versions share the layers above and differ only in this config.
    echo "ENV VERSION=$version"
    echo 'ENTRYPOINT ["/meme-testserver"]'
  } >"$dockerfile"
  echo "==> docker build $image (VERSION=$version, healthcheck=$healthcheck)"
  # Quiet, and stderr only on failure: the CLI's "legacy builder is deprecated" notice is noise here.
  if ! errors="$(docker build --quiet --file "$dockerfile" --tag "$image" "$context" 2>&1 >/dev/null)"; then
    echo "$errors" >&2
    die "docker build $image failed"
  fi
  built+=("$image")
done

echo "==> built:"
for image in "${built[@]}"; do
  read -r id size < <(docker image inspect --format '{{.Id}} {{.Size}}' "$image")
  printf '    %-24s %s  %s bytes\n' "$image" "${id:0:19}" "$size"
done
