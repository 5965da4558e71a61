#!/usr/bin/env bash
# What `make bench` needs beyond `make test`'s system packages: wrk, the HTTP load generator.
# Installs it when run as root with apt-get (CI, fresh machines); otherwise the benchmark
# falls back to its own Python load generator (bench/loadgen.py) and says so in its table.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1; then
    apt-get update -qq >/dev/null 2>&1 || true
    apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 || true
  fi
fi
if ! command -v wrk >/dev/null 2>&1; then
  echo "NOTE: wrk is not installed (apt-get install wrk); section 5 uses bench/loadgen.py." >&2
fi
