"""results/fast_path_cpu/table1_seed1000: the README's table is what compare.py prints from the committed records, the
records are fast-sampler runs of the grid's settings, and compare.py's interval is the t prediction interval."""
import importlib.util, json, math, subprocess, sys
from pathlib import Path
import pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
HERE = ROOT/'results'/'fast_path_cpu'/'table1_seed1000'

def _compare():
    spec = importlib.util.spec_from_file_location('fast_t1_compare', HERE/'compare.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_interval_is_students():
    scipy_stats = pytest.importorskip('scipy.stats')
    c = _compare()
    assert abs(c.T975_2 - scipy_stats.t.ppf(0.975, 2)) < 1e-12
    lo, hi = c.interval([1., 2., 3.])                 # mean 2, sd 1: 2 ± t sqrt(4/3)
    assert abs(hi - 2 - scipy_stats.t.ppf(0.975, 2)*math.sqrt(4/3)) < 1e-12 and abs(lo + hi - 4) < 1e-12
    # a new normal draw lands inside with probability 0.95 (simulated: 20,000 triples and draws)
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 4))
    inside = [lo <= r[3] <= hi for r in x for lo, hi in [c.interval(list(r[:3]))]]
    assert abs(np.mean(inside) - 0.95) < 0.01
    assert c.outside(5., 1., 3.) == 2. and c.outside(0., 1., 3.) == 1. and c.outside(2., 1., 3.) == 0.
    v = 99.82634026104981                             # three equal seeds: their interval is the value (up to the mean's rounding)
    assert c.outside(v, *c.interval([v]*3)) == 0. and c.outside(v + 0.01, *c.interval([v]*3)) > 0.
def test_records_are_the_grids_fast_runs():
    grid = yaml.safe_load((HERE/'grid.yaml').read_text())
    g = grid['grid']
    want = {f"{n}-{d}-{m}-seed{s}" for n in g['network'] for d in g['dataset'] for m in g['method'] for s in g['seed']}
    recs = sorted(HERE.glob('*-seed1000.json'))
    assert recs, 'no records'
    for f in recs:
        assert f.stem in want, f.name
        r = json.loads(f.read_text())
        assert r['config']['sampler'] == 'fast' and r['config']['seed'] == 1000 and r['environment']['git_commit']
        assert (HERE/f'{f.stem}.csv').is_file()

def test_readme_table_is_computed_from_the_records():
    r = subprocess.run([sys.executable, str(HERE/'compare.py')], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in (HERE/'README.md').read_text()
    assert r.stdout.count('\n| ') == len(list(HERE.glob('*-seed1000.json')))   # one row per record
