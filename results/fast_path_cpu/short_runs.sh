#!/bin/bash
# short MNIST MLP BMRS_N (release ΔF) runs: fast vs exact sampler, seeds 1000 and 100, 3 + 1 epochs
cd /work/main
export PATH=/work/main/.venv/bin:$PATH BMRS_DATA_ROOT=/work/main/data OMP_NUM_THREADS=1
for seed in 1000 100; do
  for mode in fast exact_unfused; do
    python /tmp/w19/train_drv.py $mode /tmp/w19/runs/timing-mlp-$mode-$seed.json \
      --metrics_dir /tmp/w19/runs/$mode/m --output_dir /tmp/w19/runs/$mode/o --run_name mlp-mnist-bmrs_n_release-$mode \
      --pruning_class bmrs_n --delta_f release --network mlp --dataset mnist --batch_size 128 --n_layers 7 --hidden_dim 100 \
      --learning_rate 0.00085 --n_epochs 3 --fine_tune_epochs 1 --seed $seed --device cpu --data_root data --no_progress \
      > /tmp/w19/runs/log-$mode-$seed.txt 2>&1 &
  done
  wait
done
