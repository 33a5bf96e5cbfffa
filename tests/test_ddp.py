"""`bmrs-train` with several processes (torchrun, gloo on the CPU) and `--resume`: both ranks end with the same
parameters and masks; one DDP step's gradient is the mean of the ranks' gradients with the KL counted once; the record
of a 2-process run is complete, says world_size 2 and loads; a run killed by SIGKILL and resumed ends with the numbers
of an uninterrupted run (bit for bit); a resume with other options is refused. GPU paths (NCCL, bf16, fp16) run only
where CUDA is. Run as a script by torchrun (`python -m torch.distributed.run ... tests/test_ddp.py worker ...`), this
file is the 2-process worker of those tests."""
import csv, io, json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, exe, env

TINY = ['--network', 'mlp', '--dataset', 'mnist', '--n_layers', '1', '--hidden_dim', '16', '--n_epochs', '3',
        '--fine_tune_epochs', '3', '--batch_size', '32', '--limit', '100', '--learning_rate', '0.01', '--no_progress',
        '--seed', '5', '--run_name', 'tiny', '--data_root', str(ROOT)]
TIMEOUT = 300


def folders(tmp): return ['--metrics_dir', str(tmp/'metrics'), '--output_dir', str(tmp/'output')]


def torchrun(n=2): return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', str(n)]


def run_env(): return dict(env(), OMP_NUM_THREADS='1')


def record(tmp): return tmp/'metrics'/'tiny-seed5.json'


def rows(tmp):
    "per-epoch rows without the wall-clock column"
    return [{k: v for k, v in r.items() if k != 'time'} for r in csv.DictReader(io.StringIO((tmp/'metrics'/'tiny-seed5.csv').read_text()))]


def metrics(tmp):
    return {k: v for k, v in json.loads(record(tmp).read_text())['metrics'].items() if k != 'times'}


def state(tmp):
    return torch.load(tmp/'output'/'tiny-seed5'/'model.pt', map_location='cpu', weights_only=True)['state_dict']


def same_state(a, b):
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), k


def progress(tmp):
    "(phase, epoch) of the run's epoch checkpoint, None while there is none"
    p = tmp/'output'/'tiny-seed5'/'progress.pt'
    try: s = torch.load(p, map_location='cpu', weights_only=True)
    except (FileNotFoundError, RuntimeError, EOFError): return None
    return s['phase'], s['epoch']


def kill_all(p):
    "SIGKILL process `p` and every process under it (torchrun starts its workers in sessions of their own)"
    import psutil
    procs = psutil.Process(p.pid).children(recursive=True)
    for q in [psutil.Process(p.pid)] + procs:
        try: q.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess: pass
    psutil.wait_procs(procs, timeout=30); p.wait()


def kill_when(cmd, when, timeout=TIMEOUT):
    "Start `cmd`; SIGKILL it and all its processes as soon as `when()` holds. Whether it was killed."
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=run_env())
    t0 = time.monotonic()
    while p.poll() is None and time.monotonic() - t0 < timeout:
        if when(): kill_all(p); return True
        time.sleep(.02)
    err = p.communicate(timeout=60)[1].decode()
    pytest.fail(f"the run ended (status {p.returncode}) before the moment to kill it: {err[-2000:]}")


# ---------------------------------------------------------------- the worker torchrun starts (2 processes)
def worker(mode, out, *extra):
    """Rank `RANK`'s part of a test: 'train' (a run, exactly as the CLI makes it with `extra` options and --save_reduced,
    its final network kept), 'train_only' (the same without --save_reduced) or 'grad' (one step)"""
    import bmrs.train as bt
    from bmrs.layers import gates
    from bmrs.distributed import dist_env, init_distributed, close_distributed, wrap_ddp, seed_rank_noise, shard_slice
    torch.set_num_threads(1)
    d = dist_env(); out = Path(out)
    if mode in ('train', 'train_only'):
        built = {}
        build = bt.build
        bt.build = lambda cfg, splits: built.setdefault('model', build(cfg, splits))
        cfg = bt.TrainConfig(**vars(bt.parser().parse_args(folders(out) + TINY + ['--save_reduced']*(mode == 'train') + list(extra))))
        try: bt.train(cfg)
        finally: bt.close_distributed()
        m = built['model']
        torch.save(dict(state=m.state_dict(), masks=[g.mask for g in gates(m)]), out/f'rank{d.rank}.pt')
    elif mode == 'grad':
        init_distributed(d, 'cpu')
        model, x, y = grad_case()
        seed_rank_noise(100, d)                                 # the rank's noise: seed + rank
        net = wrap_ddp(model, d, 'cpu')
        s = shard_slice(len(y), d)
        cfg = bt.TrainConfig(kl_averaging='mean')
        loss, _ = bt.rank_loss(net(x[s]), y[s], bt.kl_term(net, cfg, 1000), len(y), d)
        loss.backward()
        torch.save({n: p.grad for n, p in model.named_parameters()}, out/f'grad{d.rank}.pt')
        close_distributed()


