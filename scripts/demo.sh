#!/usr/bin/env bash
# The README's first command: on a fresh machine, create .venv, fetch MNIST and run `bmrs-demo` — LeNet5 trained with
# BMRS_N gates (the release's ΔF) and continuous pruning, physically reduced; prints accuracy, parameters, MACs and
# latency before → after and writes the run record, the reduced model and demo.png under runs/demo/ (a rerun replaces
# them). Extra options go to bmrs-demo (bmrs-demo --help), e.g. --epochs 4 --limit 12000 for a quicker look.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
bmrs-data fetch mnist --root data
bmrs-demo --data_root data --out runs/demo "$@"
