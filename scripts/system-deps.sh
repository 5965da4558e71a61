#!/usr/bin/env bash
# System packages the test suite drives for real: redis-server (and redis-cli); Debian's
# Chromium with a font for the browser tests (Playwright cannot download a browser here);
# zbarimg (zbar-tools) and oathtool, which read the enrollment page's QR code from a screenshot
# and compute its codes the way a phone would.
# Installs what is missing when run as root (CI, fresh machines); otherwise says what to install.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)
command -v oathtool >/dev/null 2>&1 || missing+=(oathtool)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts a system redis on 6379; the tests start their own servers on free ports.
  (service redis-server stop || true) >/dev/null 2>&1
else
  echo "WARNING: missing ${missing[*]}: install them (apt-get install ${missing[*]});" \
       "the tests that need them are skipped on this machine (and fail under CI)." >&2
fi