def grad_case():
    "A gated MLP (every rank builds the same), a global batch of 9 images (shards of 5 and 4) and its labels"
    from bmrs.models import build_model
    torch.manual_seed(0)
    model = build_model('mlp', in_channels=1, image_size=4, n_classes=3, gate='bmrs_n', n_layers=1, hidden_dim=6)
    with torch.no_grad():                                      # gates away from their start: a KL gradient that matters
        for n, p in model.named_parameters():
            if n.endswith('mu') or n.endswith('logsigma'): p.add_(torch.randn_like(p))
    g = torch.Generator().manual_seed(1)
    return model, torch.randn(9, 1, 4, 4, generator=g), torch.randint(0, 3, (9,), generator=g)


# ---------------------------------------------------------------- the tests
@pytest.fixture(scope='module')
def two(tmp_path_factory):
    "A 2-process run of TINY (with --save_reduced), each rank's final network saved by the worker"
    tmp = tmp_path_factory.mktemp('two')
    r = subprocess.run(torchrun() + [__file__, 'worker', 'train', str(tmp)], capture_output=True, text=True, env=run_env(), timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return tmp


def test_two_processes_same_parameters_and_masks(two):
    a, b = (torch.load(two/f'rank{r}.pt', weights_only=True) for r in (0, 1))
    same_state(a['state'], b['state'])
    assert len(a['masks']) == 2 and all(torch.equal(m, n) for m, n in zip(a['masks'], b['masks']))
    same_state(a['state'], state(two))                         # rank 0 wrote that network


def test_two_process_record(two):
    from bmrs.train import load_run, read_record, verify_run_files
    rec, base = read_record(record(two))
    assert rec['config']['world_size'] == 2
    assert set(rec['files']) == {'epochs_csv', 'checkpoint', 'reduced'}
    verify_run_files(rec, base)
    for k in ('val_top1', 'val_top5', 'test_top1', 'test_top5', 'unit_compression', 'param_compression', 'layers', 'n_params', 'times'):
        assert k in rec['metrics'], k
    assert [(r['phase'], r['epoch']) for r in rows(two)] == [('train', '1'), ('train', '2'), ('train', '3'), ('fine_tune', '1'), ('fine_tune', '2'), ('fine_tune', '3')]
    model, cfg = load_run(record(two))
    same_state(model.state_dict(), state(two))
    assert not (two/'output'/'tiny-seed5'/'progress.pt').exists()
    # the same options with one process: another run (its noise differs), refused under this name
    r = subprocess.run([exe('bmrs-train')] + folders(two) + TINY + ['--save_reduced'], capture_output=True, text=True, env=run_env(), timeout=TIMEOUT)
    assert r.returncode == 2 and 'differs in world_size 2 → 1' in r.stderr and 'Traceback' not in r.stderr, r.stderr


@pytest.mark.parametrize('network, tol', [('mlp', 1e-4), ('resnet18', 1e-2)])
def test_compact_two_processes(tmp_path, network, tol):
    """--compact inside DDP: a matched SNR run prunes half the units at the final compression and fine-tunes through the
    compact forward (the MLP: the chain; ResNet-18, 1 + 1 epochs, no reduction: the torch.fx path). Both ranks end with
    the same parameters and masks (and, without BatchNorm, buffers: DDP keeps each rank's BatchNorm statistics, sent
    from rank 0 at each forward), and with the masks and, up to float rounding, the per-epoch numbers of the same
    2-process run without --compact (ResNet-18: to 1e-2, as float32 rounding grows through its BatchNorms and Adam;
    bmrs.compact's tests show the two bit for bit equal in float64)."""
    (tmp_path/'pct.json').write_text(json.dumps({'unit_compression': 50.0}))
    opts = ['--pruning_class', 'snr', '--compression_percentage_file', str(tmp_path/'pct.json'), '--network', network]
    mode = 'train' if network == 'mlp' else 'train_only'
    if network != 'mlp': opts += ['--n_epochs', '1', '--fine_tune_epochs', '1']
    out = {}
    for flag in ([], ['--compact']):
        d = tmp_path/('compact' if flag else 'masked')
        r = subprocess.run(torchrun() + [__file__, 'worker', mode, str(d)] + opts + flag, capture_output=True, text=True,
                           env=run_env(), timeout=TIMEOUT)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        out[bool(flag)] = d
    a, b = (torch.load(out[True]/f'rank{r}.pt', weights_only=True) for r in (0, 1))
    stats = ('running_mean', 'running_var', 'num_batches_tracked')
    same_state(*({k: v for k, v in s['state'].items() if not k.endswith(stats)} for s in (a, b)))
    if network == 'mlp': same_state(a['state'], b['state'])
    assert all(torch.equal(m, n) for m, n in zip(a['masks'], b['masks']))
    ref = torch.load(out[False]/'rank0.pt', weights_only=True)
    assert all(torch.equal(m, n) for m, n in zip(a['masks'], ref['masks']))
    assert 0 < sum(int((m == 0).sum()) for m in a['masks']) < sum(m.numel() for m in a['masks'])
    assert json.loads(record(out[True]).read_text())['config']['compact'] is True
    for x, y in zip(rows(out[True]), rows(out[False]), strict=True):
        assert (x['phase'], x['epoch'], x['unit_compression']) == (y['phase'], y['epoch'], y['unit_compression'])
        assert abs(float(x['loss']) - float(y['loss'])) <= tol*abs(float(y['loss'])), (x, y)


def test_ddp_gradient_is_mean_with_kl_once(tmp_path):
    "one DDP step: the gradient is the global batch's mean CE + KL once, computed here by hand from the ranks' shards"
    import torch.nn.functional as F
    from bmrs.layers import model_kl
    r = subprocess.run(torchrun() + [__file__, 'worker', 'grad', str(tmp_path)], capture_output=True, text=True, env=run_env(), timeout=TIMEOUT)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    g0, g1 = (torch.load(tmp_path/f'grad{r}.pt', weights_only=True) for r in (0, 1))
    model, x, y = grad_case()
    shards = [slice(0, 5), slice(5, 9)]                        # torch.tensor_split's sizes of 9 over 2 ranks, by hand
    model.train(); ce_sum = 0
    for rank, s in enumerate(shards):
        torch.manual_seed(100 + rank)                           # rank r's noise draws
        ce_sum = ce_sum + F.cross_entropy(model(x[s]), y[s], reduction='sum')
    kl = model_kl(model, 'mean')
    (ce_sum/9 + kl).backward()                                 # the global batch's mean CE, the KL once
    want = {n: p.grad.clone() for n, p in model.named_parameters()}
    for n in want:
        torch.testing.assert_close(g0[n], want[n], rtol=1e-5, atol=1e-7, msg=n)
        assert torch.equal(g0[n], g1[n]), n                    # the all-reduced gradient: the same on both ranks
    model.zero_grad(); model_kl(model, 'mean').backward()
    kl_grad = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    mu = next(n for n in kl_grad if n.endswith('mu'))
    assert kl_grad[mu].abs().max() > 1e-3                      # so KL/2 (or 2 KL) would be caught above
    assert not torch.allclose(want[mu] - kl_grad[mu]/2, want[mu], rtol=1e-5, atol=1e-7)


def test_resume_single_process_bit_for_bit(tmp_path):
    "SIGKILL after a training epoch's checkpoint, again during fine-tuning; --resume ends with the uninterrupted run's numbers"
    full, cut = tmp_path/'full', tmp_path/'cut'
    r = subprocess.run([exe('bmrs-train')] + folders(full) + TINY, capture_output=True, text=True, env=run_env(), timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    cmd = [exe('bmrs-train')] + folders(cut) + TINY + ['--resume']
    assert kill_when(cmd, lambda: (progress(cut) or ('',))[0] == 'train')
    assert not record(cut).exists()
    # the options must be the run's: another learning rate is refused, naming it; nothing changes
    before = (cut/'output'/'tiny-seed5'/'progress.pt').read_bytes()
    r = subprocess.run(cmd + ['--learning_rate', '0.02'], capture_output=True, text=True, env=run_env(), timeout=TIMEOUT)
    assert r.returncode == 2 and 'differs in learning_rate 0.01 → 0.02' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert (cut/'output'/'tiny-seed5'/'progress.pt').read_bytes() == before
    assert kill_when(cmd, lambda: (progress(cut) or ('',))[0] == 'fine_tune')
    assert not record(cut).exists()
    r = subprocess.run(cmd, capture_output=True, text=True, env=run_env(), timeout=TIMEOUT)
    assert r.returncode == 0 and 'resuming: tiny-seed5 after fine_tune epoch' in r.stderr, r.stderr
    assert metrics(cut) == metrics(full) and rows(cut) == rows(full)
    same_state(state(cut), state(full))
    assert not (cut/'output'/'tiny-seed5'/'progress.pt').exists()


def test_killed_ddp_run_resumes(two, tmp_path):
    "a 2-process run killed after an epoch checkpoint resumes with --resume and ends with the uninterrupted 2-process run's numbers"
    cmd = torchrun() + [exe('bmrs-train')] + folders(tmp_path) + TINY + ['--save_reduced', '--resume']
    assert kill_when(cmd, lambda: (progress(tmp_path) or ('',))[0] == 'train')
    time.sleep(3); assert not record(tmp_path).exists()         # no process of the run lives on
    r = subprocess.run(cmd, capture_output=True, text=True, env=run_env(), timeout=TIMEOUT)
    assert r.returncode == 0 and 'resuming: tiny-seed5 after' in r.stderr, r.stderr[-3000:]
    assert json.loads(record(tmp_path).read_text())['config']['world_size'] == 2
    assert metrics(tmp_path) == metrics(two) and rows(tmp_path) == rows(two)
    same_state(state(tmp_path), state(two))


def test_bf16_on_cpu(tmp_path):
    "--precision bf16 on the CPU: the run finishes and records its precision; fp16 is refused there in one line"
    r = subprocess.run([exe('bmrs-train')] + folders(tmp_path) + TINY + ['--precision', 'bf16', '--n_epochs', '1', '--fine_tune_epochs', '0'],
                       capture_output=True, text=True, env=run_env(), timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert json.loads(record(tmp_path).read_text())['config']['precision'] == 'bf16'
    if not torch.cuda.is_available():
        r = subprocess.run([exe('bmrs-train')] + folders(tmp_path/'x') + TINY + ['--precision', 'fp16'], capture_output=True, text=True,
                           env=run_env(), timeout=TIMEOUT)
        assert r.returncode == 2 and '--precision fp16 needs CUDA' in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tmp_path/'x').exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
@pytest.mark.parametrize('precision', ['bf16', 'fp16'])
def test_cuda_precision(tmp_path, precision):
    r = subprocess.run([exe('bmrs-train')] + folders(tmp_path) + TINY + ['--device', 'cuda', '--precision', precision],
                       capture_output=True, text=True, env=run_env(), timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    rec = json.loads(record(tmp_path).read_text())
    assert rec['config']['precision'] == precision and rec['environment']['device'].startswith('cuda')


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason='needs 2 GPUs (NCCL)')
def test_nccl_two_gpus(tmp_path):
    r = subprocess.run(torchrun() + [exe('bmrs-train')] + folders(tmp_path) + TINY + ['--device', 'cuda', '--network', 'lenet5', '--sync_bn'],
                       capture_output=True, text=True, env=run_env(), timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(record(tmp_path).read_text())['config']['world_size'] == 2


if __name__ == '__main__' and sys.argv[1:2] == ['worker']:
    worker(*sys.argv[2:])
