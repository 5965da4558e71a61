#!/usr/bin/env bash
# What the test suite drives for real, installed where missing:
# - system packages (when run as root: CI, fresh machines; otherwise it says what to install):
#   redis-server (and redis-cli); Debian's Chromium with a font for the browser tests
#   (Playwright cannot download a browser here) and one for Japanese and Chinese pages
#   (without it Chromium draws boxes: tests/browser/test_languages.py); zbarimg (zbar-tools) and oathtool, which read
#   the enrollment page's QR code from a screenshot and compute its codes as a phone would;
#   node and npm; PostgreSQL (Debian's postgresql: the suite starts its own servers on free
#   ports with private data directories, for DjangoStore's tests);
# - axe-core, at the version pinned in tests/browser/axe/package-lock.json, into
#   tests/browser/axe/node_modules (git-ignored) for the accessibility tests.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
[ -n "$(fc-list :lang=ja 2>/dev/null)" ] || missing+=(fonts-noto-cjk)
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)
command -v oathtool >/dev/null 2>&1 || missing+=(oathtool)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian starts a system redis on 6379; the tests start their own servers on free ports.
    (service redis-server stop || true) >/dev/null 2>&1
    (service postgresql stop || true) >/dev/null 2>&1  # likewise Debian's cluster on 5432
  else
    echo "WARNING: missing ${missing[*]}: install them (apt-get install ${missing[*]});" \
         "the tests that need them are skipped on this machine (and fail under CI)." >&2
  fi
fi

axe=tests/browser/axe
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  pinned=$(node -p "require('./$axe/package-lock.json').packages['node_modules/axe-core'].version")
  installed=$(node -p "try { require('./$axe/node_modules/axe-core/package.json').version }
                       catch (e) { '' }")
  if [ "$pinned" != "$installed" ]; then
    npm ci --prefix "$axe" --no-audit --no-fund --loglevel=error >/dev/null
  fi
else
  echo "WARNING: without node and npm, axe-core is not installed:" \
       "the accessibility tests are skipped on this machine (and fail under CI)." >&2
fi
