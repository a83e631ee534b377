#!/usr/bin/env bash
# Installs what the tests need when it is missing (sourced by test.sh and
# screenshots.sh): curl; Debian's chromium and Node.js for the browser
# tests; sipp (Debian's sip-tester), the recording client of the SIPREC
# tests; the browser tests' npm packages (playwright-core, axe-core) at the
# versions in cmd/callvault/testdata/browser/package-lock.json; the
# scale-out backends' real servers: PostgreSQL and SoftHSM2 from Debian, and
# versitygw (an S3 gateway with Object Lock) built with go install.
set -euo pipefail

need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
command -v sipp >/dev/null 2>&1 || need_apt+=(sip-tester)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
[ -e /usr/lib/softhsm/libsofthsm2.so ] || need_apt+=(softhsm2)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "deps: installing ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# The version is pinned here and in internal/site/s3site/s3test (Version).
versitygw_version=v1.8.0
if ! command -v versitygw >/dev/null 2>&1 && [ ! -x "$(go env GOPATH)/bin/versitygw" ]; then
  echo "deps: go install versitygw@$versitygw_version" >&2
  (cd / && GOFLAGS= go install "github.com/versity/versitygw/cmd/versitygw@$versitygw_version")
fi

browser_dir=cmd/callvault/testdata/browser
if [ ! -d "$browser_dir/node_modules/playwright-core" ] || [ ! -d "$browser_dir/node_modules/axe-core" ] ||
   [ "$browser_dir/package-lock.json" -nt "$browser_dir/node_modules/.package-lock.json" ]; then
  echo "deps: npm ci in $browser_dir" >&2
  (cd "$browser_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
