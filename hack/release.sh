#!/usr/bin/env bash
# Builds the release binaries (static, stripped) and packs one tarball per target, each with its
# SHA-256 checksum. Prints the binaries' sizes and the build time; fails when a binary is not
# static or is over 20 MB.
#
# usage: hack/release.sh [--target TRIPLE]... [--out DIR] [--clean] [--no-tarball]
#
#   --target TRIPLE  a Rust target triple, repeatable (default: x86_64-unknown-linux-gnu). glibc
#                    targets are linked statically (-C target-feature=+crt-static); musl ones are
#                    static anyway. Each must be installed: rustup target list --installed.
#   --out DIR        where the tarballs go (default: target/dist)
#   --clean          build in a fresh, temporary target directory: the time of a from-scratch
#                    release build, as CI would see it (hack/bench.sh release)
#   --no-tarball     only build and measure
#
# For each target, DIR gets:
#   meme-controller-VERSION-TARGET.tar.gz         bin/meme-controller, bin/memectl, install.sh,
#                                                 meme-controller.service, meme-controller.env,
#                                                 README.md
#   meme-controller-VERSION-TARGET.tar.gz.sha256  its checksum (sha256sum -c FILE)
# and DIR/SHA256SUMS lists every tarball. Install on a host: unpack, then sudo ./install.sh.
#
# --version of both binaries names the commit they were built from (git HEAD here; a build
# from a copy without .git says "unknown" unless MEME_GIT_COMMIT is set). Tarballs are
# reproducible for a given commit: sorted names, owner 0, mtimes of the commit, gzip -n.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# 20 MB, the limit of the issue; in bytes (10^6), the stricter reading.
max_bytes=20000000

targets=()
out="$root/target/dist"
clean=no
tarball=yes
while (($#)); do
  case "$1" in
    --target) targets+=("${2:?--target needs a triple}"); shift 2 ;;
    --out) out="${2:?--out needs a directory}"; shift 2 ;;
    --clean) clean=yes; shift ;;
    --no-tarball) tarball=no; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "release: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
((${#targets[@]})) || targets=(x86_64-unknown-linux-gnu)

die() {
  echo "release: $*" >&2
  exit 1
}

version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
[[ -n "$version" ]] || die "cannot read the workspace version from Cargo.toml"
commit="${MEME_GIT_COMMIT:-$(git rev-parse --verify -q HEAD 2>/dev/null || echo unknown)}"
if [[ "$commit" != unknown ]] && [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
  echo "release: warning: the work tree has uncommitted changes; the binaries will still say commit $commit" >&2
fi
# Everything after a tarball's files: the commit's time (reproducible), else now.
mtime="$(git log -1 --format=%ct 2>/dev/null || date +%s)"

if [[ "$clean" == yes ]]; then
  target_dir="$(mktemp -d "${TMPDIR:-/tmp}/meme-release.XXXXXX")"
  trap 'rm -rf "$target_dir"' EXIT
else
  # The static build of hack/build-images.sh: same flags, so dependencies are shared, and apart
  # from target/release (other RUSTFLAGS would rebuild the usual artifacts).
  target_dir="$root/target/static"
fi

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

installed="$(rustup target list --installed 2>/dev/null || rustc -vV | sed -n 's/^host: //p')"
failed=0
summary=()
for target in "${targets[@]}"; do
  grep -qx "$target" <<<"$installed" || die "Rust target $target is not installed (rustup target list --installed)"
  rustflags="${RUSTFLAGS:-}"
  case "$target" in
    *-linux-gnu*) rustflags="$rustflags -C target-feature=+crt-static" ;;
    *-linux-musl*) ;;
    *) die "$target: only Linux targets are released (the controller talks to a local Docker engine)" ;;
  esac
  echo "== building $target (version $version, commit $commit, target dir ${target_dir#"$root"/})" >&2
  load="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
  times="$(mktemp)"
  # --target keeps build scripts and proc macros dynamic: only the shipped binaries are static.
  # `time` reports wall and CPU seconds (CPU is the steadier figure on a shared machine); cargo's
  # own output goes to the real stderr through fd 3.
  TIMEFORMAT='%R %U %S'
  { time RUSTFLAGS="$rustflags" MEME_GIT_COMMIT="$commit" \
    cargo build --release --locked --target "$target" --target-dir "$target_dir" \
    -p meme-controller -p memectl 1>&3 2>&3; } 3>&2 2>"$times"
  read -r wall user sys <"$times"
  rm -f "$times"
  bindir="$target_dir/$target/release"
  kind=$([[ "$clean" == yes ]] && echo "from scratch" || echo "incremental")
  summary+=("$(printf '%s: release build %.0f s wall, %.0f s CPU (%s, %s cores, load average %s)' \
    "$target" "$wall" "$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')" "$kind" "$(nproc)" "$load")")
  for bin in meme-controller memectl; do
    path="$bindir/$bin"
    [[ -x "$path" ]] || die "missing $path"
    bytes=$(stat -c %s "$path")
    linkage=static
    if file -L "$path" | grep -q 'dynamically linked'; then linkage=DYNAMIC; fi
    verdict=PASS
    if ((bytes > max_bytes)) || [[ "$linkage" != static ]]; then verdict=FAIL; failed=1; fi
    summary+=("$(printf '  %-16s %10s bytes (%s)  %s  goal: <= 20 MB, static  %s' \
      "$bin" "$bytes" "$(mib "$bytes")" "$linkage" "$verdict")")
  done
  summary+=("  --version: $("$bindir/meme-controller" --version)")
  if [[ "$tarball" == yes ]]; then
    name="meme-controller-$version-$target"
    stage="$(mktemp -d "${TMPDIR:-/tmp}/meme-stage.XXXXXX")"
    mkdir -p "$stage/$name/bin"
    install -m 0755 "$bindir/meme-controller" "$bindir/memectl" "$stage/$name/bin/"
    install -m 0755 hack/install.sh "$stage/$name/install.sh"
    install -m 0644 controller/dist/meme-controller.service controller/dist/meme-controller.env "$stage/$name/"
    install -m 0644 controller/dist/README.md "$stage/$name/README.md"
    mkdir -p "$out"
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" -C "$stage" -cf - "$name" |
      gzip -n -9 >"$out/$name.tar.gz"
    rm -rf "$stage"
    (cd "$out" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
    summary+=("  $(printf '%-16s %10s bytes (%s)  %s' tarball "$(stat -c %s "$out/$name.tar.gz")" \
      "$(mib "$(stat -c %s "$out/$name.tar.gz")")" "${out%/}/$name.tar.gz")")
    summary+=("  sha256 $(cut -d' ' -f1 "$out/$name.tar.gz.sha256")")
  fi
done
if [[ "$tarball" == yes ]]; then
  (cd "$out" && cat ./*.tar.gz.sha256 >SHA256SUMS)
fi

printf '%s\n' "${summary[@]}"
exit "$failed"
