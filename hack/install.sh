#!/usr/bin/env bash
# Installs meme-controller on a host with systemd and Docker, as root: both binaries on PATH,
# a `meme` system user in the docker group, /etc/meme-controller (settings, API token, webhook
# secret, secrets, deploy key folder), /var/lib/meme-controller (the git checkout and state) and
# the systemd unit. Re-running it upgrades the binaries and the unit (restarting a running
# service) and never touches existing settings or secrets.
#
# usage: install.sh [--prefix DIR] [--from DIR] [--user NAME] [--uninstall [--purge]]
#
#   --prefix DIR   binaries go to DIR/bin, shell completion to DIR/share (default /usr/local)
#   --from DIR     where meme-controller and memectl are (default: bin/ beside this script, as in
#                  a release tarball, else target/static/x86_64-unknown-linux-gnu/release of the
#                  repository, as hack/release.sh leaves it)
#   --user NAME    the service account (default meme). `--user root` runs the controller as
#                  root: only for hosts where the Docker socket is not reachable through a
#                  `docker` group (a root-only socket); the unit's hardening still applies.
#   --uninstall    stop the service; remove the binaries, the completion and the unit. Settings,
#                  secrets, the checkout, the state and the user stay.
#   --purge        with --uninstall: also remove /etc/meme-controller, /var/lib/meme-controller
#                  and the user. Containers the controller started keep running either way.
#
# env: DESTDIR     lay everything out under this root instead of / (packaging, tests): systemctl
#                  is not run, and the user is created (useradd --prefix) only when
#                  DESTDIR/etc/passwd exists; otherwise files stay owned by whoever runs this.
#
# Why a dedicated user when the docker group is root-equivalent anyway: the socket is the one
# door to root, and everything else (the files it can write, what a bug or a malicious manifest
# path could touch) stays confined to /var/lib/meme-controller, on top of the unit's sandbox.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix=/usr/local
from=""
user=meme
mode=install
purge=no
while (($#)); do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --from) from="${2:?--from needs a directory}"; shift 2 ;;
    --user) user="${2:?--user needs a name}"; shift 2 ;;
    --uninstall) mode=uninstall; shift ;;
    --purge) purge=yes; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() {
  echo "install: $*" >&2
  exit 1
}
say() { echo "install: $*"; }

