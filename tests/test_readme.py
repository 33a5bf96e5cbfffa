"""The front door: README.md is what `scripts/readme.py` makes of nbs/index.ipynb (and at most 16 KB), its links stay in
the repository, the `bmrs` names its code uses exist, and `import bmrs` gives the main API quickly without loading
transformers or the other heavy optional packages. The tour itself runs when nbdev_test runs nbs/index.ipynb."""
import importlib.util, json, re, shutil, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

def _readme_module():
    spec = importlib.util.spec_from_file_location('bmrs_readme_script', ROOT/'scripts'/'readme.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def _python_blocks(text:str) -> list[str]:
    return re.findall(r'```python\n(.*?)```', text, re.S)

def test_readme_is_generated_from_index_and_small():
    rd = _readme_module()
    text = (ROOT/'README.md').read_text()
    assert text == rd.render(), "README.md is out of date with nbs/index.ipynb: run python scripts/readme.py"
    assert len(text.encode()) <= 16*1024, f"README.md is {len(text.encode()):,} bytes, over 16 KB"
    r = subprocess.run([sys.executable, str(ROOT/'scripts'/'readme.py'), '--check'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == '', r.stderr

def test_check_names_a_stale_readme(tmp_path, capsys):
    rd = _readme_module()
    rd.README = tmp_path/'README.md'
    rd.README.write_text(rd.render().replace('## Two commands', '## Three commands'))
    assert rd.main(['--check']) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and f"{rd.README} is out of date with {rd.NOTEBOOK}: run python scripts/readme.py" in err
    assert rd.main([]) == 0 and rd.README.read_text() == rd.render()          # regenerated, then in sync
    assert sorted(p.name for p in tmp_path.iterdir()) == ['README.md']         # written atomically: no temporary left
    rd.NOTEBOOK = tmp_path/'nope.ipynb'
    assert rd.main(['--check']) == 2
    assert capsys.readouterr().err == f"readme.py: error: notebook not found: '{tmp_path/'nope.ipynb'}'\n"

def test_links_are_rewritten_from_the_repository_root():
    rd = _readme_module()
    assert rd.relink('[a](11_explanations.ipynb#Release-item-1) ![f](../results/tour/tour.png) [d](../results/demo/)') == \
        '[a](nbs/11_explanations.ipynb#Release-item-1) ![f](results/tour/tour.png) [d](results/demo/)'
    same = '[w](https://example.org/x) [h](#heading) [not](a link) `[code](x.ipynb)`\n```\n[code](../x)\n```'
    assert rd.relink(same) == same
    with pytest.raises(rd.ReadmeError, match=r"link '../../shared/PAPER.md' in nbs/index.ipynb leaves the repository"):
        rd.relink('[p](../../shared/PAPER.md)')

def test_readme_links_resolve_in_a_clone():
    "Every relative link of the README names a tracked file or folder, none outside the repository."
    text = (ROOT/'README.md').read_text()
    assert '../shared' not in text and '](../' not in text
    tracked = set(subprocess.run(['git', 'ls-files'], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split())
    for target in re.findall(r'\]\(([^)\s#]+)[^)]*\)', text):
        if re.match(r'[a-z]+://', target): continue
        t = target.rstrip('/')
        assert t in tracked or any(f.startswith(t + '/') for f in tracked), f"README links to {target!r}, which is not in the repository"

def test_tour_is_the_readme_code():
    "`readme.py --tour` is the README's tour, line for line, and it goes through every step."
    rd = _readme_module()
    script, readme = rd.tour(), (ROOT/'README.md').read_text()
    compile(script, 'tour.py', 'exec')
    assert all(l in readme for l in script.splitlines())
    for step in ('bmrs.load_data(', 'bmrs.lenet5(', 'bmrs.model_kl(', 'bmrs.compress_model(', 'bmrs.reduce(', 'bmrs.compare(',
                 'bmrs.evaluate(', 'bmrs.save_reduced(', 'bmrs.load_reduced('):
        assert step in script, step

def test_readme_import_lines_and_names_work():
    "The README's `import` lines run, and every `bmrs.<name>` its Python code uses exists (lazy ones included)."
    code = '\n'.join(_python_blocks((ROOT/'README.md').read_text()))
    imports = [l.strip() for l in code.splitlines() if re.match(r'\s*(import|from) ', l) and 'bmrs' in l]
    assert 'import bmrs' in imports
    names = sorted(set(re.findall(r'\bbmrs(?:\.[A-Za-z_]\w*)+', code)))
    assert 'bmrs.reduce_run' in names or 'bmrs.reduce_run' in (ROOT/'README.md').read_text()
    prog = '\n'.join(imports + ['import bmrs, functools', 'missing = []',
                                f'for n in {names!r}:',
                                '    try: functools.reduce(getattr, n.split(".")[1:], bmrs)',
                                '    except AttributeError: missing.append(n)',
                                'print(missing)'])
    r = subprocess.run([sys.executable, '-c', prog], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == '[]', r.stdout

_HEAVY = ('transformers', 'datasets', 'accelerate', 'matplotlib', 'pandas', 'scipy', 'sklearn', 'torch_pruning',
          'papermill', 'ipywidgets', 'IPython', 'seaborn', 'yaml')

def test_import_bmrs_is_light_and_fast():
    "`import bmrs` loads none of the optional or heavy packages, and adds little to torch's own import time."
    prog = f"import sys, bmrs; print([m for m in {_HEAVY!r} if m in sys.modules])"
    r = subprocess.run([sys.executable, '-X', 'importtime', '-c', prog], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == '[]', f"import bmrs loaded {r.stdout.strip()}"
    cum = {}
    for l in r.stderr.splitlines():
        f = l.split('|')
        if l.startswith('import time:') and len(f) == 3 and f[1].strip().isdigit(): cum[f[2].strip()] = int(f[1])
    own = (cum['bmrs'] - cum.get('torch', 0))/1e6
    assert own < 5, f"import bmrs took {own:.1f} s beyond importing torch"      # about 0.4 s; generous for a busy machine

def test_top_level_api():
    import torch, bmrs
    assert bmrs.__version__ and bmrs.__doc__.startswith('BMRS')
    for n in bmrs.__all__: assert getattr(bmrs, n) is not None, n
    assert len(set(bmrs.__all__)) == len(bmrs.__all__)
    for n in ('NoiseGate', 'add_gates', 'mlp', 'lenet5', 'model_kl', 'compress_model', 'unit_compression', 'param_compression',
              'reduce', 'reduce_and_report', 'load_reduced', 'save_reduced', 'load_run', 'reduce_run', 'train', 'TrainConfig',
              'evaluate', 'load_data', 'batches', 'FileError'):
        assert n in bmrs.__all__, n
    from bmrs.layers import NoiseGate
    from bmrs.train import load_run, reduce_run, TrainConfig
    assert bmrs.NoiseGate is NoiseGate and bmrs.load_run is load_run and bmrs.reduce_run is reduce_run and bmrs.TrainConfig is TrainConfig
    # bmrs.train and bmrs.reduce stay the submodules (import bmrs.train as bt, bmrs.reduce.save_reduced) and are also their functions
    import bmrs.train as bt, bmrs.reduce as br
    assert bt is sys.modules['bmrs.train'] and br is sys.modules['bmrs.reduce'] and bmrs.train is bt and bmrs.reduce is br
    torch.manual_seed(0)
    m = bmrs.mlp(16, 3, 8, 1)
    bmrs.gates(m)[0].mask[:5] = 0
    x = torch.randn(4, 16)
    small, ref = bmrs.reduce(m.eval(), x), br.reduce(m, x)
    assert bmrs.n_params(small) == bmrs.n_params(ref) == (16*3 + 3) + (3*8 + 8) + (8*3 + 3)      # 3 of 8 units kept, counted by hand
    with torch.no_grad(): assert torch.equal(small(x), ref(x))
    with pytest.raises(TypeError): bmrs.train()                                  # train(cfg): the function's own error
    with pytest.raises(AttributeError, match="module 'bmrs' has no attribute 'nope'"): bmrs.nope
    assert {'BMRSTrainer', 'hf', 'tp', 'sweep'} <= set(dir(bmrs))

def test_lazy_names_load_on_first_use():
    prog = ("import sys\nfrom bmrs import *\nassert 'transformers' not in sys.modules and 'torch_pruning' not in sys.modules\n"
            "assert callable(reduce) and callable(train) and 'load_data' in dir()\n"
            "import bmrs\nassert bmrs.BMRSImportance.__module__ == 'bmrs.tp' and 'torch_pruning' in sys.modules\n"
            "assert 'transformers' not in sys.modules\n"
            "assert bmrs.BMRSTrainer is bmrs.hf.BMRSTrainer and 'transformers' in sys.modules\nprint('ok')")
    r = subprocess.run([sys.executable, '-c', prog], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0 and r.stdout.strip() == 'ok', r.stderr[-2000:]

def test_nbdev_export_leaves_init_alone(tmp_path, monkeypatch):
    "nbdev_export only sets `__version__` in bmrs/__init__.py (put_version_in_init): the hand-written rest survives it."
    from nbdev.config import update_version
    pkg = tmp_path/'bmrs'; pkg.mkdir()
    shutil.copy(ROOT/'bmrs'/'__init__.py', pkg/'__init__.py')
    monkeypatch.chdir(ROOT)                     # nbdev reads settings.ini from here
    update_version(pkg)
    assert (pkg/'__init__.py').read_text() == (ROOT/'bmrs'/'__init__.py').read_text()

def test_site_links_for_the_docs_site():
    "scripts/docs.py makes the notebooks' relative links work on the site: pages, embedded images, the repository's web address."
    import base64
    spec = importlib.util.spec_from_file_location('bmrs_docs_script_links', ROOT/'scripts'/'docs.py')
    docs = importlib.util.module_from_spec(spec); spec.loader.exec_module(docs)
    home = docs.Page(ROOT/'nbs'/'index.ipynb', 'index.html', 'Home')
    exp = docs.Page(ROOT/'nbs'/'experiments'/'figures.ipynb', 'experiments/figures.html', 'Experiments')
    web = docs.repo_url(ROOT)
    assert web == 'https://github.com/bmrs-dev/bmrs'                             # settings.ini: git_url
    assert docs.site_links('[e](11_explanations.ipynb#Release-item-1)', home) == '[e](11_explanations.html#Release-item-1)'
    assert docs.site_links('[f](experiments/figures.ipynb)', home) == '[f](experiments/figures.html)'
    assert docs.site_links('[r](../06_posthoc.ipynb) [h](../index.ipynb)', exp) == '[r](../06_posthoc.html) [h](../index.html)'
    assert docs.site_links('[d](../results/demo/) [m](../results/README.md#rules)', home) == \
        f'[d]({web}/tree/main/results/demo/) [m]({web}/blob/main/results/README.md#rules)'
    png = (ROOT/'results'/'tour'/'tour.png').read_bytes()
    assert docs.site_links('![t](../results/tour/tour.png)', home) == f'![t](data:image/png;base64,{base64.b64encode(png).decode()})'
    for same in ('[w](https://example.org/a.ipynb)', '[h](#Guarantees)', '[o](../../outside.md)', '`[c](x)` [s](a b)'):
        assert docs.site_links(same, home) == same

def test_zoo_table_is_the_zoo_record():
    "The README's zoo rows are results/zoo/zoo.json's numbers, recomputed here from the record's raw counts."
    text = (ROOT/'README.md').read_text()
    rows = {r['network']: r for r in json.loads((ROOT/'results'/'zoo'/'zoo.json').read_text())['rows']}
    table = re.findall(r'^\| (\w+) \| ([\d.]+) \| ([\d.]+) → ([\d.]+) \| ([\de.+-]+) \|$', text, re.M)
    assert len(table) >= 6, table
    for net, ratio, before, after, diff in table:
        r = rows[net]
        assert float(ratio) == round(r['removed']/r['masked'], 2), net
        assert (float(before), float(after)) == (round(r['params_before']/1e6, 2), round(r['params_after']/1e6, 2)), net
        assert float(diff) == float(f"{r['logit_diff']:.0e}"), net
