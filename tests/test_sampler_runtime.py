"""`benchmarks/runtime.py --pruned`: gates in a late-training state (most units pruned and wide), the state the fast
sampler's KL was widened for (structure, not timings)."""
import importlib.util, json, os, subprocess, sys
from pathlib import Path
import pytest, torch

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO/'benchmarks'/'runtime.py'


def run(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=600, env=env, cwd=cwd)


def load_runtime():
    spec = importlib.util.spec_from_file_location('runtime_bench', SCRIPT)
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_late_state():
    from bmrs.layers import gates
    from bmrs.sampler import kl_terms, unit_terms
    rt = load_runtime()
    model = rt.late_state(rt.make_network('mlp', 'mnist', 'bmrs_n')[0], .76, seed=3)
    for g in gates(model):
        pr = g.mask == 0
        assert int(pr.sum()) == 76 and g.n_units == 100                  # round(0.76 * 100) per gate, by hand
        mu, ls = g.mu.detach(), g.logsigma.detach()
        assert ((mu[pr] >= -15) & (mu[pr] <= -8) & (ls[pr] >= 1.5) & (ls[pr] <= 3)).all()
        assert ((mu[~pr] >= -1) & (mu[~pr] <= 0) & (ls[~pr] >= -4) & (ls[~pr] <= -2)).all()
        # the pruned units are wide: the float32 sampler would hand them to float64, the KL keeps its closed form
        m64, s64 = mu.double(), ls.double().exp()
        assert not unit_terms(m64[pr], s64[pr])['fast'].any() and kl_terms(m64, s64)[3].all()
    again = rt.late_state(rt.make_network('mlp', 'mnist', 'bmrs_n')[0], .76, seed=3)      # seeded: the same state
    assert all(torch.equal(a.mu, b.mu) and torch.equal(a.mask, b.mask) for a, b in zip(gates(model), gates(again)))


def test_pruned_run(tmp_path):
    out = tmp_path/'r.json'
    r = run('--reps', 2, '--warmup', 1, '--networks', 'mlp', '--methods', 'none', 'bmrs_n', '--pruned', .76, '--out', out, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads(out.read_text())
    assert rec['settings']['pruned'] == .76 and '--pruned 0.76' in rec['command']
    assert [(x['method'], x['n_units'], x['n_pruned']) for x in rec['rows']] == [('none', 0, 0), ('bmrs_n', 800, 608)]
    assert "late-training state (`--pruned 0.76`): 76% of every gate's units pruned" in out.with_suffix('.md').read_text()


def test_pruned_refused(tmp_path):
    r = run('--pruned', 1, '--out', tmp_path/'x.json', cwd=tmp_path)      # the command line: one line, no traceback
    assert r.returncode != 0 and '--pruned must be in [0, 1), got 1.0' in r.stderr and 'Traceback' not in r.stderr
    rt = load_runtime()
    for bad in ('-0.1', 'nan'):                                             # the rest in-process (no interpreter start)
        with pytest.raises(SystemExit, match=r'--pruned must be in \[0, 1\), got ' + bad):
            rt.main(['--pruned', bad, '--out', str(tmp_path/'x.json')])
    assert not (tmp_path/'x.json').exists() and not (tmp_path/'x.md').exists()
