"""End-to-end tests of the `bmrs-train` command on a few hundred real MNIST images (fetched by `bmrs-data`)."""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest
from conftest import ROOT

SMALL = ['--network', 'mlp', '--dataset', 'mnist', '--n_layers', '1', '--hidden_dim', '32', '--n_epochs', '2',
         '--fine_tune_epochs', '1', '--batch_size', '32', '--limit', '300', '--learning_rate', '0.01', '--no_progress',
         '--seed', '3']


def REPO_REL(p):
    "`p` relative to the working directory, the way a user would type it"
    return Path(os.path.relpath(p))


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
    assert 'skipping:' in r2.stderr and 'finished with the same options' in r2.stderr, r2.stderr
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob('*') if p.is_file()} == before
    # another learning rate under the same name: refused (with or without --skip_exists), naming what differs; nothing changes
    for extra in ([], ['--skip_exists']):
        r4 = train(tmp_path, '--pruning_class', 'LogUniformApproximateDiracBMRPruningLayer', '--run_name', 'bmrsn',
                   '--learning_rate', '0.001', *extra)
        assert r4.returncode == 2 and 'differs in learning_rate 0.01 → 0.001' in r4.stderr and '--run_name' in r4.stderr, r4.stderr
        assert 'Traceback' not in r4.stderr and len(r4.stderr.strip().splitlines()) == 1, r4.stderr
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob('*') if p.is_file()} == before
    # the checkpoint gone: --skip_exists runs again and says why
    (tmp_path/'output'/'bmrsn-seed3'/'model.pt').unlink()
    r5 = train(tmp_path, '--pruning_class', 'LogUniformApproximateDiracBMRPruningLayer', '--run_name', 'bmrsn', '--skip_exists')
    assert r5.returncode == 0 and 'running: ' in r5.stderr and 'checkpoint of this run not found' in r5.stderr, r5.stderr
    assert (tmp_path/'output'/'bmrsn-seed3'/'model.pt').exists()
    # the record is read from any working directory: its paths are relative to it
    from bmrs.train import load_run
    cwd = os.getcwd(); os.chdir(tmp_path/'output')
    try: assert load_run(REPO_REL(path))[1].run_name == 'bmrsn'
    finally: os.chdir(cwd)
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
    (['--run_name', '../../x'], "run_name '../../x' is not a safe file name"),
    (['--run_name', 'a/b'], "run_name 'a/b' is not a safe file name"),
    (['--weights', '/nonexistent/weights.pt'], '--weights is only used with --pretrained'),
])
def test_bad_input(root, tmp_path, args, message):
    r = train(tmp_path, *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr
    assert not (tmp_path/'metrics').exists() and not (tmp_path/'output').exists()


def test_exit_codes_documented():
    "the exit statuses bmrs-train uses are bmrs.utils' (0 ok, 1 failed, 2 bad usage or input, 130 / 143 interrupted)"
    from bmrs.utils import EXIT_OK, EXIT_FAILED, EXIT_USAGE
    assert (EXIT_OK, EXIT_FAILED, EXIT_USAGE) == (0, 1, 2)


def test_help_is_trainconfig():
    "bmrs-train --help lists one option per TrainConfig field (the release's --mu_p_tilde among them), with its comment as help"
    from dataclasses import fields
    from bmrs.train import TrainConfig
    r = cli('bmrs-train', '--help')
    assert r.returncode == 0, r.stderr
    text = ' '.join(r.stdout.split())
    for f in fields(TrainConfig):
        assert (f'--{f.name}' if f.name != 'progress' else '--no_progress') in text, f.name
    assert "--mu_p_tilde MU_P_TILDE the release's name for mu_p (BMRS_N) or p1 (BMRS_U)" in text, text


def test_mu_p_tilde_alias(root, tmp_path):
    "the release's --mu_p_tilde 4 with BMRS_U is --p1 4: same run name, and the record holds p1 = 4"
    r = train(tmp_path, '--pruning_class', 'LogUniformCDFBMRPruningLayer', '--mu_p_tilde', '4', '--n_epochs', '1', '--fine_tune_epochs', '0')
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path/'metrics'/'mlp-mnist-bmrs_u4-seed3.json').read_text())
    assert (rec['config']['p1'], rec['config']['mu_p_tilde'], rec['config']['method']) == (4, None, 'bmrs_u4')
    r = train(tmp_path, '--pruning_class', 'bmrs_u', '--mu_p_tilde', '4', '--p1', '6')
    assert r.returncode == 2 and "--mu_p_tilde is the release's name for --p1 here" in r.stderr, r.stderr


