"""BMRS: Bayesian Model Reduction for Structured pruning, in PyTorch.

The main API at top level (hand-written: nbdev writes only `__version__` here):

    import bmrs
    splits = bmrs.load_data('mnist', 'data')                       # 32×32 images, scaled as in the paper
    model = bmrs.lenet5(gate='bmrs_n', delta_f_variant='release')    # or bmrs.add_gates(your_network, ...)
    ... train with loss + bmrs.model_kl(model, 'mean'), then bmrs.compress_model(model) ...
    ... once units are pruned, bmrs.Compact(model)(x) computes the same without them (faster) ...
    small = bmrs.reduce(model, splits.test.x[:2])                    # the pruned units removed
    small, report = bmrs.reduce_run('metrics/RUN-seedS.json')        # or a finished bmrs-train run, from its record

`bmrs.train` and `bmrs.reduce` are the submodules and also their main functions: `bmrs.train(cfg)` is
`bmrs.train.train(cfg)`, `bmrs.reduce(model, x)` is `bmrs.reduce.reduce(model, x)`. What needs an optional or heavy
package loads on first use only: `bmrs.hf` (transformers), `bmrs.tp` (Torch-Pruning), `bmrs.posthoc` and
`bmrs.report` (pandas, matplotlib), `bmrs.grid` (papermill), `bmrs.demo`, `bmrs.explore` (ipywidgets); so do the names taken from them
(`BMRSTrainer`, `BMRSCallback`, `gate_hf`, `BMRSImportance`, `sweep`, `rank_correlations`, `read_runs`, `results_table`).
"""
__version__ = "0.0.1"

import importlib as _importlib, sys as _sys, types as _types

from .files import FileError
from .distributions import kl_loguniform, expected_theta, variance_theta, snr
from .reduction import delta_f_lognormal, delta_f_loguniform
from .methods import register_criterion, get_criterion, label
from .layers import (NoiseGate, gates, model_kl, compress_model, unit_compression, param_compression, unit_counts,
                     param_count, set_gates_enabled, use_sampler)
from .compact import Compact
from .models import NETWORKS, mlp, lenet5, resnet, vit, build_model, add_gates, untie_gates, n_params, n_units
from .data import DATASETS, load as load_data, batches, dataset_info, TensorData, DataSplits
from .utils import evaluate, seed_everything, resolve_device
from .train import TrainConfig, load_run, config_of, arch_of, reduce_run
from .reduce import (reduce_and_report, save_reduced, load_reduced, compare, efficiency_report, check_reduced, macs,
                     latency_ms)
from . import data, train, reduce

class _CallableModule(_types.ModuleType):
    "A submodule that is also its main function, which has the module's name: `bmrs.train(cfg)` calls `bmrs.train.train(cfg)`."
    def __call__(self, *args, **kwargs): return getattr(self, self.__name__.rpartition('.')[2])(*args, **kwargs)

for _m in (train, reduce): _m.__class__ = _CallableModule

__all__ = ['FileError', 'kl_loguniform', 'expected_theta', 'variance_theta', 'snr', 'delta_f_lognormal',
           'delta_f_loguniform', 'register_criterion', 'get_criterion', 'label', 'NoiseGate', 'gates', 'model_kl',
           'compress_model', 'unit_compression', 'param_compression', 'unit_counts', 'param_count', 'set_gates_enabled',
           'use_sampler', 'Compact', 'NETWORKS', 'mlp', 'lenet5', 'resnet', 'vit', 'build_model', 'add_gates', 'untie_gates',
           'n_params', 'n_units', 'DATASETS', 'load_data', 'batches', 'dataset_info', 'TensorData', 'DataSplits', 'evaluate',
           'seed_everything', 'resolve_device', 'TrainConfig', 'train', 'load_run', 'config_of', 'arch_of', 'reduce_run',
           'reduce', 'reduce_and_report', 'save_reduced', 'load_reduced', 'compare', 'efficiency_report', 'check_reduced',
           'macs', 'latency_ms', 'data']

# loaded on first use (not in __all__, so that `from bmrs import *` loads none of them): submodules, and name -> submodule
_LAZY_MODULES = ('hf', 'tp', 'posthoc', 'report', 'grid', 'demo', 'explore')
_LAZY = dict(BMRSTrainer='hf', BMRSCallback='hf', gate_hf='hf', BMRSImportance='tp', sweep='posthoc',
             rank_correlations='posthoc', read_runs='report', results_table='report')

def __getattr__(name):
    if name in _LAZY: return getattr(_importlib.import_module(f'{__name__}.{_LAZY[name]}'), name)
    if name in _LAZY_MODULES: return _importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

def __dir__(): return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))
