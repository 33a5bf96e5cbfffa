#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv and install bmrs with every extra the README's two
# commands use: dev (nbdev, pytest), hf (transformers, datasets: ViT and the Hugging Face data) and experiments
# (papermill, seaborn, jupyter: bmrs-grid, the experiment notebooks and the tests that run them).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
stamp=.venv/.bmrs-installed
want=$(cat settings.ini setup.py scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ -x .venv/bin/python && -f $stamp && $(cat $stamp) == "$want" ]]; then exit 0; fi
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev,hf,experiments]"
.venv/bin/python -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "$want" > $stamp
