"""End-to-end tests of `bmrs-grid` on the packaged smoke grid: papermill runs of the experiment notebooks on 300 real
MNIST images, killed and resumed, re-run, and the tables and figures notebooks at the end."""
import json, os, signal, subprocess, time
from pathlib import Path

import pytest
from conftest import REPO, ROOT, env, exe

SMOKE = REPO/'bmrs'/'grids'/'smoke.yaml'
RUNS = {'mlp-mnist-bmrs_n-seed1000': 'train.ipynb', 'mlp-mnist-l2-seed1000': 'train.ipynb',
        'posthoc-mlp-mnist-seed1000': 'posthoc.ipynb'}
FIRST = 'mlp-mnist-bmrs_n-seed1000'


def grid(*args, timeout=900):
    return subprocess.run([exe('bmrs-grid'), *map(str, args), '--no_progress'], capture_output=True, text=True,
                          timeout=timeout, env=env(), cwd=REPO)


def result(out, rid): return out/rid/f'{rid}.json'


def snapshot(folder):
    "mtime (ns) of every file under `folder`."
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(Path(folder).rglob('*')) if p.is_file()}


@pytest.fixture(scope='module')
def data():
    r = subprocess.run([exe('bmrs-data'), 'fetch', 'mnist', '--root', str(ROOT)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return ROOT


def marked(out, rid): return (out/rid/'.finished.json').is_file()


@pytest.fixture(scope='module')
def smoke(tmp_path_factory, data):
    """The smoke grid killed (SIGKILL to its process group) as soon as its first run has written its JSON — possibly
    before papermill has saved the executed notebook (the race that made this module fail now and then) — then
    restarted with --jobs 2 and left to finish: (output folder, {finished run: JSON mtime} at the kill, restart result).
    A run is finished when bmrs-grid has marked it (`.finished.json`): a JSON alone is not enough."""
    out = tmp_path_factory.mktemp('smoke')/'runs'
    log = open(out.parent/'first.log', 'w')
    p = subprocess.Popen([exe('bmrs-grid'), str(SMOKE), '--out', str(out), '--no_progress'], stdout=log,
                         stderr=subprocess.STDOUT, env=env(), cwd=REPO, start_new_session=True)
    t0 = time.time()
    while not result(out, FIRST).exists():
        if p.poll() is not None: pytest.fail(f"bmrs-grid exited ({p.returncode}) before its first run finished:\n"
                                             + (out.parent/'first.log').read_text()[-3000:])
        if time.time() - t0 > 600: os.killpg(p.pid, signal.SIGKILL); pytest.fail("first run took more than 10 minutes")
        time.sleep(.1)
    os.killpg(p.pid, signal.SIGKILL); p.wait(); log.close()
    time.sleep(3)  # the kernel of the interrupted run sees its parent die (ipykernel polls every second) and exits
    finished = {rid: result(out, rid).stat().st_mtime_ns for rid in RUNS if marked(out, rid)}
    assert len(finished) < len(RUNS), finished                            # killed mid-grid
    nb = out/FIRST/'train.ipynb'                                          # written atomically: complete, or not there
    assert not nb.exists() or json.loads(nb.read_text())['metadata']['papermill']['end_time']
    r = grid(SMOKE, '--out', out, '--jobs', 2)
    return out, finished, r


def test_resume_after_kill(smoke):
    out, finished, r = smoke
    assert r.returncode == 0, r.stdout + r.stderr
    n = len(finished)
    assert f"3 runs: {n} already finished, {3 - n} ran, 0 failed, 0 not started" in r.stdout, r.stdout
    for rid, mtime in finished.items():                                    # finished runs were not redone
        assert result(out, rid).stat().st_mtime_ns == mtime, rid
    for rid in set(RUNS) - set(finished):                                  # the others were (the first one again, if it
        assert f"done {rid} (" in r.stdout, r.stdout                       # was killed before its notebook was saved)
    assert all(result(out, rid).exists() and marked(out, rid) for rid in RUNS)


def test_run_directories(smoke):
    import nbformat
    out, _, _ = smoke
    for rid, nb_name in RUNS.items():
        d = out/rid
        nb = nbformat.read(str(d/nb_name), 4)                              # the executed notebook, with its parameters
        injected = [c for c in nb.cells if 'injected-parameters' in c.metadata.get('tags', [])]
        assert len(injected) == 1 and f"/{rid}/{rid}.json" in injected[0].source, rid
        assert not any(o.get('output_type') == 'error' for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []))
        assert nb.metadata['papermill']['parameters']['seed'] == 1000
        assert nb.metadata['papermill']['end_time'] and not nb.metadata['papermill']['exception'], rid   # complete
        assert not [p.name for p in d.iterdir() if p.name.endswith('.tmp') or p.name == '.running'], rid
    bn, l2 = (json.loads(result(out, rid).read_text()) for rid in ('mlp-mnist-bmrs_n-seed1000', 'mlp-mnist-l2-seed1000'))
    assert bn['config']['limit'] == 300 and bn['config']['n_epochs'] == 1 and bn['config']['hidden_dim'] == 32
    assert (bn['config']['method'], l2['config']['method']) == ('bmrs_n', 'l2')
    assert l2['config']['compression_percentage_file'] == str(result(out, FIRST))        # matched to the BMRS_N run
    assert l2['metrics']['match_unit_compression'] == bn['metrics']['unit_compression']
    sw = json.loads(result(out, 'posthoc-mlp-mnist-seed1000').read_text())
    assert sw['kind'] == 'posthoc_sweep'
    rows = sw['rows']
    assert {r['method'] for r in rows} == {'l2', 'grad', 'snr', 'etheta', 'bmrs_n', 'bmrs_u8', 'bmrs_u4'}
    assert sum(r['is_stop_point'] for r in rows) == 3
    assert len([r for r in rows if r['method'] == 'snr']) == 11 and len([r for r in rows if r['method'] == 'grad']) == 11
    assert sw['config']['grad_batches'] == 4 and len(sw['units']['score_grad']) == 64
    plan = json.loads((out/'grid.json').read_text())
    assert [r['id'] for r in plan['runs']] == list(RUNS)


def test_rerun_skips_everything(smoke):
    out, _, _ = smoke
    before = snapshot(out)
    t = time.time()
    r = grid(SMOKE, '--out', out)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 runs: 3 already finished, 0 ran" in r.stdout
    assert time.time() - t < 60
    assert snapshot(out) == before                                         # nothing rewritten, reports included


def test_tables_and_figures(smoke):
    out, _, _ = smoke
    rep = out/'report'
    assert (rep/'tables.ipynb').is_file() and (rep/'figures.ipynb').is_file()
    md = (rep/'table_mlp.md').read_text()
    assert md.startswith('| Method | MNIST Comp. % | MNIST Acc. |')
    assert '| L2 |' in md and '| BMRS_N |' in md and '**' in md and '1 seed per cell' in md
    tex = (rep/'table_mlp.tex').read_text()
    assert r'\begin{tabular}' in tex and r'BMRS$_\mathcal{N}$' in tex and r'\textbf{' in tex
    assert (rep/'table_mlp_unit.md').is_file() and (rep/'paper_comparison.md').is_file() and (rep/'runtime.md').is_file()
    assert '| MLP | MNIST | BMRS_N | 1 |' in (rep/'paper_comparison.md').read_text()
    for stem in ('fig1', 'fig2_accuracy_vs_param_compression', 'fig2_accuracy_vs_unit_compression', 'fig3_rank_correlation_mlp_mnist',
                 'fig2_stop_points_near_knee', 'fig5_accuracy_vs_param_compression', 'fig5_accuracy_vs_unit_compression'):
        png, pdf = rep/f'{stem}.png', rep/f'{stem}.pdf'
        assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 10_000, stem
        assert pdf.read_bytes()[:5] == b'%PDF-', stem
    knee = (rep/'knee_distances.md').read_text()
    assert knee.startswith('| Network | Dataset | Method | n | knee comp. % (acc. %) |') and '| MLP | MNIST | BMRS_N | 1 |' in knee


def test_failed_run_blocks_its_dependents(tmp_path, data):
    g = tmp_path/'bad.yaml'
    g.write_text("notebook: train\nname: '{network}-{dataset}-{method}-seed{seed}'\nbase: {network: mlp, dataset: mnist, limit: 300, n_layers: 1, hidden_dim: 8, n_epochs: 1,\n"
                 "       fine_tune_epochs: 0, weights: /nonexistent.pt, pretrained: true, threads: 1}\n"
                 "grid: {seed: [1], method: [bmrs_n, l2]}\n"
                 "match: [{if: {method: l2}, from: {method: bmrs_n}, param: compression_percentage_file}]\n")
    r = grid(g, '--out', tmp_path/'out')
    assert r.returncode == 1, r.stdout + r.stderr
    assert "2 runs: 0 already finished, 0 ran, 1 failed, 1 not started" in r.stdout
    assert 'weights file not found' in r.stderr and 'seed1/train.ipynb' in r.stderr
    assert (tmp_path/'out'/'mlp-mnist-bmrs_n-seed1'/'train.ipynb').is_file()        # the traceback is kept
    assert not (tmp_path/'out'/'mlp-mnist-l2-seed1').exists()


def test_bad_grid_and_dry_run(tmp_path):
    g = tmp_path/'typo.yaml'
    g.write_text("notebook: train\nbase: {n_epoch: 3}\ngrid: {seed: [1]}\n")
    r = grid(g, '--out', tmp_path/'out')
    assert r.returncode == 2 and "has no parameters ['n_epoch']" in r.stderr, r.stderr
    assert not (tmp_path/'out').exists()
    r = grid('table1', '--shard', '1/4', '--dry_run', '--out', tmp_path/'t1')
    assert r.returncode == 0, r.stderr
    assert '105 runs (0 done)' in r.stdout
    assert not (tmp_path/'t1').exists()


def posthoc_nb(params, cwd):
    import papermill as pm
    pm.execute_notebook(str(REPO/'nbs'/'experiments'/'posthoc.ipynb'), str(cwd/'executed.ipynb'), parameters=params,
                        kernel_name='python3', cwd=str(cwd), progress_bar=False)
    return json.loads(Path(params['result']).read_text())


def test_posthoc_resumes(tmp_path, data):
    """An interrupted post-training sweep resumes: the finished training run is loaded, not trained again, and points in
    `<result>-points.json` of the same sweep are taken as they are (one is marked to see it), then the file is deleted."""
    from bmrs import data as bdata
    from bmrs.posthoc import sweep_fingerprint
    from bmrs.train import config_of, load_run
    res = tmp_path/'sweep'/'sweep.json'; res.parent.mkdir()
    params = dict(result=str(res), network='mlp', dataset='mnist', seed=1000, n_layers=1, hidden_dim=16, batch_size=32,
                  learning_rate=2e-3, n_epochs=1, limit=300, levels=3, methods=['snr', 'bmrs_n'], device='cpu', threads=1,
                  data_root=str(data))
    first = posthoc_nb(params, res.parent)
    train_json = res.parent/'train'/first['train_record']
    mtime = train_json.stat().st_mtime_ns
    assert not (res.parent/'sweep-points.json').exists()                  # deleted once the sweep JSON is written
    # an interrupted sweep's checkpoint holding the unpruned point (level 0), marked
    cfg = config_of(json.loads(train_json.read_text()))
    trained, _ = load_run(train_json)
    splits = bdata.load('mnist', str(data), split_seed=1000, limit=300)
    n = first['trained']['n_units']
    key = bytes(n).hex()                                                  # no unit pruned: n zero bytes
    ck = dict(fingerprint=sweep_fingerprint(trained, splits, cfg, 1, 0), points={key: dict(top1=-1.0, top5=-1.0)})
    (res.parent/'sweep-points.json').write_text(json.dumps(ck))
    res.unlink()
    again = posthoc_nb(params, res.parent)
    assert train_json.stat().st_mtime_ns == mtime                         # training was not redone
    assert not (res.parent/'sweep-points.json').exists()
    level0 = [r for r in again['rows'] if r['n_pruned'] == 0]
    assert level0 and all(r['test_top1'] == -1.0 for r in level0)         # the stored point was used
    rest = lambda rec: [r for r in rec["rows"] if r["n_pruned"] > 0]
    assert rest(again) == rest(first)                                     # every other point as in the first run
    assert again['trained'] == first['trained']


def test_train_notebook_options():
    """A grid sets a run's options through the train notebook's parameters: every TrainConfig option is one (`compact`
    among them), except these, which grids do not set (hardware, logging, files and the CLI's own)."""
    from dataclasses import fields
    from bmrs.grid import notebook_parameters
    from bmrs.train import TrainConfig
    params = notebook_parameters(REPO/'nbs'/'experiments'/'train.ipynb')
    assert {f.name for f in fields(TrainConfig)} - set(params) == {
        'channels_last', 'precision', 'sync_bn', 'matched_release', 'debug', 'metrics_dir', 'output_dir', 'resume',
        'run_name', 'skip_exists', 'tags', 'track_energy', 'wandb'}
    assert params['compact'] is False and params['sampler'] == 'fast'
