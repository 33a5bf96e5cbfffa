#!/usr/bin/env bash
# The reverse of collect_runs.sh: put committed run JSONs (and CSVs) back into a grid folder, so that `bmrs-grid`
# skips those runs and L2 runs find the BMRS_N results they are matched to. Use it to resume a grid in a fresh clone:
#   bash scripts/seed_runs.sh results/table1_cpu runs/table1_cpu && bmrs-grid table1_cpu --out runs/table1_cpu
# Each seeded run folder gets `.seeded`, the SHA-256 of the JSON copied: `bmrs-grid` counts a seeded run as finished
# while its JSON is unchanged and the config it records agrees with the grid's parameters for the run (a run made with
# other parameters makes bmrs-grid refuse to start, naming it). Existing files in the grid folder are not overwritten.
set -euo pipefail
src=${1:?usage: seed_runs.sh RESULTS_DIR GRID_OUT_DIR}; dst=${2:?usage: seed_runs.sh RESULTS_DIR GRID_OUT_DIR}
[ -d "$src" ] || { echo "seed_runs.sh: no folder $src" >&2; exit 2; }
n=0
for f in "$src"/*-seed*.json; do
  [ -f "$f" ] || continue
  rid=$(basename "$f" .json); mkdir -p "$dst/$rid"
  [ -f "$dst/$rid/$rid.json" ] && continue
  [ -f "$src/$rid.csv" ] && cp "$src/$rid.csv" "$dst/$rid/"
  cp "$f" "$dst/$rid/.$rid.json.seeding"                     # renamed last: a killed copy leaves no JSON behind
  sha256sum "$dst/$rid/.$rid.json.seeding" | cut -d' ' -f1 > "$dst/$rid/.seeded"
  mv "$dst/$rid/.$rid.json.seeding" "$dst/$rid/$rid.json"
  n=$((n+1))
done
echo "seeded $n runs from $src into $dst"
