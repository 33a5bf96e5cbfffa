"""`benchmarks/pool.py`, `benchmarks/eval_batch.py` and `benchmarks/one_draw.py` end to end with a few repetitions: the JSON they write (structure
and the checks they make, not timings), and a bad argument as one line. No assertion on how long anything takes."""
import json, os, subprocess, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(script, *args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, str(REPO/'benchmarks'/script), *map(str, args)], capture_output=True, text=True,
                          timeout=900, env=env, cwd=cwd)


def test_pool_sizes(tmp_path):
    out = tmp_path/'r'/'sizes.json'
    r = run('pool.py', '--sizes', '--reps', 2, '--out', out, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(out.read_text())
    assert rec['kind'] == 'pool_sizes' and rec['command'] == f'python benchmarks/pool.py --sizes --reps 2 --out {out}'
    assert rec['machine']['threads'] == 1 and rec['machine']['torch']
    shapes = sorted({tuple(x['shape']) for x in rec['rows']})
    assert len(shapes) == 13 and (1, 6, 28, 28) in shapes and (128, 16, 10, 10) in shapes
    assert sorted((x['pool'], x['mode']) for x in rec['rows'] if x['shape'] == [1, 6, 28, 28]) == \
           [('bmrs', 'forward+backward'), ('bmrs', 'inference'), ('torch', 'forward+backward'), ('torch', 'inference')]
    assert all(x['ms'] > 0 and x['elements'] == x['shape'][0]*x['shape'][1]*x['shape'][2]*x['shape'][3] for x in rec['rows'])
    import bmrs.models as bm   # the thresholds the run forced to 0 are back (it ran in another process; this one's are the defaults)
    assert (bm.POOL_FAST_MIN, bm.POOL_FAST_MIN_GRAD) == (12_288, 65_536)


def test_pool_training_and_eval_batch(tmp_path):
    "pool.py checks that both pools give bit-for-bit equal parameters after a step (it exits 1 otherwise); eval_batch's top-1 agree."
    out = tmp_path/'pool.json'
    r = run('pool.py', '--reps', 2, '--warmup', 1, '--eval_reps', 1, '--out', out, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = json.loads(out.read_text())['rows']
    assert sorted({(x['what'], x['inputs']) for x in rows}) == [('evaluation', 'real'), ('train step', 'random'), ('train step', 'real')]
    assert len(rows) == 12 and all(x['ms'] > 0 for x in rows)
    out = tmp_path/'eval.json'
    r = run('eval_batch.py', '--networks', 'mlp', '--batch_sizes', 256, 512, '--reps', 1, '--out', out, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(out.read_text())
    assert rec['kind'] == 'eval_batch' and [x['batch_size'] for x in rec['rows']] == [256, 512]
    assert rec['rows'][0]['top1'] == rec['rows'][1]['top1'] and rec['rows'][0]['n_examples'] == 12_000


def test_pool_bad_argument(tmp_path):
    r = run('pool.py', '--sizes', '--reps', 0, cwd=tmp_path)
    assert r.returncode != 0 and r.stderr.strip().splitlines() == ['pool.py: --reps must be at least 1, got 0'], r.stderr


def test_one_draw(tmp_path):
    "one_draw.py: three configurations per network and batch, ratios that are the ratios of its own medians; a bad argument as one line"
    out = tmp_path/'d.json'
    r = run('one_draw.py', '--batch_size', 4, '--reps', 2, '--warmup', 1, '--out', out, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(out.read_text())
    assert rec['kind'] == 'one_draw' and [(x['network'], x['batch_size']) for x in rec['rows']] == [('mlp', 4), ('lenet5', 4)]
    for x in rec['rows']:
        assert min(x['plain_ms'], x['one_draw_ms'], x['per_gate_ms']) > 0
        assert abs(x['per_gate_over_one_draw'] - x['per_gate_ms']/x['one_draw_ms']) < 2e-3*x['per_gate_over_one_draw'] + 1e-3
    r = run('one_draw.py', '--reps', 0, cwd=tmp_path)
    assert r.returncode != 0 and r.stderr.strip().splitlines() == ['one_draw.py: --reps must be at least 1, got 0'], r.stderr
