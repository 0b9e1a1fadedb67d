#!/usr/bin/env bash
# Headless Chromium for the browser tests (the gallery page; scripts/check_mlflow_ui.py): Debian's
# `chromium` package when no Chromium is on PATH. Needs root and apt-get; otherwise it says what to
# install and exits 0: the tests that need a browser then skip, saying why.
set -uo pipefail
for browser in chromium chromium-browser google-chrome; do
    if command -v "$browser" >/dev/null 2>&1; then
        echo "install_browser: $browser found ($(command -v "$browser"))"
        exit 0
    fi
done
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: no Chromium found; install Debian's as root (apt-get install -y chromium)," \
         "or the browser tests skip" >&2
    exit 0
fi
if DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
    || { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }; then
    echo "install_browser: installed $(chromium --version 2>/dev/null)"
else
    echo "install_browser: apt-get could not install chromium; the browser tests skip" >&2
fi
exit 0
