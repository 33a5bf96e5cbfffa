"""Packaging: the core modules import without the extras, a wheel ships the experiment notebooks and the LICENSE, the
README's commands install every extra, and scripts/test.sh fails when a test changes a tracked file."""
import configparser, json, os, shutil, subprocess, sys, zipfile
from pathlib import Path

import pytest

from conftest import REPO

# What `pip install bmrs` (no extras) must be enough for: bmrs-train, bmrs-data and the library below the drivers.
CORE = ['bmrs', 'bmrs.files', 'bmrs.distributions', 'bmrs.reduction', 'bmrs.layers', 'bmrs.models', 'bmrs.reduce',
        'bmrs.train', 'bmrs.data']
CORE += [m for m in ('bmrs.utils', 'bmrs.methods') if (REPO/'bmrs'/f"{m.split('.')[1]}.py").is_file()]   # new in issue 16
# Packages of the extras (hf, experiments, dev) and what only they bring in.
EXTRAS = ['transformers', 'datasets', 'papermill', 'nbformat', 'seaborn', 'matplotlib', 'scipy', 'sklearn',
          'ipywidgets', 'ipykernel', 'IPython', 'jupyterlab', 'nbdev', 'execnb', 'pytest']
# Core modules known to import an extra at top level: {module: reason} (their owners fix them; xfail until then).
KNOWN = {}


def _settings():
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(REPO/'settings.ini', encoding='utf-8')
    return cfg['DEFAULT']


