#!/usr/bin/env bash
# Builds the controller as a container image, FROM scratch, locally (no registry, no base image):
# the static meme-controller, Debian's git with the shared libraries `ldd` lists and the helper
# programs a fetch needs (git-upload-pack for local remotes, ssh for ssh remotes), a static
# busybox as /bin/sh (git runs upload-pack and GIT_SSH_COMMAND through a shell), /etc/passwd
# (ssh refuses a user it cannot look up) and /etc/gitconfig (safe.directory: the checkout is a
# mounted volume owned by another uid).
#
# usage: hack/build-controller-image.sh [--tag IMAGE] [--binary PATH]
#
#   --tag IMAGE    default meme-controller:VERSION (also tagged meme-controller:latest)
#   --binary PATH  the meme-controller to pack (default: the static release build, made by
#                  hack/release.sh --no-tarball); a dynamically linked one gets its libraries
#                  copied too (the e2e test packs the debug build this way)
#
# Run it with the Docker socket mounted — which gives it root on the host — and on the host's
# network (`--network host`: it probes containers on the stack's networks, which only the host
# reaches): README, "The controller as a container". Limits: remotes over ssh or a local path
# work; https remotes do not (no git-remote-https, no CA certificates): use ssh, or mount a
# checkout that something else keeps up to date. No shell tools besides busybox's sh.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
tag="meme-controller:$version"
binary=""
while (($#)); do
  case "$1" in
    --tag) tag="${2:?--tag needs an image name}"; shift 2 ;;
    --binary) binary="${2:?--binary needs a path}"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-controller-image: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
die() {
  echo "build-controller-image: $*" >&2
  exit 1
}

if [[ -z "$binary" ]]; then
  hack/release.sh --no-tarball >&2
  binary="target/static/x86_64-unknown-linux-gnu/release/meme-controller"
fi
[[ -x "$binary" ]] || die "no executable $binary"
# Debian's git (the git package), not a locally built one elsewhere on PATH.
git_bin=/usr/bin/git
[[ -x "$git_bin" ]] || die "$git_bin is missing: apt-get install git"
ssh_bin=/usr/bin/ssh
[[ -x "$ssh_bin" ]] || die "$ssh_bin is missing: apt-get install openssh-client"
busybox=/bin/busybox
file -L "$busybox" 2>/dev/null | grep -q 'statically linked' || die "$busybox must be static: apt-get install busybox-static"
exec_path="$("$git_bin" --exec-path)"

context="$(mktemp -d "${TMPDIR:-/tmp}/meme-controller-image.XXXXXX")"
trap 'rm -rf "$context"' EXIT
rootfs="$context/rootfs"
mkdir -p "$rootfs"/{bin,etc,tmp,usr/bin,usr/local/bin,var/lib/meme-controller,root}
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"

# Copies a file to the same path in the image (symlinks resolved).
put() { install -D -m "${2:-0755}" "$(readlink -f "$1")" "$rootfs$1"; }
# Copies an executable and every shared library it loads (ldd), at their own paths.
put_with_libs() {
  put "$1"
  local lib
  for lib in $(ldd "$1" 2>/dev/null | grep -o '/[^ ]*' | sort -u); do
    [[ -e "$rootfs$lib" ]] || put "$lib" 0755
  done
}

install -m 0755 "$binary" "$rootfs/usr/local/bin/meme-controller"
if ! file -L "$binary" | grep -q 'static'; then
  for lib in $(ldd "$binary" | grep -o '/[^ ]*' | sort -u); do
    [[ -e "$rootfs$lib" ]] || put "$lib" 0755
  done
fi
put_with_libs "$git_bin"
put_with_libs "$ssh_bin"
# git's helpers are links to git itself; only those a fetch runs: upload-pack (the far side of a
# local fetch). Everything else the controller uses (rev-parse, ls-tree, cat-file, fetch, ...)
# is built in.
mkdir -p "$rootfs$exec_path"
ln -s /usr/bin/git "$rootfs$exec_path/git"
ln -s git "$rootfs$exec_path/git-upload-pack"
install -m 0755 "$busybox" "$rootfs/bin/busybox"
ln -s busybox "$rootfs/bin/sh"

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
EOF
cat >"$rootfs/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
cat >"$rootfs/etc/gitconfig" <<'EOF'
# The checkout is a volume owned by the host's user: git would refuse it as "dubious ownership".
[safe]
	directory = *
EOF

cat >"$context/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin \\
    HOME=/root \\
    MEME_REPO=/var/lib/meme-controller/repo \\
    MEME_STATE_DIR=/var/lib/meme-controller \\
    MEME_LISTEN=0.0.0.0:9797
EXPOSE 9797
LABEL org.opencontainers.image.title="meme-controller" \\
      org.opencontainers.image.version="$version" \\
      org.opencontainers.image.revision="$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)"
ENTRYPOINT ["/usr/local/bin/meme-controller"]
EOF

if ! errors="$(docker build --quiet --tag "$tag" "$context" 2>&1 >/dev/null)"; then
  echo "$errors" >&2
  die "docker build $tag failed"
fi
[[ "$tag" == "meme-controller:$version" ]] && docker tag "$tag" meme-controller:latest
size="$(docker image inspect --format '{{.Size}}' "$tag")"
echo "built $tag ($(awk -v b="$size" 'BEGIN { printf "%.1f MiB", b / 1048576 }'))"
