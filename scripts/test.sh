#!/usr/bin/env bash
# The whole test suite on a fresh machine: environment, data, notebooks in sync and clean, notebook tests, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" BMRS_DATA_ROOT="$PWD/data" MPLBACKEND=Agg
bmrs-data fetch mnist fashion_mnist --root "$BMRS_DATA_ROOT"

# nbdev_export and nbdev_clean must not change any tracked file
snapshot() { git status --porcelain -- bmrs nbs; git diff -- bmrs nbs | sha256sum; }
before=$(snapshot)
nbdev_export
nbdev_clean
after=$(snapshot)
if [[ "$before" != "$after" ]]; then
  echo "nbdev_export / nbdev_clean changed files: run them and commit the result" >&2
  diff <(echo "$before") <(echo "$after") >&2 || true
  exit 1
fi

nbdev_test --n_workers 2
pytest tests -q -p no:cacheprovider
