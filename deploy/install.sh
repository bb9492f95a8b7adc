#!/usr/bin/env bash
# Installs a built ringcast checkout as a systemd service: the app into PREFIX (default
# /opt/ringcast: package.json, dist/src, overlay/, production node_modules), the example config
# into /etc/ringcast/config.json (an existing one is kept), the unit into /etc/systemd/system.
# The service user is systemd's DynamicUser "ringcast"; its data dir is StateDirectory
# /var/lib/ringcast (made by systemd at start). No network is needed: node_modules is copied from
# the checkout and pruned to production dependencies (same machine architecture).
#
# Usage (from a checkout, after `npm install && npm run build`):
#   sudo deploy/install.sh [--prefix /opt/ringcast]
#   deploy/install.sh --root DIR    # everything under DIR (packaging, tests); no systemctl
set -euo pipefail

root=/
prefix=/opt/ringcast
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    *) echo "install.sh: unknown argument $1 (use --root DIR, --prefix PATH)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be an absolute path" >&2; exit 2 ;; esac

src="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$src/dist/src/main.js" ] || [ ! -d "$src/node_modules" ]; then
  echo "install.sh: build first: (cd $src && npm install && npm run build)" >&2
  exit 1
fi
root="${root%/}"
app="$root$prefix"

install -d -m 0755 "$app" "$root/etc/ringcast" "$root/etc/systemd/system"
rm -rf "$app/dist" "$app/overlay" "$app/node_modules"
install -d -m 0755 "$app/dist"
cp -a "$src/dist/src" "$app/dist/"
cp -a "$src/package.json" "$src/package-lock.json" "$src/README.md" "$src/overlay" "$app/"
cp -a "$src/node_modules" "$app/"
(cd "$app" && npm prune --omit=dev --offline --no-audit --no-fund --loglevel=error >/dev/null)
# The service's dynamic user reads the install and never writes it.
chmod -R a+rX,go-w "$app"

if [ ! -f "$root/etc/ringcast/config.json" ]; then
  install -m 0644 "$src/deploy/config.example.json" "$root/etc/ringcast/config.json"
else
  echo "install.sh: keeping the existing $root/etc/ringcast/config.json"
fi
sed "s#/opt/ringcast#$prefix#g" "$src/deploy/ringcast.service" > "$root/etc/systemd/system/ringcast.service"
chmod 0644 "$root/etc/systemd/system/ringcast.service"

if [ "$root" = "" ]; then
  systemctl daemon-reload
  echo "installed in $prefix; start with: systemctl enable --now ringcast"
else
  # Outside a real root systemd makes no StateDirectory: make the data dir it would.
  install -d -m 0750 "$root/var/lib/ringcast"
  echo "installed under $root"
fi