[[ "$prefix" == /* ]] || die "--prefix must be an absolute path (got $prefix)"
[[ "$purge" == no || "$mode" == uninstall ]] || die "--purge goes with --uninstall"
[[ "$user" =~ ^[a-z_][a-z0-9_-]*$ ]] || die "invalid --user $user"
destdir="${DESTDIR:-}"
destdir="${destdir%/}"
[[ -z "$destdir" || "$destdir" == /* ]] || die "DESTDIR must be an absolute path (got $destdir)"
[[ -n "$destdir" || "$(id -u)" == 0 ]] || die "run as root (or set DESTDIR to stage the files elsewhere)"

bindir="$prefix/bin"
completion="$prefix/share/bash-completion/completions/memectl"
unit=/etc/systemd/system/meme-controller.service
config=/etc/meme-controller
state=/var/lib/meme-controller
service=meme-controller

# systemctl only on the real root of a host booted with systemd.
systemd=no
if [[ -z "$destdir" && -d /run/systemd/system ]] && command -v systemctl >/dev/null; then systemd=yes; fi
# Users and groups: in DESTDIR's own /etc when it has one, else (DESTDIR without one) none.
accounts=host
if [[ -n "$destdir" ]]; then
  accounts=none
  [[ -f "$destdir/etc/passwd" ]] && accounts=prefix
fi
prefix_args=()
[[ "$accounts" == prefix ]] && prefix_args=(--prefix "$destdir")

# The numeric id of a user or group, read from the account files in use ("" when absent).
account_id() { # kind (passwd|group) name
  case "$accounts" in
    host) getent "$1" "$2" | cut -d: -f3 ;;
    prefix) awk -F: -v n="$2" '$1 == n { print $3 }' "$destdir/etc/$1" ;;
    none) echo "" ;;
  esac
}

# Sets owner (numeric, from the account files in use) and mode; owner is skipped without accounts.
own() { # mode owner group path
  chmod "$1" "$destdir$4"
  [[ "$accounts" == none ]] && return 0
  local uid gid
  uid="$(account_id passwd "$2")"
  gid="$(account_id group "$3")"
  [[ -n "$uid" && -n "$gid" ]] || die "no account $2:$3 to own $4"
  chown "$uid:$gid" "$destdir$4"
}

# Writes a file atomically (temporary name in the same folder, then rename): a running binary is
# replaced, never truncated under the process.
place() { # source mode path
  local target="$destdir$3" tmp
  mkdir -p "$(dirname "$target")"
  tmp="$(mktemp "$(dirname "$target")/.install.XXXXXX")"
  cat "$1" >"$tmp"
  chmod "$2" "$tmp"
  mv -f "$tmp" "$target"
}

# 32 random bytes as hex: an API token or webhook secret.
random_secret() { head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n'; }

uninstall() {
  if [[ "$systemd" == yes ]]; then
    systemctl disable --now "$service" 2>/dev/null || true
  fi
  rm -f "$destdir$bindir/meme-controller" "$destdir$bindir/memectl" "$destdir$completion" "$destdir$unit"
  if [[ "$systemd" == yes ]]; then systemctl daemon-reload; fi
  say "removed $bindir/meme-controller, $bindir/memectl, $completion, $unit"
  if [[ "$purge" == yes ]]; then
    rm -rf "${destdir:?}$config" "${destdir:?}$state"
    say "purged $config and $state"
    if [[ "$user" != root && -n "$(account_id passwd "$user")" ]]; then
      userdel "${prefix_args[@]}" "$user"
      say "removed the user $user"
    fi
  else
    say "kept $config (settings, token, webhook secret, secrets), $state (checkout, state) and the user $user;"
    say "  remove them too with: $0 --uninstall --purge"
  fi
  say "containers the controller started keep running; list them with:"
  say "  docker ps --filter label=pro.memeit.managed-by=meme-controller"
}

find_binaries() {
  if [[ -z "$from" ]]; then
    for candidate in "$script_dir/bin" "$script_dir/../target/static/x86_64-unknown-linux-gnu/release"; do
      if [[ -x "$candidate/meme-controller" && -x "$candidate/memectl" ]]; then
        from="$candidate"
        break
      fi
    done
    [[ -n "$from" ]] || die "no binaries found beside this script: build them with hack/release.sh, or pass --from DIR"
  fi
  for bin in meme-controller memectl; do
    [[ -x "$from/$bin" ]] || die "$from/$bin is missing or not executable"
  done
}

# The unit and the settings template: beside this script in a tarball, in controller/dist in
# the repository.
asset() {
  local name="$1"
  for candidate in "$script_dir/$name" "$script_dir/../controller/dist/$name"; do
    [[ -f "$candidate" ]] && { echo "$candidate"; return; }
  done
  die "cannot find $name beside $0"
}

ensure_user() {
  [[ "$user" == root ]] && return 0
  if [[ "$accounts" == none ]]; then
    say "DESTDIR has no etc/passwd: not creating the user $user (a package's postinst would)"
    return 0
  fi
  [[ -n "$(account_id group docker)" ]] ||
    die "there is no docker group: install Docker first (apt-get install docker.io), or use --user root"
  if [[ -z "$(account_id passwd "$user")" ]]; then
    useradd "${prefix_args[@]}" --system --user-group --home-dir "$state" --no-create-home \
      --shell /usr/sbin/nologin --comment "meme-controller GitOps controller" "$user"
    say "created the system user $user"
  fi
  usermod "${prefix_args[@]}" --append --groups docker "$user"
}

install_all() {
  find_binaries
  local unit_src env_src group
  unit_src="$(asset meme-controller.service)"
  env_src="$(asset meme-controller.env)"
  group="$user"
  ensure_user

  place "$from/meme-controller" 0755 "$bindir/meme-controller"
  place "$from/memectl" 0755 "$bindir/memectl"
  local tmp
  tmp="$(mktemp)"
  if "$from/memectl" completion bash >"$tmp" 2>/dev/null; then
    place "$tmp" 0644 "$completion"
  fi
  # As root, no docker group is needed (and may not exist: systemd refuses a missing group).
  local edits=(-e "s|@BINDIR@|$bindir|g" -e "s|@USER@|$user|g" -e "s|@GROUP@|$group|g")
  [[ "$user" == root ]] && edits+=(-e '/^SupplementaryGroups=docker$/d')
  sed "${edits[@]}" "$unit_src" >"$tmp"
  place "$tmp" 0644 "$unit"
  rm -f "$tmp"
  say "installed $bindir/meme-controller, $bindir/memectl ($("$from/meme-controller" --version)), $unit"

  mkdir -p "$destdir$config" "$destdir$config/secrets" "$destdir$config/ssh" "$destdir$state"
  own 0750 root "$group" "$config"
  own 0700 "$user" "$group" "$config/secrets"
  own 0700 "$user" "$group" "$config/ssh"
  own 0750 "$user" "$group" "$state"
  if [[ ! -e "$destdir$config/meme-controller.env" ]]; then
    place "$env_src" 0640 "$config/meme-controller.env"
    own 0640 root "$group" "$config/meme-controller.env"
    say "wrote $config/meme-controller.env (edit it: MEME_REPO, MEME_PATH, MEME_REMOTE, MEME_LISTEN)"
  fi
  local secret
  for secret in token webhook-secret; do
    if [[ ! -e "$destdir$config/$secret" ]]; then
      (umask 077 && random_secret >"$destdir$config/$secret")
      own 0600 "$user" "$group" "$config/$secret"
      say "generated $config/$secret (random, mode 0600)"
    fi
  done

  if [[ "$systemd" == yes ]]; then
    systemctl daemon-reload
    if systemctl is-active --quiet "$service"; then
      systemctl restart "$service"
      say "restarted the running $service"
      return 0
    fi
  fi
  cat <<EOF
install: done. Next:
  1. the manifests checkout, owned by $user:
       sudo -u $user git clone REPO_URL $state/repo
  2. settings: $config/meme-controller.env (MEME_PATH, MEME_REMOTE, MEME_LISTEN)
  3. secrets: $config/secrets/<name>/<key> (owned by $user, mode 0600)
  4. sudo systemctl enable --now $service && memectl status
EOF
}

if [[ "$mode" == uninstall ]]; then uninstall; else install_all; fi
