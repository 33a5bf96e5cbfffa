#!/usr/bin/env bash
# Copy the run JSONs (and per-epoch CSVs) of the finished runs of a grid folder into a flat results folder that is
# committed, e.g.  bash scripts/collect_runs.sh runs/table1_cpu results/table1_cpu
# Only finished runs have a JSON (bmrs.train writes it atomically at the end), so this is safe while the grid runs.
set -euo pipefail
src=${1:?usage: collect_runs.sh GRID_OUT_DIR RESULTS_DIR}; dst=${2:?usage: collect_runs.sh GRID_OUT_DIR RESULTS_DIR}
[ -d "$src" ] || { echo "collect_runs.sh: no folder $src" >&2; exit 2; }
mkdir -p "$dst"
n=0
for d in "$src"/*/; do
  rid=$(basename "$d"); f="$d/$rid.json"
  [ -f "$f" ] || continue
  cp "$f" "$dst/$rid.json"; [ -f "$d/$rid.csv" ] && cp "$d/$rid.csv" "$dst/$rid.csv"
  n=$((n+1))
done
echo "collected $n finished runs from $src into $dst"