@pytest.fixture(scope='module')
def core_imports():
    "{module: None or the error} of importing each core module in a fresh interpreter where the extras are unimportable."
    prelude = (f"import sys, json, importlib\nfor m in {EXTRAS!r}: sys.modules[m] = None\nres = {{}}\n"
               f"for m in {CORE!r}:\n"
               "    try: importlib.import_module(m); res[m] = None\n"
               "    except Exception as e: res[m] = f'{type(e).__name__}: {e}'\n"
               "print(json.dumps(res))")
    r = subprocess.run([sys.executable, '-c', prelude], capture_output=True, text=True, cwd=REPO, timeout=300,
                       env=dict(os.environ, MPLBACKEND='Agg'))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_extras_are_really_blocked():
    "The prelude's `sys.modules[m] = None` makes `import m` fail, so the test below would see a top-level import."
    r = subprocess.run([sys.executable, '-c', "import sys; sys.modules['transformers'] = None\nimport transformers"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and 'ModuleNotFoundError' in r.stderr


@pytest.mark.parametrize('module', CORE)
def test_core_module_imports_without_extras(core_imports, module):
    if module in KNOWN: pytest.xfail(KNOWN[module])
    assert core_imports[module] is None, f"{module} needs an extra at import time: {core_imports[module]}"


def test_core_requirements_are_not_extras():
    "No package of an extra is a core requirement, and each extra is declared in settings.ini."
    s = _settings()
    core = {r.split('=')[0].split('<')[0].split('>')[0].lower() for r in s['requirements'].split()}
    assert {'torch', 'torchvision', 'numpy', 'fastcore', 'safetensors'} <= core
    assert not core & {'transformers', 'datasets', 'papermill', 'seaborn', 'ipywidgets', 'jupyterlab', 'nbdev'}
    for extra in ('hf', 'experiments', 'dev'): assert s[f'{extra}_requirements'].split(), extra
    assert 'torch==2.14.1' in s['requirements'].split() and 'torchvision==0.29.1' in s['requirements'].split()


def test_readme_commands_install_every_extra():
    "scripts/setup.sh (run by the README's scripts/demo.sh and scripts/test.sh) installs every extra settings.ini declares."
    s = _settings()
    extras = sorted(k[:-len('_requirements')] for k in s if k.endswith('_requirements') and k != 'dev_requirements') + ['dev']
    line = next(l for l in (REPO/'scripts'/'setup.sh').read_text().splitlines() if 'pip install' in l and '-e' in l)
    installed = line.split('".[')[1].split(']"')[0].split(',')
    assert sorted(installed) == sorted(extras), (installed, extras)
    for script in ('demo.sh', 'test.sh'): assert 'bash scripts/setup.sh' in (REPO/'scripts'/script).read_text()


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    "A wheel built from a copy of the source (nothing is written in the repository)."
    src = tmp_path_factory.mktemp('src')
    for f in ('setup.py', 'settings.ini', 'README.md', 'LICENSE'): shutil.copy(REPO/f, src/f)
    shutil.copytree(REPO/'bmrs', src/'bmrs', ignore=shutil.ignore_patterns('__pycache__', 'experiments'))
    shutil.copytree(REPO/'nbs'/'experiments', src/'nbs'/'experiments', ignore=shutil.ignore_patterns('.ipynb_checkpoints'))
    out = tmp_path_factory.mktemp('whl')
    r = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '-q',
                        '-w', str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = out.glob('bmrs-*.whl')
    return whl


def test_wheel_ships_experiment_notebooks_grids_and_license(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        nbs = sorted((REPO/'nbs'/'experiments').glob('*.ipynb'))
        assert len(nbs) >= 4
        for nb in nbs: assert z.read(f'bmrs/experiments/{nb.name}') == nb.read_bytes(), nb.name   # the edited copies
        for g in (REPO/'bmrs'/'grids').glob('*.yaml'): assert f'bmrs/grids/{g.name}' in names
        lic = [n for n in names if n.endswith('/LICENSE') and '.dist-info/' in n]
        assert lic and b'Apache License' in z.read(lic[0]) and b'Version 2.0' in z.read(lic[0])
        meta = z.read(next(n for n in names if n.endswith('.dist-info/METADATA'))).decode()
    assert 'Provides-Extra: hf' in meta and 'Provides-Extra: experiments' in meta and 'Provides-Extra: dev' in meta
    assert 'Requires-Dist: papermill' in meta and 'Requires-Dist: papermill<3,>=2.5; extra == "experiments"' in meta


def test_grid_finds_its_notebooks_in_an_installed_wheel(wheel, tmp_path):
    "Installed from the wheel (no source checkout on the path), bmrs.grid finds the experiment notebooks in its package."
    target = tmp_path/'site'
    r = subprocess.run([sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', '--target', str(target),
                        str(wheel)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    if "PACKAGE/'experiments'" not in (target/'bmrs'/'grid.py').read_text():
        pytest.xfail("bmrs.grid.EXPERIMENTS does not look in the package yet (one line in nbs/09_grid.ipynb)")
    code = "import bmrs, bmrs.grid as g; print(bmrs.__file__); print(g.notebook_path('train')); print(g.grid_path('smoke'))"
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(target)))
    assert r.returncode == 0, r.stderr
    paths = [Path(l).resolve() for l in r.stdout.split()]
    for p in paths: assert target.resolve() in p.parents, p
    assert paths[1].name == 'train.ipynb'


def _fake_repo(tmp_path, nbdev_test_does=''):
    "A git repository with scripts/test.sh and stand-ins for every command it runs; the stand-in nbdev_test runs `nbdev_test_does`."
    repo = tmp_path/'repo'; (repo/'scripts').mkdir(parents=True); (repo/'results').mkdir()
    shutil.copy(REPO/'scripts'/'test.sh', repo/'scripts'/'test.sh')
    (repo/'scripts'/'setup.sh').write_text('exit 0\n')
    (repo/'scripts'/'readme.py').write_text('')                 # stand-in for the README check (exits 0)
    (repo/'results'/'table.md').write_text('| a |\n')
    (repo/'.gitignore').write_text('.venv/\n')
    bin_ = repo/'.venv'/'bin'; bin_.mkdir(parents=True)
    for cmd, body in dict(nbdev_export='', nbdev_clean='', pytest='', nbdev_test=nbdev_test_does).items():
        (bin_/cmd).write_text(f'#!/usr/bin/env bash\n{body}\n'); (bin_/cmd).chmod(0o755)
    (bin_/'bmrs-data').write_text('#!/usr/bin/env bash\n'); (bin_/'bmrs-data').chmod(0o755)
    git = lambda *a: subprocess.run(['git', *a], cwd=repo, check=True, capture_output=True)
    git('init', '-q', '-b', 'main'); git('add', '.')
    git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'init')
    return repo


@pytest.mark.parametrize('does, fails', [('', False), ('echo "| b |" >> results/table.md', True),
                                         ('echo new > results/new.md', True), ('git rm -q results/table.md', True)])
def test_test_sh_fails_when_a_test_changes_the_repository(tmp_path, does, fails):
    repo = _fake_repo(tmp_path, does)
    r = subprocess.run(['bash', 'scripts/test.sh'], cwd=repo, capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if not k.startswith('GIT_')})
    if not fails: assert r.returncode == 0, r.stderr; return
    assert r.returncode == 1, (r.returncode, r.stderr)
    assert 'test.sh: nbdev_test changed files that git tracks or left new ones' in r.stderr
    assert 'results/' in r.stderr                                   # names what changed
