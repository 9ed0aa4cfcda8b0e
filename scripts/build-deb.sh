#!/usr/bin/env bash
# Builds the Debian package: build/deb/peergate_<version>_<arch>.deb (`make deb`).
#   /usr/lib/peergate        bin/, dist/ (compiled JavaScript), production node_modules,
#                            the native signature verifier, package.json
#   /usr/bin/peergate        -> ../lib/peergate/bin/peergate.js
#   /etc/peergate            policy.yaml (conffile; admin-token made by postinst)
#   /lib/systemd/system      peergate.service (deploy/peergate.service)
#   /usr/share/doc/peergate  copyright, changelog, the operator's docs, example policies
# Plain dpkg-deb on a staged tree (owner root via --root-owner-group, no fakeroot needed);
# the maintainer scripts and control files are in deploy/debian/. Prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(node -p 'require("./package.json").version')
arch=$(dpkg --print-architecture)
out=build/deb
stage="$out/peergate_${version}_${arch}"
lib="$stage/usr/lib/peergate"
doc="$stage/usr/share/doc/peergate"

# The compiled program, rebuilt unless dist/ is newer than every source (bin/peergate.js's rule).
if [ ! -f dist/cli/main.js ] || [ -n "$(find src -name '*.ts' -newer dist/cli/main.js -print -quit)" ]; then
  npm run --silent build >&2
fi

rm -rf "$stage"
mkdir -p "$lib/bin" "$lib/native/build/Release" "$stage/usr/bin" "$stage/etc/peergate" \
         "$stage/lib/systemd/system" "$doc/examples" "$stage/DEBIAN"

cp package.json package-lock.json "$lib/"
cp bin/peergate.js "$lib/bin/"
# dist without source maps: they point at src/, which the package does not ship.
cp -r dist "$lib/dist"
find "$lib/dist" -name '*.map' -delete

# Production dependencies only, exactly as locked; no install scripts (the only native code
# is peergate's own addon, copied below from the build that `make deps` made).
(cd "$lib" && npm ci --omit=dev --ignore-scripts --prefer-offline --no-audit --no-fund --loglevel=error >&2)
rm -rf "$lib/node_modules/.bin" "$lib/node_modules/.package-lock.json"
# Files a running program never reads: docs, tests, maintainers' scripts, VCS files (and with
# them lintian's complaints about scripts, web pages and VCS files inside node_modules).
find "$lib/node_modules" -depth \( \( -type d \( -name test -o -name tests -o -name __tests__ -o -name .husky -o -name .github \) \) \
  -o \( -type f \( -name '*.md' -o -name '*.markdown' -o -name '*.ts' -o -name '*.map' -o -name '*.html' -o -name '*.sh' \
  -o -name '.npmignore' -o -name '.gitattributes' -o -name '.gitignore' -o -name '.eslintrc*' -o -name '.editorconfig' -o -name '.travis.yml' \) \) \) \
  -exec rm -rf {} +
addon=native/build/Release/sigverify.node
if [ -f "$addon" ]; then
  install -m 0644 "$addon" "$lib/native/build/Release/sigverify.node"
  strip --strip-unneeded --remove-section=.comment --remove-section=.note "$lib/native/build/Release/sigverify.node"
  # The memory reducer (src/app/memory-reducer.ts); without it, plain full GCs.
  if [ -f native/build/Release/memory.node ]; then
    install -m 0644 native/build/Release/memory.node "$lib/native/build/Release/memory.node"
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$lib/native/build/Release/memory.node"
  fi
else
  echo "build-deb: $addon not built; the package falls back to node:crypto for signatures" >&2
  rm -rf "$lib/native"
fi

ln -s ../lib/peergate/bin/peergate.js "$stage/usr/bin/peergate"
install -m 0644 deploy/debian/policy.yaml "$stage/etc/peergate/policy.yaml"
install -m 0644 deploy/peergate.service "$stage/lib/systemd/system/peergate.service"
install -D -m 0644 deploy/debian/sysctl.conf "$stage/usr/lib/sysctl.d/60-peergate.conf"
install -m 0644 deploy/debian/copyright "$doc/copyright"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")/" \
  deploy/debian/changelog | gzip -9n > "$doc/changelog.gz"
mkdir -p "$stage/usr/share/man/man1"
gzip -9n < deploy/debian/peergate.1 > "$stage/usr/share/man/man1/peergate.1.gz"
for d in install.md policy.md operations.md; do [ -f "docs/$d" ] && install -m 0644 "docs/$d" "$doc/$d"; done
install -m 0644 policies/*.yaml "$doc/examples/"

# Modes: directories 0755, files 0644, the entry point 0755; nothing group/world-writable.
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +
chmod 0755 "$lib/bin/peergate.js"
# Modules' command-line entry points (#!) stay executable, as npm would leave them.
grep -rlI --include='*.js' --include='*.mjs' --include='*.cjs' -m1 '^#!' "$lib/node_modules" | while read -r f; do
  [ "$(head -c2 "$f")" = '#!' ] && chmod 0755 "$f"
done

install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$stage/DEBIAN/"
install -m 0644 deploy/debian/conffiles "$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" deploy/debian/control.in > "$stage/DEBIAN/control"
(cd "$stage" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/md5sums"

deb="$out/peergate_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$deb" >&2
echo "$deb"
