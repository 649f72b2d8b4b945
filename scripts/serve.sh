#!/usr/bin/env bash
# Installs what is missing, builds, and serves the bundled model on port 8080:
#   scripts/serve.sh [more lstmgen serve options]
# Trained models and the job database go to data/; the bundled models in models/ are read-only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
meson compile -C build >/dev/null
mkdir -p data/models
exec build/lstmgen serve --models data/models:models --db data/lstmgen.db "$@"
