"""Every committed run record's parameter compression is what `reduce` removes.

`param_compression` is counted from `reduce`'s plan (`bmrs.reduce.removed_params`). The committed records were written
when it was counted from the gates' links; on the paper's MLP and LeNet5 the two agree, so their values stand. Here each
record's network is rebuilt from its config, each gate keeps as many units as the record says it kept (on these chains
the count depends on how many, not which), and the plan's count must give the record's `n_params_removed`,
`n_params` and `param_compression` — except where a LeNet5 run pruned every filter of a convolution (three collapsed
L2 runs on Fashion-MNIST, 10 % test accuracy): `reduce` keeps one filter there (a convolution cannot have none; its
gate folds it to zero) and the next layer's inputs from it, which the links counted as removed. There the plan's count
must equal a hand count that keeps one filter: 51-801 parameters (0.1-1.3 points) fewer than those records say (a
record written since the plan's count, as results/fast_path_cpu/table1_seed1000's L2 one, says the hand count itself).
"""
import json, math
from pathlib import Path
import pytest, torch
from bmrs.data import DATASETS
from bmrs.layers import gates
from bmrs.models import build_model
from bmrs.reduce import removed_params, param_compression
from bmrs.train import arch_of, config_of

ROOT = Path(__file__).resolve().parents[1]/'results'


def _records():
    for f in sorted(ROOT.rglob('*.json')):
        try: r = json.loads(f.read_text())
        except ValueError: continue
        if isinstance(r, dict) and {'config', 'metrics'} <= set(r) and 'layers' in r['metrics']: yield f


RECORDS = list(_records())


def test_records_found():
    assert len(RECORDS) >= 96 + 20   # table1_cpu alone has 96


@pytest.mark.parametrize('path', RECORDS, ids=[str(p.relative_to(ROOT)) for p in RECORDS])
def test_record_count(path):
    r = json.loads(path.read_text()); m = r['metrics']
    cfg = config_of(path)
    net = build_model(**arch_of(cfg, DATASETS[cfg.dataset]))
    gs = gates(net)
    if not gs:                                            # --disable_pruning
        assert m['n_params_removed'] == 0 and m['param_compression'] == 0.; return
    assert [g.n_units for g in gs] == [l['total'] for l in m['layers']]
    with torch.no_grad():
        for g, l in zip(gs, m['layers']): g.mask.zero_(); g.mask[:l['kept']] = 1
    removed, total = removed_params(net)
    k = [l['kept'] for l in m['layers']]
    if cfg.network == 'lenet5' and 0 in k[:2]:
        full = [l['total'] for l in m['layers']]
        assert removed == _lenet5(full) - _lenet5([max(k[0], 1), max(k[1], 1), *k[2:]]) + 2*sum(f - n for f, n in zip(full, k))
        if m['n_params_removed'] != removed:              # written when the count came from the links (table1_cpu's three)
            assert 0 < m['n_params_removed'] - removed <= 801
        assert total == m['n_params']                     # a record written since (table1_seed1000's L2) says the plan's count
        return
    assert (removed, total) == (m['n_params_removed'], m['n_params'])
    assert math.isclose(param_compression(net), m['param_compression'], rel_tol=1e-12, abs_tol=1e-12)


def _lenet5(k):
    "Weights and biases of LeNet5 (1 channel, 32×32 inputs as the runs use: 5×5 positions after conv2) keeping k = (conv1, conv2, fc1, fc2) units."
    return 25*k[0] + k[0] + 25*k[0]*k[1] + k[1] + 25*k[1]*k[2] + k[2] + k[2]*k[3] + k[3] + 10*k[3] + 10
