#!/usr/bin/env bash
# Installs what peergate and its test suite need on a fresh Debian 12 machine:
# Debian packages (as root, only those missing) and the npm packages from package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(redis-server rtpengine-daemon sip-tester kamailio kamailio-tls-modules nsd unbound ldnsutils
      kamailio-secsipid-modules sipvicious sipsak socat openssl iproute2
      g++ make python3
      prometheus                                     # promtool and prometheus: deploy/prometheus checks
      lintian systemd curl procps binutils adduser)  # make deb and its install test
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "peergate needs these Debian packages; run as root or install them: ${missing[*]}" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  # policy-rc.d in containers keeps the packaged daemons from starting; we start our own.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lock file changed since the last install.
stamp=node_modules/.peergate-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund
  cp package-lock.json "$stamp"
fi

# The native addons (native/, node-gyp against node's own headers and OpenSSL): the signature
# verifier and the memory reducer, rebuilt when their sources are newer than the build. Without
# them peergate falls back to node:crypto (same results, slower) and to plain full GCs.
addon=native/build/Release/sigverify.node
reducer=native/build/Release/memory.node
if [ ! -f "$addon" ] || [ ! -f "$reducer" ] || [ native/sigverify.c -nt "$addon" ] || [ native/memory.cc -nt "$reducer" ] || [ native/binding.gyp -nt "$addon" ]; then
  npm run --silent build:native
fi
