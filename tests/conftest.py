"""What the pytest files share: the repository, the data folder and the console scripts of the installed package."""
import os, shutil, sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get('BMRS_DATA_ROOT', REPO/'data'))


def exe(name):
    "Path of console script `name` of this environment (bmrs-train, bmrs-grid, bmrs-data)."
    e = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if e is None: pytest.fail(f"no `{name}` console script: run `pip install -e .` in the repository")
    return e


def env():
    "The environment for a subprocess: the data folder, no display, unbuffered output."
    return dict(os.environ, BMRS_DATA_ROOT=str(ROOT), MPLBACKEND='Agg', PYTHONUNBUFFERED='1')
