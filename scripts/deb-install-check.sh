#!/usr/bin/env bash
# Installs a peergate .deb into a throwaway root and runs it there, as root on a Debian host:
#   bash scripts/deb-install-check.sh build/deb/peergate_<version>_<arch>.deb
# The root is an overlay of the host's / (writes go to a temporary upper directory) in private
# mount, PID and network namespaces: dpkg, the maintainer scripts, the peergate user and the
# running service never touch the host, and the service's ports are on a loopback of its own.
# Each step prints `== <name>` then its output; the last line is `== done` when all passed.
# Used by test/integration/package-deb.test.ts; also handy by hand.
set -euo pipefail
deb=$(readlink -f "${1:?usage: deb-install-check.sh <package.deb>}")
[ "$(id -u)" -eq 0 ] || { echo "deb-install-check: needs root (namespaces, overlay mount)" >&2; exit 1; }
# On the host (work = everything this run writes; removed at the end whatever happens).
if [ "${PEERGATE_IN_NAMESPACE:-}" != 1 ]; then
  work=$(mktemp -d /tmp/peergate-deb-root.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  PEERGATE_IN_NAMESPACE=1 WORK="$work" unshare --mount --pid --net --fork --mount-proc --kill-child -- bash "$0" "$deb"
  exit $?
fi

# In the namespaces.
root="$WORK/root"
mkdir -p "$WORK/upper" "$WORK/work" "$root"
mount --make-rprivate /
mount -t overlay overlay -o "lowerdir=/,upperdir=$WORK/upper,workdir=$WORK/work" "$root"
mount --rbind /dev "$root/dev"
mount -t proc proc "$root/proc"
mount -t tmpfs tmpfs "$root/tmp"
mount -t tmpfs tmpfs "$root/run"
ip link set lo up
cp "$deb" "$root/tmp/peergate.deb"
in_root() { chroot "$root" "$@"; }
as_peergate() { chroot "$root" runuser -u peergate -- "$@"; }

echo "== install"
in_root env DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/peergate.deb 2>&1

echo "== user"
in_root getent passwd peergate
echo "== modes"
in_root stat -c '%n %U:%G %a' /var/lib/peergate /etc/peergate /etc/peergate/admin-token /etc/peergate/policy.yaml /usr/lib/peergate/bin/peergate.js /usr/lib/sysctl.d/60-peergate.conf
in_root readlink /usr/bin/peergate

echo "== unit"
# systemd-analyze verify checks the unit's syntax, directives and that its commands exist.
rc=0; in_root systemd-analyze verify /lib/systemd/system/peergate.service 2>&1 || rc=$?
echo "verify-exit=$rc"

echo "== version"
as_peergate peergate --version

echo "== check"
rc=0; as_peergate peergate check --check-files /etc/peergate/policy.yaml 2>&1 || rc=$?
echo "check-exit=$rc"

echo "== start"
(exec chroot "$root" runuser -u peergate -- peergate start --policy /etc/peergate/policy.yaml >"$root/tmp/peergate.log" 2>&1) &
pid=$!
health=""
for _ in $(seq 1 150); do
  health=$(curl -fsS --max-time 1 http://127.0.0.1:9090/health 2>/dev/null) && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.2
done
echo "health=$health"
# chroot execs runuser, which waits for its child: node, peergate itself.
node_pid=$(pgrep -P "$pid" | head -1 || true)
echo "user=$(in_root ps -o user= -p "${node_pid:-$pid}" 2>/dev/null | tr -d ' ')"
token=$(cat "$root/etc/peergate/admin-token")
echo "admin-with-token=$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $token" http://127.0.0.1:9090/admin/peers)"
echo "admin-without-token=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9090/admin/peers)"
echo "ready=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:9090/ready)"
kill -TERM "${node_pid:-$pid}" 2>/dev/null || true
rc=0
for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$pid" 2>/dev/null; then echo "stop=timeout"; kill -KILL "$pid"; else wait "$pid" || rc=$?; echo "stop-exit=$rc"; fi
echo "== log"
tail -n 20 "$root/tmp/peergate.log"

echo "== purge"
in_root dpkg --purge peergate 2>&1
for f in /var/lib/peergate /etc/peergate/admin-token /usr/bin/peergate /usr/lib/peergate; do
  [ -e "$root$f" ] || [ -L "$root$f" ] && echo "left: $f" || echo "gone: $f"
done
echo "== done"
