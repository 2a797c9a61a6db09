#!/usr/bin/env bash
# Puts axe-core's script (axe.min.js, the accessibility rules engine that
# tests/accessibility.rs runs in Chromium) under the cargo target directory,
# from the PyPI wheel of axe-selenium-python 3.0.0 (axe-core 4.10.2), pinned
# by its SHA-256; prints the file's path. Does nothing when it is already
# there. Needs python3 with pip, and PyPI. The wheel is only unpacked (its
# Python side needs 3.12; nothing of it is installed or run).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${CARGO_TARGET_DIR:-target}/axe-core"
js="$dir/axe.min.js"
if [ ! -s "$js" ]; then
  mkdir -p "$dir/wheel"
  printf 'axe-selenium-python==3.0.0 --hash=sha256:%s\n' \
    847e3925861133a523609ff27d0fef387e7588a26f23a27c208a30682b8e9240 > "$dir/requirements.txt"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: --python-version 3.12 --require-hashes \
    -r "$dir/requirements.txt" -d "$dir/wheel" >&2
  python3 - "$dir" <<'PY'
import glob, sys, zipfile
d = sys.argv[1]
[wheel] = glob.glob(d + "/wheel/axe_selenium_python-3.0.0-*.whl")
with zipfile.ZipFile(wheel) as z:
    data = z.read("axe_selenium_python/node_modules/axe-core/axe.min.js")
with open(d + "/axe.min.js.part", "wb") as f:
    f.write(data)
PY
  mv "$dir/axe.min.js.part" "$js"
fi
echo "$js"
