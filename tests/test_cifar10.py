"""The Table 1 commands on CIFAR-10, for a user who has the data. CIFAR-10 cannot be downloaded here, so a small set is
generated in the official `cifar-10-batches-py` pickle format; the packaged `table1` grid, restricted to CIFAR-10, one
seed, two methods and one epoch (its hyperparameters and notebook unchanged), runs through `bmrs-grid` and papermill."""
import json, os, pickle, subprocess
from pathlib import Path

import numpy as np
from conftest import REPO, exe
import yaml

TABLE1 = REPO/'bmrs'/'grids'/'table1.yaml'


def make_cifar(root, n=40, seed=0):
    "Random images and labels in the official format: data_batch_1..5 and test_batch, dicts of bytes keys."
    rng = np.random.default_rng(seed)
    d = Path(root)/'cifar-10-batches-py'; d.mkdir(parents=True)
    for stem in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
        batch = {b'batch_label': stem.encode(), b'labels': rng.integers(0, 10, n).tolist(),
                 b'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8), b'filenames': [f'{stem}_{k}.png'.encode() for k in range(n)]}
        with open(d/stem, 'wb') as f: pickle.dump(batch, f)
    return root


# parameter counts of the plain networks for 3x32x32 inputs, by hand:
#   MLP (input layer + 5 hidden->hidden blocks of 150): 3072*150+150 + 5*(150*150+150) + 150*10+10 = 575,710
#   (11_explanations, “Parameter and unit counts of the paper's networks”: 577,510 with the 900 units' mu and log sigma)
#   LeNet5, widths scaled by the 3 channels as in the release: conv 3->18 5x5 (1,368) + conv 18->48 5x5 (21,648)
#   + 1200->360 (432,360) + 360->252 (90,972) + 252->10 (2,530) = 548,878 (11_explanations, “Parameter and unit counts of the paper's networks”: 550,234 with 678 units' gates)
PLAIN = {'mlp': 575_710, 'lenet5': 548_878}
HPARAMS = {'mlp': dict(n_layers=5, hidden_dim=150, batch_size=32, learning_rate=6.8e-4),   # 11_explanations, “Hyperparameters per network and dataset”
           'lenet5': dict(batch_size=64, learning_rate=1.0e-3)}


def test_table1_grid_on_cifar10(tmp_path):
    root = make_cifar(tmp_path/'data')
    g = yaml.safe_load(TABLE1.read_text())
    g['grid'].update(seed=[100], dataset=['cifar10'], method=['bmrs_n', 'l2'])
    g['base'].update(n_epochs=1, fine_tune_epochs=1, threads=1)
    g.pop('report', None)
    gf = tmp_path/'table1_cifar10.yaml'; gf.write_text(yaml.safe_dump(g, sort_keys=False))
    out = tmp_path/'runs'
    r = subprocess.run([exe('bmrs-grid'), str(gf), '--out', str(out), '--data_root', str(root), '--no_progress', '--jobs', '2'],
                       capture_output=True, text=True, timeout=1200, cwd=REPO, env=dict(os.environ, MPLBACKEND='Agg'))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for net in ('mlp', 'lenet5'):
        recs = {m: json.loads((out/f'{net}-cifar10-{m}-seed100'/f'{net}-cifar10-{m}-seed100.json').read_text()) for m in ('bmrs_n', 'l2')}
        for m, rec in recs.items():
            c, met = rec['config'], rec['metrics']
            assert c['dataset'] == 'cifar10' and c['network'] == net and c['seed'] == 100
            assert {k: c[k] for k in HPARAMS[net]} == HPARAMS[net]
            assert met['n_params_without_gates'] == PLAIN[net]
            assert 0 <= met['test_top1'] <= 100
        # L2 was matched to the BMRS_N run of the same setting
        assert recs['l2']['config']['compression_percentage_file'].endswith(f'{net}-cifar10-bmrs_n-seed100.json')
        assert abs(recs['l2']['metrics']['unit_compression'] - recs['bmrs_n']['metrics']['unit_compression']) < 1.


class _Marker:
    "Unpickling this runs a shell command that creates a marker file (what a crafted batch could do)."
    def __init__(self, path): self.path = path
    def __reduce__(self): return (os.system, (f'touch {self.path}',))


def test_crafted_batch_runs_nothing(tmp_path):
    "`bmrs-train --dataset cifar10` on a batch that would run a command: one-line error naming the file, exit 2 (bad input), nothing run"
    root = make_cifar(tmp_path/'data', n=4)
    marker, bad = tmp_path/'marker', root/'cifar-10-batches-py'/'data_batch_4'
    with open(bad, 'wb') as f: pickle.dump({b'data': _Marker(marker), b'labels': [0]*4}, f)
    r = subprocess.run([exe('bmrs-train'), '--dataset', 'cifar10', '--network', 'mlp', '--n_layers', '1', '--hidden_dim', '8',
                        '--n_epochs', '1', '--data_root', str(root), '--metrics_dir', str(tmp_path/'m'),
                        '--output_dir', str(tmp_path/'o'), '--no_progress'],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path, env=dict(os.environ, MPLBACKEND='Agg'))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f'{bad}: not a CIFAR-10 pickle batch: refused global {os.system.__module__}.system' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and not marker.exists()


def test_official_format_protocols(tmp_path):
    "Batches written at protocols 2 and 4 (and Python 3's default 5) load bit-identically"
    from bmrs.data import load_raw
    for proto in (2, 4, 5):
        root = make_cifar(tmp_path/f'p{proto}', n=6, seed=proto)
        ref = {}
        for stem in [f'data_batch_{i}' for i in range(1, 6)] + ['test_batch']:
            p = root/'cifar-10-batches-py'/stem
            with open(p, 'rb') as f: ref[stem] = pickle.load(f)
            p.write_bytes(pickle.dumps(ref[stem], protocol=proto))
        raw = load_raw('cifar10', root)
        x = np.concatenate([ref[f'data_batch_{i}'][b'data'] for i in range(1, 6)]).reshape(-1, 3, 32, 32)
        assert np.array_equal(raw['train'].x.numpy(), x)
        assert raw['train'].y.tolist() == sum((ref[f'data_batch_{i}'][b'labels'] for i in range(1, 6)), [])
        assert np.array_equal(raw['test'].x.numpy(), ref['test_batch'][b'data'].reshape(-1, 3, 32, 32))
