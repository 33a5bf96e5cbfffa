"""Package metadata for bmrs, read from settings.ini (nbdev 2 layout).

The experiment notebooks that `bmrs-grid` runs are edited in `nbs/experiments/`; building a wheel (or any non-editable
install) copies them into the package as `bmrs/experiments/*.ipynb`, so `bmrs-grid` finds them without a source
checkout. An editable install (`pip install -e .`) reads them from `nbs/experiments/` directly."""
from configparser import ConfigParser
from pathlib import Path
import shutil
import setuptools
from setuptools.command.build_py import build_py

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']

requirements = cfg.get('requirements', '').split()
extras = {k: cfg.get(f'{k}_requirements', '').split() for k in ('hf', 'experiments', 'dev')}
scripts = cfg.get('console_scripts', '').split()
EXPERIMENTS = Path(__file__).resolve().parent/cfg['nbs_path']/'experiments'


class build_py_with_experiments(build_py):
    "build_py that also copies nbs/experiments/*.ipynb into the built package as bmrs/experiments/."
    def run(self):
        super().run()
        if self.editable_mode: return                  # an editable install reads nbs/experiments/ itself
        notebooks = sorted(EXPERIMENTS.glob('*.ipynb'))
        if not notebooks: raise SystemExit(f"setup.py: no experiment notebooks in {EXPERIMENTS}")
        dest = Path(self.build_lib)/cfg['lib_name']/'experiments'
        dest.mkdir(parents=True, exist_ok=True)
        for nb in notebooks: shutil.copyfile(nb, dest/nb.name)


setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    author=cfg['author'],
    author_email=cfg['author_email'],
    license='Apache-2.0',
    license_files=['LICENSE'],
    url=cfg['git_url'].replace('%(user)s', cfg['user']).replace('%(repo)s', cfg['repo']),
    packages=setuptools.find_packages(include=['bmrs', 'bmrs.*']),
    include_package_data=True,
    package_data={'bmrs': ['grids/*.yaml']},
    cmdclass={'build_py': build_py_with_experiments},
    python_requires='>=' + cfg['min_python'],
    install_requires=requirements,
    extras_require=extras,
    entry_points={'console_scripts': scripts, 'nbdev': ['bmrs=bmrs._modidx:d']},
    zip_safe=False,
)
