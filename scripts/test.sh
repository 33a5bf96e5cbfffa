#!/usr/bin/env bash
# The whole test suite on a fresh machine: environment, data, notebooks in sync and clean, notebook tests, pytest.
# Exit status: 0 when everything passes; 1 when a test fails, or when nbdev_export / nbdev_clean or a test changed a
# file that git tracks (or left a new file that git does not ignore): tests write only to temporary folders.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH" BMRS_DATA_ROOT="$PWD/data" MPLBACKEND=Agg
bmrs-data fetch mnist fashion_mnist --root "$BMRS_DATA_ROOT"

# The state of the working tree: changed / new files, and a digest of every tracked file's content changes.
snapshot() { git status --porcelain --untracked-files=all -- "$@"; git diff HEAD -- "$@" | sha256sum; }
# Fail (exit 1) naming what `step` changed since `before` was taken.
check_unchanged() {
  local step=$1 before=$2; shift 2
  local after; after=$(snapshot "$@")
  if [[ "$before" != "$after" ]]; then
    echo "test.sh: $step changed files that git tracks or left new ones (tests must write only to temporary folders):" >&2
    diff <(echo "$before") <(echo "$after") >&2 || true
    git status --porcelain --untracked-files=all -- "$@" >&2
    exit 1
  fi
}

# nbdev_export and nbdev_clean must not change any tracked file
before=$(snapshot bmrs nbs)
nbdev_export
nbdev_clean
if [[ "$before" != "$(snapshot bmrs nbs)" ]]; then
  echo "nbdev_export / nbdev_clean changed files: run them and commit the result" >&2
  diff <(echo "$before") <(snapshot bmrs nbs) >&2 || true
  exit 1
fi
# README.md is generated from nbs/index.ipynb (exit 1 naming it when it is out of date: run python scripts/readme.py)
python scripts/readme.py --check

# neither the notebook tests nor pytest may change the repository (results/ above all)
before=$(snapshot .)
nbdev_test --n_workers 2
check_unchanged nbdev_test "$before" .
pytest tests -q -p no:cacheprovider
check_unchanged pytest "$before" .
