#!/usr/bin/env bash
# The demo: builds meme-controller and memectl, builds the demo images locally (no registry
# needed), puts manifests/demo into a throwaway git repository and runs the controller on it in
# the foreground. Ctrl-C stops the controller; the containers keep running until you remove them:
#   docker rm -f $(docker ps -aq --filter label=pro.memeit.stack=meme-demo)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

docker info >/dev/null 2>&1 || { echo "demo: the Docker engine is not reachable" >&2; exit 1; }
echo "== building meme-controller and memectl"
cargo build --release --locked -p meme-controller -p memectl
echo "== building the demo images (FROM scratch, local only)"
hack/build-images.sh

work="${MEME_DEMO_DIR:-$(mktemp -d -t meme-demo.XXXXXX)}"
repo="$work/repo"
secrets="$work/secrets"
mkdir -p "$repo/manifests" "$secrets/demo"
cp -r manifests/demo/. "$repo/manifests/"
printf 'demo-token-%s' "$RANDOM" > "$secrets/demo/api-token"
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=demo -c user.email=demo@example.invalid commit -q -m "demo stack"

bin="$root/target/release"
cat <<MSG

== the demo runs in $repo (manifests/), secrets in $secrets
In another terminal:
  export PATH="$bin:\$PATH"
  cd $repo
  memectl validate manifests                       # offline check, file:line:col errors
  docker ps --filter label=pro.memeit.stack=meme-demo
  curl -s 127.0.0.1:18080/version                  # the edge service, published on the host

Change a version (a rolling, health-gated update of web):
  sed -i 's/meme-demo:v1/meme-demo:v2/' manifests/web.yaml && git commit -qam "web: v2"
Roll back (a rollback is a revert):
  git revert --no-edit HEAD
Break it on purpose (nothing changes; the controller logs file:line:col):
  sed -i 's/replicas: 2/replicas: two/' manifests/web.yaml && git commit -qam broken

Starting the controller (Ctrl-C to stop it; containers keep running).
MSG
exec "$bin/meme-controller" --repo "$repo" --path manifests --secrets-dir "$secrets" --resync 10s
