"""End-to-end tests of the `bmrs-train` command on a few hundred real MNIST images (fetched by `bmrs-data`)."""
import json, os, shutil, subprocess, sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOT = Path(os.environ.get('BMRS_DATA_ROOT', REPO/'data'))
SMALL = ['--network', 'mlp', '--dataset', 'mnist', '--n_layers', '1', '--hidden_dim', '32', '--n_epochs', '2',
         '--fine_tune_epochs', '1', '--batch_size', '32', '--limit', '300', '--learning_rate', '0.01', '--no_progress',
         '--seed', '3']


def cli(name, *args, timeout=600):
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if exe is None: pytest.fail(f"no `{name}` console script: run `pip install -e .` in the repository")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def root():
    r = cli('bmrs-data', 'fetch', 'mnist', '--root', ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    return ROOT


def train(tmp, *args, root=ROOT):
    return cli('bmrs-train', '--metrics_dir', tmp/'metrics', '--output_dir', tmp/'output', '--data_root', root, *SMALL, *args)


def test_end_to_end_record(root, tmp_path):
    r = train(tmp_path, '--pruning_class', 'LogUniformApproximateDiracBMRPruningLayer', '--run_name', 'bmrsn')
    assert r.returncode == 0, r.stderr
    path = tmp_path/'metrics'/'bmrsn-seed3.json'
    rec = json.loads(path.read_text())
    cfg, env, m = rec['config'], rec['environment'], rec['metrics']
    # parameters, environment, metrics: every field the issue names
    for k in ('network', 'dataset', 'pruning_class', 'criterion', 'batch_size', 'learning_rate', 'seed', 'n_epochs',
              'fine_tune_epochs', 'kl_averaging', 'compress_epochs'):
        assert k in cfg, k
    for k in ('torch', 'torchvision', 'python', 'device', 'git_commit', 'bmrs'):
        assert k in env, k
    for k in ('val_top1', 'val_top5', 'test_top1', 'test_top5', 'unit_compression', 'param_compression', 'layers',
              'n_params', 'n_params_removed', 'n_gate_params', 'times'):
        assert k in m, k
    assert set(m['times']) >= {'train', 'fine_tune', 'test'}
    assert m['layers'] == [dict(gate='3', kept=m['layers'][0]['kept'], total=32), dict(gate='6', kept=m['layers'][1]['kept'], total=32)]
    assert 0 <= m['test_top1'] <= m['test_top5'] <= 100
    csv = (tmp_path/'metrics'/'bmrsn-seed3.csv').read_text().splitlines()
    assert csv[0].split(',')[:6] == ['phase', 'epoch', 'loss', 'ce', 'kl', 'val_top1'] and len(csv) == 1 + 2 + 1
    assert (tmp_path/'output'/'bmrsn-seed3'/'model.pt').exists()
    # a second run with --skip_exists does nothing
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob('*') if p.is_file()}
    r2 = train(tmp_path, '--pruning_class', 'LogUniformApproximateDiracBMRPruningLayer', '--run_name', 'bmrsn', '--skip_exists')
    assert r2.returncode == 0, r2.stderr
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob('*') if p.is_file()} == before
    # the matched L2 baseline reads the BMRS_N run's file and prunes exactly that share of units
    fake = dict(m, unit_compression=25.0)
    (tmp_path/'target.json').write_text(json.dumps(dict(rec, metrics=fake)))
    r3 = train(tmp_path, '--pruning_class', 'LogUniformL2NormPruningLayer', '--run_name', 'l2',
               '--compression_percentage_file', tmp_path/'target.json')
    assert r3.returncode == 0, r3.stderr
    m3 = json.loads((tmp_path/'metrics'/'l2-seed3.json').read_text())['metrics']
    assert m3['match_unit_compression'] == 25.0 and m3['unit_compression'] == 25.0


def test_seed_reproducible(root, tmp_path):
    a = train(tmp_path/'a', '--pruning_class', 'snr'); b = train(tmp_path/'b', '--pruning_class', 'snr')
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    ma = json.loads(next((tmp_path/'a'/'metrics').glob('*.json')).read_text())['metrics']
    mb = json.loads(next((tmp_path/'b'/'metrics').glob('*.json')).read_text())['metrics']
    assert (ma['test_top1'], ma['unit_compression']) == (mb['test_top1'], mb['unit_compression'])


def test_none_baseline_has_no_gates(root, tmp_path):
    r = train(tmp_path, '--disable_pruning')
    assert r.returncode == 0, r.stderr
    m = json.loads(next((tmp_path/'metrics').glob('*.json')).read_text())['metrics']
    assert m['n_gate_params'] == 0 and m['unit_compression'] == 0 and m['layers'] == []


@pytest.mark.parametrize('args, message', [
    (['--network', 'vgg'], "invalid choice: 'vgg'"),
    (['--n_epochs', '-1'], 'n_epochs must be >= 0, got n_epochs=-1'),
    (['--pruning_class', 'l2', '--compression_percentage_file', '/nonexistent/metrics.json'], '/nonexistent/metrics.json'),
    (['--pretrained', '--weights', '/nonexistent/weights.pt'], 'weights file not found: /nonexistent/weights.pt'),
    (['--pretrained'], '--pretrained needs --weights'),
    (['--masks', 'sticky'], "invalid choice: 'sticky'"),
])
def test_bad_input(root, tmp_path, args, message):
    r = train(tmp_path, *args)
    assert r.returncode != 0 and message in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr
    assert not (tmp_path/'metrics').exists() and not (tmp_path/'output').exists()


def test_missing_dataset(tmp_path):
    r = train(tmp_path, root=tmp_path/'empty')
    assert r.returncode == 1 and 'bmrs-data fetch mnist' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path/'metrics').exists()


def test_unreadable_checkpoint(root, tmp_path):
    bad = tmp_path/'bad.pt'; bad.write_bytes(b'not a checkpoint')
    r = train(tmp_path, '--pretrained', '--weights', bad)
    assert r.returncode == 1 and 'bad.pt' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path/'metrics').exists()


def test_save_reduced(root, tmp_path):
    "--save_reduced writes the physically reduced network and its report; it loads back as a plain module"
    import torch
    from bmrs.reduce import load_reduced
    from bmrs.layers import gates
    r = train(tmp_path, '--pruning_class', 'LogUniformCDFBMRPruningLayer', '--p1', '4', '--save_reduced')
    assert r.returncode == 0, r.stderr
    rec = json.loads(next((tmp_path/'metrics').glob('*.json')).read_text())
    red_dir = Path(rec['files']['reduced'])
    assert {p.name for p in red_dir.iterdir()} >= {'arch.json', 'kept.json', 'efficiency.json'}
    eff = json.loads((red_dir/'efficiency.json').read_text())
    assert eff['max_logit_diff'] < 1e-4
    model = load_reduced(red_dir)
    assert not gates(model) and model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)
