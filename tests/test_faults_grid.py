"""Fault injection for `bmrs-grid`: `bmrs-grid --jobs 2` killed with SIGKILL at seeded random moments of a tiny grid
(four 1-epoch MLP runs on 200 MNIST images, two of them matched), then run again to the end. Nothing of a killed grid
lives on (workers and kernels die with it), no file is left half-written, no finished run is lost or done again, and
tampered or outdated results are found. About two minutes on two busy cores."""
import json, os, random, re, signal, subprocess, time
from pathlib import Path

import pytest
from conftest import REPO, ROOT, env, exe

IDS = ['mlp-mnist-bmrs_n-seed1', 'mlp-mnist-l2-seed1', 'mlp-mnist-bmrs_n-seed2', 'mlp-mnist-l2-seed2']
GRID = ("notebook: train\nname: '{{network}}-{{dataset}}-{{method}}-seed{{seed}}'\n"
        "base: {{network: mlp, dataset: mnist, limit: 200, n_layers: 1, hidden_dim: {hidden}, batch_size: 50, n_epochs: 1,\n"
        "       fine_tune_epochs: 0, compress_epochs: 1, device: cpu, threads: 1}}\n"
        "grid: {{seed: [1, 2], method: [bmrs_n, l2]}}\n"
        "match: [{{if: {{method: l2}}, from: {{method: bmrs_n}}, param: compression_percentage_file}}]\n")
KILL_AFTER = [(4, 14), (22, 34), (2, 10)]       # seconds after the start of each attempt: mid-run, after the first pair, ...


def grid(*args, timeout=600):
    return subprocess.run([exe('bmrs-grid'), *map(str, args), '--no_progress'], capture_output=True, text=True,
                          timeout=timeout, env=env(), cwd=REPO)


def survivors(out) -> list[str]:
    "Processes (but this one) whose command line names `out` or whose working directory is in it: a grid's workers and kernels."
    found = []
    for d in Path('/proc').iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid(): continue
        try: cmd, cwd = (d/'cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace'), os.readlink(d/'cwd')
        except OSError: continue                                    # gone meanwhile, or a zombie
        if str(out) in cmd or cwd == str(out) or cwd.startswith(str(out) + '/'): found.append(f"{d.name}: {cmd[:150]}")
    return found


def finished(out) -> dict:
    "{run id: mtime of its result} of the runs bmrs-grid has marked finished."
    return {rid: (out/rid/f'{rid}.json').stat().st_mtime_ns for rid in IDS
            if (out/rid/'.finished.json').is_file() and (out/rid/f'{rid}.json').is_file()}


def snapshot(folder):
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(Path(folder).rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def killed(tmp_path_factory):
    "The grid killed (SIGKILL to bmrs-grid alone) up to three times, then run to the end: (folder, grid file, {run: mtime}, logs, final)."
    if not (ROOT/'MNIST').exists() and not any(ROOT.glob('*mnist*')): pytest.skip(f"no MNIST under {ROOT}")
    tmp = tmp_path_factory.mktemp('faults')
    g, out = tmp/'tiny.yaml', tmp/'runs'
    g.write_text(GRID.format(hidden=8))
    rng, kept, logs, kills = random.Random(15), {}, [], 0
    for k, (lo, hi) in enumerate(KILL_AFTER):
        log = tmp/f'attempt{k}.log'
        with open(log, 'w') as f:
            p = subprocess.Popen([exe('bmrs-grid'), str(g), '--out', str(out), '--jobs', '2', '--no_progress'], stdout=f,
                                 stderr=subprocess.STDOUT, env=env(), cwd=REPO, start_new_session=True)
            try: p.wait(timeout=rng.uniform(lo, hi))                # finished before its kill: nothing to kill
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL); p.wait(); kills += 1
        logs.append(log.read_text())
        t0, left = time.time(), survivors(out)
        while left and time.time() - t0 < 8: time.sleep(.2); left = survivors(out)   # kernels poll their parent every second
        if left:
            try: os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError: pass
            pytest.fail(f"processes of the killed grid live on:\n" + '\n'.join(left))
        for rid, m in finished(out).items():                        # a finished run is never done again
            assert kept.setdefault(rid, m) == m, f"{rid} was run again after it had finished (attempt {k})"
    assert kills >= 1, logs
    r = grid(g, '--out', out, '--jobs', 2)
    logs.append(r.stdout + r.stderr)
    return out, g, kept, logs, r


def test_resumes_to_the_end(killed):
    out, g, kept, logs, r = killed
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"4 runs: {len(kept)} already finished, {4 - len(kept)} ran, 0 failed, 0 not started" in r.stdout, r.stdout
    for rid, m in kept.items(): assert (out/rid/f'{rid}.json').stat().st_mtime_ns == m, rid   # not redone
    for rid in IDS:            # no run done twice (a run may finish unreported: its worker done, bmrs-grid killed before it saw)
        done = [len(re.findall(rf'^done {re.escape(rid)} \(', log, re.M)) for log in logs]
        assert sum(done) <= 1 and (rid not in kept or done[-1] == 0) and (rid in kept or done[-1] == 1), (rid, logs)


