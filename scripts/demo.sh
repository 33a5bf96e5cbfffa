#!/usr/bin/env bash
# A small real demo on a fresh machine: fetch MNIST, train LeNet5 with BMRS_N gates and continuous pruning
# (Algorithm 1) on 6,000 images for 5 epochs on the CPU (about 3 minutes), and print the result. A rerun with other
# options (scripts/demo.sh --delta_f release ...) replaces the previous demo run (--overwrite).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
bmrs-data fetch mnist --root data
bmrs-train --metrics_dir runs/demo/metrics --output_dir runs/demo/output --run_name demo \
  --network lenet5 --dataset mnist --pruning_class LogUniformApproximateDiracBMRPruningLayer \
  --batch_size 128 --learning_rate 1.4e-3 --n_epochs 5 --fine_tune_epochs 1 --limit 6000 --data_root data --overwrite "$@"
