"""`benchmarks/pages.py`: the committed benchmark pages are what their JSON records give, a changed record is caught
by `--check` and rewritten by a plain run, and a broken record is a one-line error. Reads JSON only (seconds)."""
import json, os, shutil, statistics, subprocess, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO/'benchmarks'/'pages.py'


sys.path.insert(0, str(REPO/'benchmarks'))
import pages


class Run:
    "What `main` returned and printed to stderr."
    def __init__(self, returncode, stderr): self.returncode, self.stderr = returncode, stderr


def run(*args, capsys=None):
    "pages.py's `main` in this process (importing torch once for every test), its stderr from `capsys`."
    rc = pages.main([str(a) for a in args])
    return Run(rc, capsys.readouterr().err if capsys else '')


def cli(*args):
    "pages.py as a command, for what only a process shows (no traceback, exit status)."
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env)


def copy_results(tmp_path):
    "The records pages.py reads, in a temporary results folder (the repository's are never written)."
    res = tmp_path/'results'
    shutil.copytree(REPO/'results'/'benchmarks', res/'benchmarks')
    shutil.copytree(REPO/'results'/'would_prune', res/'would_prune')
    return res


def test_committed_pages_match_their_records(capsys):
    r = run('--check', capsys=capsys)
    assert r.returncode == 0, r.stderr


def test_would_prune_page_numbers_by_hand():
    rec = json.loads((REPO/'results'/'would_prune'/'mnist-mlp-seed0.json').read_text())
    page = (REPO/'results'/'benchmarks'/'would_prune.md').read_text()
    last = rec['epochs'][-1]['would_prune']
    order = ['bmrs_n', 'bmrs_n_release', 'bmrs_u8', 'bmrs_u4', 'snr', 'etheta']
    assert '| units that would be pruned | ' + ' | '.join(f'{last[k]:.1f} %' for k in order) + ' |' in page
    assert '| units that would be pruned | 0.0 % | 78.1 % | 77.8 % | 81.0 % | 82.9 % | 80.8 % |' in page
    assert f"median {statistics.median(e['seconds'] for e in rec['epochs']):.1f} s per epoch" in page
    assert len([l for l in page.splitlines() if l.startswith('| ') and l.split(' | ')[0][2:].isdigit()]) == len(rec['epochs'])


def test_gate_overhead_page_ratios_by_hand():
    page = (REPO/'results'/'benchmarks'/'gate_overhead.md').read_text()
    now = json.loads((REPO/'results'/'benchmarks'/'gate_overhead.json').read_text())['rows']
    for r in now: assert f"| {r['plain_ms']:.2f} ms | {r['gated_ms']:.2f} ms | {r['gated_ms']/r['plain_ms']:.1f}× |" in page
    assert '| MLP 1024 → 8 × 100 → 10 | 32 | 4.45 ms | 16.19 ms | 3.6× | 4.4× | 8.3× |' in page   # 20.02 / 2.41 ms in the paper
    assert '| LeNet5 (c = 1) | 128 | 33.86 ms | 44.22 ms | 1.3× | 1.5× |  |' in page


def test_changed_record_is_caught_and_rewritten(tmp_path, capsys):
    res = copy_results(tmp_path)
    p = res/'would_prune'/'mnist-mlp-seed0.json'
    rec = json.loads(p.read_text()); rec['test_top1'] = 12.34; p.write_text(json.dumps(rec))
    r = run('--results', res, '--check', capsys=capsys)
    assert r.returncode == 1 and 'would_prune.md differs from its records' in r.stderr and 'runtime.md' not in r.stderr
    assert 'test accuracy 96.79 %' in (res/'benchmarks'/'would_prune.md').read_text()          # --check writes nothing
    assert run('--results', res).returncode == 0
    assert 'test accuracy 12.34 %' in (res/'benchmarks'/'would_prune.md').read_text()
    assert run('--results', res, '--check').returncode == 0


def test_broken_record_is_a_one_line_error(tmp_path, capsys):
    res = copy_results(tmp_path)
    (res/'benchmarks'/'scaling_cpu.json').write_text('{"command": "trunc')
    before = {p.name: p.read_bytes() for p in (res/'benchmarks').glob('*.md')}
    r = cli('--results', res)
    assert r.returncode == 2 and 'scaling_cpu.json' in r.stderr and 'Traceback' not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in (res/'benchmarks').glob('*.md')} == before                # nothing half-written
    shutil.copy(REPO/'results'/'benchmarks'/'scaling_cpu.json', res/'benchmarks'/'scaling_cpu.json')
    (res/'benchmarks'/'gate_overhead.json').unlink()
    r = run('--results', res, '--check', capsys=capsys)
    assert r.returncode == 2 and 'gate_overhead.json' in r.stderr and 'Traceback' not in r.stderr
