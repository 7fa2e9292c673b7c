#!/usr/bin/env bash
# The demo: builds meme-controller and memectl, builds the demo images locally (no registry
# needed), puts manifests/demo into a throwaway git repository and runs the controller on it in
# the foreground. Ctrl-C stops the controller; the containers keep running.
#
#   hack/demo.sh          run the demo (again: the throwaway repository is reused)
#   hack/demo.sh --clean  stop it and remove everything it made: the stack's containers, network
#                         and volume, the demo images, the throwaway repository
#
# Environment: MEME_DEMO_DIR (the throwaway folder, default ${TMPDIR:-/tmp}/meme-demo-$USER),
# MEME_DEMO_LISTEN (the controller's address, default 127.0.0.1:9797), MEME_DEMO_PROFILE
# (release or debug, default release), MEME_DEMO_KEEP_IMAGES=1 (--clean keeps the images).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

stack=meme-demo
work="${MEME_DEMO_DIR:-${TMPDIR:-/tmp}/meme-demo-${USER:-$(id -u)}}"
listen="${MEME_DEMO_LISTEN:-127.0.0.1:9797}"
profile="${MEME_DEMO_PROFILE:-release}"
# Written into the throwaway folder: --clean removes only a folder that carries it.
marker="$work/.meme-demo"
images=(meme-demo:v1 meme-demo:v2 meme-demo:v3 meme-demo-hc:v1)

docker info >/dev/null 2>&1 || { echo "demo: the Docker engine is not reachable" >&2; exit 1; }

clean() {
  if [[ -f "$work/controller.pid" ]]; then
    pid="$(cat "$work/controller.pid")"
    # Only the demo's own controller: the pid must still be a meme-controller on this repo.
    if [[ -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "meme-controller.*--repo $work/repo"; then
      echo "== stopping the demo controller (pid $pid)"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
  fi
  echo "== removing the containers, networks and volumes of stack $stack"
  containers="$(docker ps -aq --filter "label=pro.memeit.stack=$stack")"
  [[ -z "$containers" ]] || docker rm -f $containers >/dev/null
  networks="$(docker network ls -q --filter "label=pro.memeit.stack=$stack")"
  [[ -z "$networks" ]] || docker network rm $networks >/dev/null
  volumes="$(docker volume ls -q --filter "label=pro.memeit.stack=$stack")"
  [[ -z "$volumes" ]] || docker volume rm $volumes >/dev/null
  if [[ "${MEME_DEMO_KEEP_IMAGES:-}" == 1 ]]; then
    echo "== keeping the demo images (MEME_DEMO_KEEP_IMAGES=1)"
  else
    echo "== removing the demo images: ${images[*]}"
    for image in "${images[@]}"; do
      # Without -f: an image another container still uses is kept, and said so.
      if docker image inspect "$image" >/dev/null 2>&1 && ! docker rmi "$image" >/dev/null 2>&1; then
        echo "   kept $image: a container outside the demo still uses it"
      fi
    done
  fi
  if [[ -f "$marker" ]]; then
    echo "== removing $work"
    rm -rf "$work"
  elif [[ -e "$work" ]]; then
    echo "== not removing $work: it was not made by the demo (no $marker)"
  fi
  echo "== clean"
}

case "${1:-}" in
  --clean) clean; exit 0 ;;
  "") ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  *) echo "demo: unknown argument $1 (try --help)" >&2; exit 2 ;;
esac

echo "== building meme-controller and memectl ($profile)"
if [[ "$profile" == release ]]; then
  cargo build --release --locked -p meme-controller -p memectl
else
  cargo build --locked -p meme-controller -p memectl
fi
bin="$root/target/$profile"
echo "== building the demo images (FROM scratch, local only)"
hack/build-images.sh

repo="$work/repo"
secrets="$work/secrets"
token="$work/api-token"
if [[ -d "$repo/.git" && -f "$marker" ]]; then
  echo "== reusing the demo repository $repo (hack/demo.sh --clean starts over)"
else
  [[ ! -e "$work" || -f "$marker" || -z "$(ls -A "$work")" ]] ||
    { echo "demo: $work exists and is not the demo's; set MEME_DEMO_DIR" >&2; exit 1; }
  mkdir -p "$repo/manifests" "$secrets/demo" "$work/state"
  touch "$marker"
  cp -r manifests/demo/. "$repo/manifests/"
  printf 'demo-token-%s' "$RANDOM" >"$secrets/demo/api-token"
  git -C "$repo" init -q -b main
  # The throwaway repository's own identity, so `git commit` works on a fresh machine.
  git -C "$repo" config user.name "meme demo"
  git -C "$repo" config user.email "demo@example.invalid"
  git -C "$repo" add -A
  git -C "$repo" commit -q -m "demo stack"
fi
# The API token memectl sends for reconcile, suspend and resume.
[[ -s "$token" ]] || (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$token")

server_env=""
[[ "$listen" == 127.0.0.1:9797 ]] || server_env="  export MEMECTL_SERVER=http://$listen
"
cat <<MSG

== the demo runs in $repo (manifests/), secrets in $secrets
In another terminal:
  export PATH="$bin:\$PATH" MEMECTL_TOKEN_FILE=$token
${server_env}  cd $repo
  memectl status                                   # sync status, revisions, one row per service
  memectl get events                               # what the controller did, and why
  memectl validate manifests                       # offline check, file:line:col errors
  curl -s 127.0.0.1:18080/version                  # the edge service, published on the host

Change a version (a rolling, health-gated update of web), and wait for it as CI would:
  sed -i 's/meme-demo:v1/meme-demo:v2/' manifests/web.yaml && git commit -qam "web: v2"
  memectl wait --for synced --revision HEAD --timeout 2m
  memectl history                                  # the manifest commits, the applied one marked
Roll back (a rollback is a revert commit; it shows what will change first):
  memectl rollback --yes
  memectl diff HEAD~1                              # the running containers against a revision
Break it on purpose (nothing changes; status and the log say file:line:col):
  sed -i 's/replicas: 2/replicas: two/' manifests/web.yaml && git commit -qam broken
  memectl status
  git revert --no-edit HEAD
Operate it (these need the token above):
  memectl suspend; memectl resume; memectl reconcile --wait
  memectl logs web --tail 20                       # through the Docker engine
Clean up everything the demo made (containers, network, volume, images, this folder):
  hack/demo.sh --clean

Starting the controller on $listen (Ctrl-C to stop it; containers keep running).
MSG
echo $$ >"$work/controller.pid"
exec "$bin/meme-controller" --repo "$repo" --path manifests --secrets-dir "$secrets" --resync 10s \
  --listen "$listen" --token-file "$token" --state-dir "$work/state" --lease-dir "$work/leases"
