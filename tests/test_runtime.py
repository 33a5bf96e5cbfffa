"""`benchmarks/runtime.py` end to end with two repetitions: the JSON it writes (structure, not timings) and its Table 3
Markdown. No assertion on how long anything takes."""
import json, os, subprocess, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO/'benchmarks'/'runtime.py'
METHODS = ['none', 'etheta', 'snr', 'bmrs_n', 'bmrs_u']


def run(*args, cwd, script=SCRIPT, timeout=600):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def test_runtime_json_and_table(tmp_path):
    out = tmp_path/'bench'/'runtime.json'
    r = run('--reps', 2, '--warmup', 1, '--out', out, '--note', 'test run', cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(out.read_text())
    assert rec['kind'] == 'runtime_benchmark' and rec['note'] == 'test run'
    assert {k: rec['settings'][k] for k in ('reps', 'warmup', 'batch_size', 'threads', 'device')} == \
           dict(reps=2, warmup=1, batch_size=32, threads=1, device='cpu')
    assert rec['machine']['torch'] and rec['machine']['cpu'] and rec['command'].startswith('python benchmarks/runtime.py --reps 2')
    rows = rec['rows']
    assert [(x['network'], x['method']) for x in rows] == [(n, m) for n in ('mlp', 'lenet5') for m in METHODS]
    for x in rows:
        assert x['dataset'] == 'mnist' and x['input_shape'] == [1, 32, 32]
        for k in ('train', 'infer'):
            assert 0 < x[f'{k}_min_ms'] <= x[f'{k}_median_ms'] and x[f'{k}_mean_ms'] > 0 and x[f'{k}_std_ms'] >= 0
        assert (x['n_gates'] == 0) == (x['method'] == 'none')
    byk = {(x['network'], x['method']): x for x in rows}
    # the paper's MNIST MLP: 8 gates × 100 units; LeNet5 (c=1): 6 + 16 filters + 120 + 84 neurons = 226 units (11_explanations, “Parameter and unit counts of the paper's networks”)
    assert (byk[('mlp', 'bmrs_n')]['n_gates'], byk[('mlp', 'bmrs_n')]['n_units']) == (8, 800)
    assert byk[('lenet5', 'snr')]['n_units'] == 226
    assert byk[('mlp', 'bmrs_n')]['n_params'] - byk[('mlp', 'none')]['n_params'] == 2*800   # μ and log σ per unit
    md = out.with_suffix('.md').read_text()
    lines = md.splitlines()
    assert lines[0].startswith('| Model | Method | MNIST train ms | MNIST train ms (paper) | MNIST inf. ms | MNIST inf. ms (paper) |')
    assert len([l for l in lines if l.startswith('| MLP |') or l.startswith('| LeNet5 |')]) == 10
    assert '| MLP | BMRS_N |' in md and '| 20.02 |' in md and '| 11.39 |' in md       # the paper's numbers beside ours
    assert 'Titan X GPU' in md and 'Note: test run' in md and 'over 2 repetitions' in md
    assert md.strip() in r.stdout


def test_gate_overhead_batch_sizes(tmp_path):
    "The former benchmarks/gate_overhead.py: None and BMRS_N train steps at batch 32 and 128, with the gated / None ratio."
    out = tmp_path/'overhead.json'
    r = run('--reps', 2, '--warmup', 1, '--networks', 'mlp', '--methods', 'none', 'bmrs_n', '--batch_size', 32, 128,
            '--out', out, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(out.read_text())
    assert rec['settings']['batch_size'] == 32 and rec['settings']['batch_sizes'] == [32, 128]
    assert [(x['method'], x['batch_size']) for x in rec['rows']] == [('none', 32), ('none', 128), ('bmrs_n', 32), ('bmrs_n', 128)]
    md = out.with_suffix('.md').read_text()
    assert len([l for l in md.splitlines() if l.startswith('| MLP | BMRS_N |')]) == 1          # Table 3: batch 32 only
    by = {(x['method'], x['batch_size']): x['train_median_ms'] for x in rec['rows']}
    for b in (32, 128):                                                                      # the overhead table, every batch
        assert f"| MLP | MNIST | BMRS_N | {b} | {by[('none', b)]:.2f} | {by[('bmrs_n', b)]:.2f} | {by[('bmrs_n', b)]/by[('none', b)]:.2f} |" in md
    assert not (REPO/'benchmarks'/'gate_overhead.py').exists()


def test_bad_arguments(tmp_path):
    r = run('--reps', 0, '--out', tmp_path/'x.json', cwd=tmp_path)
    assert r.returncode != 0 and '--reps must be >= 1, got 0' in r.stderr
    r = run('--methods', 'magnitude', '--out', tmp_path/'x.json', cwd=tmp_path)
    assert r.returncode != 0 and "invalid choice: 'magnitude'" in r.stderr
    r = run('--batch_size', 32, 0, '--out', tmp_path/'x.json', cwd=tmp_path)
    assert r.returncode != 0 and '--batch_size must be >= 1, got 0' in r.stderr
    assert not (tmp_path/'x.json').exists()


def test_sampler_and_reduced(tmp_path):
    "The sampler the gates draw with is recorded; --reduced times plain against reduced LeNet5 (structure, not speed)."
    out = tmp_path/'r.json'
    r = run('--reps', 2, '--warmup', 1, '--networks', 'lenet5', '--methods', 'none', 'bmrs_n', '--sampler', 'exact',
            '--reduced', 1, 3, 22, 8, '--out', out, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(out.read_text())
    assert (rec['settings']['sampler'], rec['settings']['fused']) == ('exact', True)
    [row] = rec['reduced']
    assert row['kept'] == [1, 3, 22, 8] and row['batch_size'] == 64 and row['n_params_plain'] == 61706
    # hand count: conv1 1·25 + 1, conv2 3·1·25 + 3, fc1 22·(3·5·5) + 22, fc2 8·22 + 8, fc3 10·8 + 10
    assert row['n_params_reduced'] == 26 + 78 + 1672 + 184 + 90
    assert len(row['picked_timings']) == 5 and row['picked'] in row['picked_timings']   # 4 settings, then conv1 batch-grouped
    assert row['speedup'] == row['plain_ms']/row['reduced_ms']
    assert '| 1 / 3 / 22 / 8 | 64 |' in out.with_suffix('.md').read_text()
    r = run('--reps', 1, '--networks', 'lenet5', '--methods', 'none', '--reduced', 1, 3, 22, 999, '--out', tmp_path/'x.json', cwd=tmp_path)
    assert r.returncode != 0 and 'a gate of 84 units cannot keep 999' in r.stderr and not (tmp_path/'x.json').exists()


def test_compact(tmp_path):
    "--compact times each gated MLP / LeNet5 also through bmrs.compact.Compact, in its own columns and Markdown table (structure, not speed)."
    out = tmp_path/'c.json'
    r = run('--reps', 2, '--warmup', 1, '--methods', 'none', 'bmrs_n', '--batch_size', 8, '--pruned', 0.85, '--compact', '--out', out, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(out.read_text())
    assert rec['settings']['compact'] is True
    by = {(x['network'], x['method']): x for x in rec['rows']}
    for n in ('mlp', 'lenet5'):
        assert 'compact_train_median_ms' not in by[(n, 'none')]
        x = by[(n, 'bmrs_n')]
        assert x['compact_train_median_ms'] > 0 and x['compact_infer_median_ms'] > 0
        assert x['n_pruned'] == sum(round(.85*k) for k in ((100,)*8 if n == 'mlp' else (6, 16, 120, 84)))   # hand count
    md = out.with_suffix('.md').read_text()
    assert '**The compact forward**' in md and md.count('| bmrs_n | 8 |') == 2


def test_compact_resnet(tmp_path):
    """benchmarks/compact_resnet.py on ResNet-18 at batch 2, one repetition: plain, masked, compact and compact without
    readers (`columns=False`) in every row, both Markdown tables; a bad fraction exits with one line and no file."""
    def cr(*args): return run(*args, cwd=tmp_path, script=REPO/'benchmarks'/'compact_resnet.py', timeout=900)
    out = tmp_path/'cr.json'
    r = cr('--batch_size', 2, '--pruned', 0.5, '--reps', 1, '--warmup', 1, '--out', out)
    assert r.returncode == 0, r.stdout + r.stderr
    (row,) = json.loads(out.read_text())['rows']
    assert row['n_units'] == 4800 and row['n_pruned'] == 2400 and row['max_rel_diff'] < 1e-4   # ResNet-18: 2 × (64+128+256+512) × 2 + 64 + downsamples, by hand
    for k in ('plain', 'masked', 'compact', 'rows'): assert row[f'train_{k}_ms'] > 0 and row[f'inference_{k}_ms'] > 0
    md = out.with_suffix('.md').read_text()
    assert '| 2 | 2400 of 4800 (50 %) |' in md and 'rows only / compact' in md and md.count('| 2 | 50 % |') == 1
    r = cr('--pruned', 1.5, '--out', tmp_path/'bad.json')
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1].startswith('compact_resnet.py: --pruned') and not (tmp_path/'bad.json').exists()


def test_malloc(tmp_path):
    """benchmarks/malloc.py with two steps: every case's rows with both settings and its Markdown (structure, not speed);
    a bad option exits with one line."""
    out = tmp_path/'m.json'
    r = run('--reps', 2, '--warmup', 1, '--out', out, cwd=tmp_path, script=REPO/'benchmarks'/'malloc.py')
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(out.read_text())['rows']
    assert [(x['case'], x['network']) for x in rows] == [('lenet5 alone', 'lenet5'), ('mlp alone', 'mlp'),
                                                         ('lenet5 plain + gated interleaved', 'lenet5'), ('lenet5 plain + gated interleaved', 'plain_lenet5')]
    for x in rows: assert x['default_median_ms'] > 0 and x['keep_median_ms'] > 0
    assert '| lenet5 alone | lenet5 |' in out.with_suffix('.md').read_text()
    r = run('--reps', 0, cwd=tmp_path, script=REPO/'benchmarks'/'malloc.py', timeout=60)
    assert r.returncode != 0 and r.stderr.strip() == "malloc.py: --reps must be at least 1 and --warmup at least 0, got 0, 5"


def test_tiny_conv(tmp_path):
    """benchmarks/tiny_conv.py at batch 8, two repetitions: every op shape in training and in inference with what the
    rule picks (its products counted by hand), the late and the full LeNet5 step, the Markdown (structure, not speed);
    a bad --kept exits with one line and no file."""
    script = REPO/'benchmarks'/'tiny_conv.py'
    out = tmp_path/'t.json'
    r = run('--batch_size', 8, '--reps', 2, '--warmup', 1, '--out', out, cwd=tmp_path, script=script)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(out.read_text())['rows']
    ops = [x for x in rows if x['what'] == 'op']
    assert [(x['mode'], x['batch_size']) for x in ops] == [('train', 8)]*15 + [('inference', 512)]*15
    # in × out channels × input width × output width (5×5 kernels): 1·1·28·24 = 672, …, 6·16·12·8 = 9216
    hand = {(28, 1, 1): 672, (28, 2, 1): 1344, (28, 1, 2): 1344, (28, 1, 3): 2016, (28, 3, 1): 2016, (28, 1, 6): 4032,
            (12, 1, 1): 96, (12, 1, 4): 384, (12, 2, 4): 768, (12, 3, 4): 1152, (12, 4, 4): 1536, (12, 6, 2): 1152,
            (12, 4, 8): 3072, (12, 6, 4): 2304, (12, 6, 16): 9216}
    assert sorted((x['hw'], x['cin'], x['cout']) for x in ops[:15]) == sorted(hand)
    for x in ops:
        assert x['product'] == hand[(x['hw'], x['cin'], x['cout'])] and x['torch_ms'] > 0 and x['row_gemm_ms'] > 0
        assert x['picked'] == (x['mode'] == 'train' and x['product'] <= 1536)
    steps = [x for x in rows if x['what'] == 'step']
    assert [(x['kept'], x['batch_size']) for x in steps] == [([1, 4, 20, 9], 8), ([6, 16, 120, 84], 8)]
    assert all(x['max_param_diff_one_step'] < 1e-5 and x['torch_ms'] > 0 and x['row_gemm_ms'] > 0 for x in steps)
    md = out.with_suffix('.md').read_text()
    assert '| train | 8 | 28×28 | 1 → 1 | 672 | yes |' in md and '| inference | 512 | 28×28 | 1 → 1 | 672 | no |' in md
    assert '| train | 8 | 12×12 | 6 → 16 | 9216 | no |' in md and '| 1 / 4 / 20 / 9 | 8 |' in md
    r = run('--no_ops', '--kept', 7, 4, 20, 9, '--out', tmp_path/'bad.json', cwd=tmp_path, script=script, timeout=120)
    assert r.returncode != 0 and r.stderr.strip().splitlines()[-1] == "tiny_conv.py: --kept: a gate of 6 units cannot keep 7"
    assert not (tmp_path/'bad.json').exists()
