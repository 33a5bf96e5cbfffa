#!/usr/bin/env bash
# Copy the run JSONs (and per-epoch CSVs) of the finished runs of a grid folder into a flat results folder that is
# committed, e.g.  bash scripts/collect_runs.sh runs/table1_cpu results/table1_cpu
# A run is finished when bmrs-grid has written its `.finished.json` and the JSON's SHA-256 is the one recorded there
# (or in the `.seeded` of a run put back by seed_runs.sh)
# (a JSON without it may belong to a run killed before its notebook was saved; `bmrs-grid --dry_run` lists the state
# of every run, and bmrs-grid marks the complete ones when it starts). Safe while the grid runs; copies are atomic.
set -euo pipefail
src=${1:?usage: collect_runs.sh GRID_OUT_DIR RESULTS_DIR}; dst=${2:?usage: collect_runs.sh GRID_OUT_DIR RESULTS_DIR}
[ -d "$src" ] || { echo "collect_runs.sh: no folder $src" >&2; exit 2; }
mkdir -p "$dst"
n=0; skipped=0
for d in "$src"/*/; do
  rid=$(basename "$d"); f="$d/$rid.json"
  [ -f "$f" ] || continue
  sha=$(sha256sum "$f" | cut -d' ' -f1)
  if ! grep -q "\"result_sha256\": \"$sha\"" "$d/.finished.json" 2>/dev/null && ! grep -qx "$sha" "$d/.seeded" 2>/dev/null; then
    echo "collect_runs.sh: not finished, skipped: $rid" >&2; skipped=$((skipped+1)); continue
  fi
  cp "$f" "$dst/.$rid.json.tmp" && mv "$dst/.$rid.json.tmp" "$dst/$rid.json"
  [ -f "$d/$rid.csv" ] && { cp "$d/$rid.csv" "$dst/.$rid.csv.tmp" && mv "$dst/.$rid.csv.tmp" "$dst/$rid.csv"; }
  n=$((n+1))
done
echo "collected $n finished runs from $src into $dst ($skipped not finished)"