def test_missing_dataset(tmp_path):
    r = train(tmp_path, root=tmp_path/'empty')
    assert r.returncode == 2 and 'bmrs-data fetch mnist' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path/'metrics').exists()


def test_unreadable_checkpoint(root, tmp_path):
    bad = tmp_path/'bad.pt'; bad.write_bytes(b'not a checkpoint')
    r = train(tmp_path, '--pretrained', '--weights', bad)
    assert r.returncode == 2 and 'bad.pt' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert not (tmp_path/'metrics').exists()


def test_save_reduced(root, tmp_path):
    "--save_reduced writes the physically reduced network and its report; it loads back as a plain module"
    import torch
    from bmrs.reduce import load_reduced
    from bmrs.layers import gates
    r = train(tmp_path, '--pruning_class', 'LogUniformCDFBMRPruningLayer', '--p1', '4', '--save_reduced')
    assert r.returncode == 0, r.stderr
    rec = json.loads(next((tmp_path/'metrics').glob('*.json')).read_text())
    red_dir = tmp_path/'metrics'/rec['files']['reduced']                  # relative to the record
    assert {p.name for p in red_dir.iterdir()} >= {'arch.json', 'kept.json', 'efficiency.json'}
    eff = json.loads((red_dir/'efficiency.json').read_text())
    assert eff['max_logit_diff'] < 1e-4
    model = load_reduced(red_dir)
    assert not gates(model) and model(torch.zeros(2, 1, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize('text, message', [
    ('{"metrics": {"unit_compression": 140}}', 'unit_compression must be a number in [0, 100], got 140'),
    ('{"metrics": {"unit_compression": "many"}}', "got 'many'"),
    ('[25.0]', 'holds a JSON list'),
    ('{"metrics": {"unit_compr', 'is not valid JSON'),
])
def test_bad_compression_file(root, tmp_path, text, message):
    "a bad --compression_percentage_file is found before training, naming the file"
    f = tmp_path/'target.json'; f.write_text(text)
    r = train(tmp_path, '--pruning_class', 'l2', '--compression_percentage_file', f)
    assert r.returncode == 2 and message in r.stderr and str(f) in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path/'metrics').exists() and not (tmp_path/'output').exists()


@pytest.mark.parametrize('which', ['metrics_dir', 'output_dir'])
def test_unwritable_dir(root, tmp_path, which):
    "a metrics or output folder that cannot be written is found before training: one line naming it, exit 2"
    (tmp_path/'file').write_text('')
    bad = tmp_path/'file'/'sub'
    exe = ['--metrics_dir', tmp_path/'m', '--output_dir', tmp_path/'o']
    exe[exe.index(f'--{which}') + 1] = bad
    r = cli('bmrs-train', *exe, '--data_root', root, *SMALL, '--n_epochs', '50')
    assert r.returncode == 2 and f"cannot write to {which} '{bad}'" in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not list(tmp_path.rglob('*.json')) and not list(tmp_path.rglob('*.pt'))


def test_non_finite_loss(root, tmp_path):
    "--learning_rate inf: stops at the first NaN loss naming epoch and step; no record, exit 1"
    r = train(tmp_path, '--learning_rate', 'inf')
    assert r.returncode == 1 and 'the loss is nan at training epoch 1, step 2' in r.stderr, r.stderr
    assert 'Traceback' not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not list((tmp_path/'metrics').glob('*.json')) and not list(tmp_path.rglob('*.pt'))


def test_data_root_from_environment(root, tmp_path):
    "without --data_root, bmrs-train reads $BMRS_DATA_ROOT (run from a folder with no ./data)"
    exe = shutil.which('bmrs-train', path=str(Path(sys.executable).parent)) or shutil.which('bmrs-train')
    r = subprocess.run([exe, '--metrics_dir', 'm', '--output_dir', 'o', *SMALL, '--n_epochs', '1', '--fine_tune_epochs', '0'],
                       capture_output=True, text=True, cwd=tmp_path, env={**os.environ, 'BMRS_DATA_ROOT': str(root)}, timeout=600)
    assert r.returncode == 0, r.stderr
    rec = json.loads(next((tmp_path/'m').glob('*.json')).read_text())
    assert rec['config']['data_root'] == str(root)
    # its paths were given relative to the run's working directory; the record loads from any other one
    from bmrs.train import load_run
    assert Path.cwd() != tmp_path
    assert load_run(next((tmp_path/'m').glob('*.json')))[1].n_epochs == 1


@pytest.mark.parametrize('sig, code, name', [(signal.SIGINT, 130, 'Ctrl-C'), (signal.SIGTERM, 143, 'SIGTERM')])
def test_interrupt(root, tmp_path, sig, code, name):
    "Ctrl-C / SIGTERM during training: one line, exit 130 / 143, no record and no partial file"
    exe = shutil.which('bmrs-train', path=str(Path(sys.executable).parent)) or shutil.which('bmrs-train')
    p = subprocess.Popen([exe, '--metrics_dir', tmp_path/'metrics', '--output_dir', tmp_path/'output', '--data_root', root,
                          *SMALL, '--n_epochs', '200'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         # SIGINT as a terminal's foreground job has it: a job started in the background (as CI may
                         # start this suite) inherits SIGINT ignored, and a program rightly keeps ignoring it
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.monotonic()
    while not (tmp_path/'output').exists() and p.poll() is None and time.monotonic() - t0 < 120: time.sleep(.05)
    time.sleep(.5)                                            # training has started (the folders are checked just before)
    p.send_signal(sig)
    out, err = p.communicate(timeout=120)
    assert p.returncode == code, (p.returncode, err)
    assert f'interrupted ({name})' in err and 'Traceback' not in err and len(err.strip().splitlines()) == 1, err
    assert [f for f in tmp_path.rglob('*') if f.is_file()] == []


LOST_CTRL_C = """
import os, signal, sys, time
import bmrs.train as t
first = t.train_epoch
class Finaliser:
    def __del__(self): os.kill(os.getpid(), signal.SIGINT); time.sleep(1)   # the handler runs here, inside a finaliser
def train_epoch(*a, **k):
    Finaliser()                                   # dropped at once: Python reports and drops what its __del__ raises
    t.train_epoch = first
    return first(*a, **k)
t.train_epoch = train_epoch
t.main(sys.argv[1:])
"""


def test_lost_interrupt(root, tmp_path):
    "a Ctrl-C whose KeyboardInterrupt Python drops (it lands in a finaliser, as the CI run's did in an import's weakref callback) still stops the run: exit 130, one line, nothing written"
    p = subprocess.run([sys.executable, '-c', LOST_CTRL_C, '--metrics_dir', tmp_path/'metrics', '--output_dir', tmp_path/'output',
                        '--data_root', root, *SMALL], capture_output=True, text=True, timeout=600,
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.returncode == 130, (p.returncode, p.stderr)
    assert 'interrupted (Ctrl-C)' in p.stderr and 'Traceback' not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert [f for f in tmp_path.rglob('*') if f.is_file()] == []