def test_no_partial_files(killed):
    import nbformat
    from bmrs.grid import expand, load_grid, run_state
    out, g, *_ = killed
    for rid in IDS:
        rec = json.loads((out/rid/f'{rid}.json').read_text())      # complete JSON
        assert rec['config']['seed'] in (1, 2) and rec['config']['hidden_dim'] == 8
        nb = nbformat.read(str(out/rid/'train.ipynb'), 4)            # complete notebook, no error
        assert nb.metadata['papermill']['end_time'] and not nb.metadata['papermill']['exception'], rid
        assert not any(o.get('output_type') == 'error' for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []))
    left = [str(p) for p in out.rglob('*') if p.name.endswith('.tmp') or p.name == '.running']
    assert not left, left                                           # no temporary notebook, no claim left behind
    runs = expand(load_grid(g), out)
    assert all(run_state(r) == ('done', '') for r in runs)
    plan = json.loads((out/'grid.json').read_text())
    assert [x['id'] for x in plan['runs']] == [r.id for r in runs] == IDS
    assert [x['params'] for x in plan['runs']] == [json.loads(json.dumps(r.params, default=str)) for r in runs]
    l2 = json.loads((out/IDS[1]/f'{IDS[1]}.json').read_text())
    assert Path(l2['config']['compression_percentage_file']).parent.name == IDS[0]


def test_nothing_lives_on(killed):
    out, *_ = killed
    assert survivors(out) == []


def test_changed_parameters_refused(killed):
    "After an edit of the grid file (hidden_dim 8 -> 16) bmrs-grid refuses to start, naming the runs and the values."
    out, g, *_ = killed
    before = snapshot(out)
    g16 = g.with_name('tiny16.yaml'); g16.write_text(GRID.format(hidden=16))
    r = grid(g16, '--out', out)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('bmrs-grid: error: 4 finished run(s) in'), r.stderr
    assert 'mlp-mnist-bmrs_n-seed1: hidden_dim 8 -> 16' in err[0] and 'delete their folders' in err[0]
    assert snapshot(out) == before                                  # nothing run, grid.json not rewritten
    r = grid(g16, '--out', out, '--dry_run')
    assert r.returncode == 0 and r.stdout.count('changed: hidden_dim 8 -> 16') == 4, r.stdout


def test_tampered_result_is_run_again(killed):
    "A truncated result is not a finished run: a dry run says why, the next run redoes it and only it."
    out, g, *_ = killed
    rid = IDS[3]
    res = out/rid/f'{rid}.json'
    res.write_text(res.read_text()[:100])
    others = {r: (out/r/f'{r}.json').stat().st_mtime_ns for r in IDS if r != rid}
    r = grid(g, '--out', out, '--dry_run')
    assert re.search(rf'{rid} .* to run again: result .*{rid}.json\' is not valid JSON', r.stdout), r.stdout
    r = grid(g, '--out', out, '--no_report')
    assert r.returncode == 0 and "4 runs: 3 already finished, 1 ran" in r.stdout, r.stdout + r.stderr
    assert f"run {rid} again: result" in r.stdout
    assert json.loads(res.read_text())['config']['seed'] == 2
    assert {r_: (out/r_/f'{r_}.json').stat().st_mtime_ns for r_ in others} == others


def test_workers_die_with_bmrs_grid(tmp_path):
    """SIGKILL of `bmrs-grid --jobs 2` while its runs sit in a long, silent cell: its workers and their kernels go with
    it (they used to live on, finish their runs beside a restarted grid and leave its claims stale)."""
    import nbformat
    nb = tmp_path/'slow.ipynb'
    nbformat.write(nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("result = 'x.json'\nseed = 0", metadata={'tags': ['parameters']}),
        nbformat.v4.new_code_cell("import json, time; time.sleep(120); open(result, 'w').write(json.dumps({'seed': seed}))")],
        metadata={'kernelspec': {'name': 'python3', 'display_name': 'python3', 'language': 'python'}}), str(nb))
    g, out = tmp_path/'slow.yaml', tmp_path/'runs'
    g.write_text(f"notebook: {nb}\ngrid: {{seed: [1, 2]}}\n")
    p = subprocess.Popen([exe('bmrs-grid'), str(g), '--out', str(out), '--jobs', '2', '--no_progress'], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, env=env(), cwd=REPO, start_new_session=True)
    try:
        t0, kernels = time.time(), []                                # wait until both kernels run (in the run folders)
        while len(kernels) < 2 and time.time() - t0 < 120:
            time.sleep(.5); kernels = [s for s in survivors(out) if 'ipykernel' in s]
        assert len(kernels) == 2 and len(survivors(out)) == 5, survivors(out)   # bmrs-grid, 2 workers, 2 kernels
        time.sleep(2)                                                # the kernels are in their long cell
        locks = {d.name: (d/'.running').read_text().split() for d in out.iterdir() if (d/'.running').is_file()}
        assert len(locks) == 2 and all(len(v) == 3 for v in locks.values()), locks   # host, bmrs-grid pid, worker pid
        os.kill(p.pid, signal.SIGKILL); p.wait()
        t0, left = time.time(), survivors(out)
        while left and time.time() - t0 < 8: time.sleep(.2); left = survivors(out)
        assert left == [], left
        from bmrs.grid import expand, load_grid, lock_holder
        holders = {r.id: ((r.dir/'.running').read_text(), lock_holder(r)) for r in expand(load_grid(g), out)}
        assert all(h is None for _, h in holders.values()), holders   # the claims are stale: a restart takes them
    finally:
        try: os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError: pass
        for s in survivors(out):
            try: os.kill(int(s.split(':')[0]), signal.SIGKILL)
            except ProcessLookupError: pass
