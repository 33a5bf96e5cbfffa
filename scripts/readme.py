#!/usr/bin/env python
"""Write README.md from nbs/index.ipynb (nbdev's `readme_nb`): its markdown cells as they are and its code cells as
```python blocks, without outputs; `#|hide` cells and `#|` directive lines left out. Relative links, written from
nbs/ as the notebook sees them, are rewritten from the repository root (`11_explanations.ipynb` →
`nbs/11_explanations.ipynb`, `../results/demo/` → `results/demo/`).

    python scripts/readme.py            # write README.md (atomically)
    python scripts/readme.py --check    # exit 1, naming the file, if README.md differs from what index.ipynb gives
    python scripts/readme.py --tour     # print the tour's code (the cells under "## A five-minute tour") as one script

nbdev's own `nbdev_readme` needs Quarto, which the package registries do not have; this needs nothing but Python.
Exit status 2 when the notebook cannot be read or a link leaves the repository.
"""
from __future__ import annotations
import argparse, json, os, posixpath, re, sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT/'nbs'/'index.ipynb'
README = ROOT/'README.md'
LIMIT = 16*1024                   # bytes: the README is a user's guide, the findings live in notebooks
TOUR = '## A five-minute tour'    # the heading whose code cells `--tour` prints
HEADER = '<!-- Generated from nbs/index.ipynb by scripts/readme.py: edit the notebook, then run `python scripts/readme.py`. -->\n'
_DIRECTIVE = re.compile(r'^\s*#\s*\|')
_LINK = re.compile(r'(!?\[[^\]]*\]\()([^)\s]+)(\))')      # [text](target) and ![alt](target)
_CODE = re.compile(r'(```.*?```|`[^`\n]*`)', re.S)          # fenced blocks and inline code spans: their text is not a link

class ReadmeError(ValueError): "index.ipynb cannot be rendered (unreadable, or a link leaving the repository)."

def _src(cell) -> str: return cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])

def _directives(src:str) -> set:
    out = set()
    for line in src.splitlines():
        if not _DIRECTIVE.match(line): break
        out.add(_DIRECTIVE.sub('', line).strip().split(' ')[0].rstrip(':'))
    return out

def cells(nb_path:Path|None=None) -> list[tuple[str, str]]:
    "(kind, source) of the cells the README shows: `#|hide` / `#|export` / `#|default_exp` cells left out, directive lines dropped."
    nb_path = Path(nb_path or NOTEBOOK)
    try: nb = json.loads(nb_path.read_text())
    except FileNotFoundError: raise ReadmeError(f"notebook not found: {str(nb_path)!r}") from None
    except (OSError, UnicodeDecodeError, ValueError) as e: raise ReadmeError(f"cannot read notebook {str(nb_path)!r}: {e}") from None
    out = []
    for c in nb.get('cells', []):
        s = _src(c)
        if c.get('cell_type') == 'code':
            if _directives(s) & {'hide', 'export', 'exporti', 'default_exp'}: continue
            s = '\n'.join(l for l in s.splitlines() if not _DIRECTIVE.match(l)).strip('\n')
        if s.strip() and c.get('cell_type') in ('markdown', 'code'): out.append((c['cell_type'], s.strip('\n')))
    return out

def relink(text:str, base:str='nbs') -> str:
    "Markdown `text` written from folder `base` with its relative links rewritten from the repository root."
    def fix(m):
        target = m.group(2); u = urlsplit(target)
        if u.scheme or u.netloc or target.startswith(('#', '/')) or not u.path: return m.group(0)
        p = posixpath.normpath(posixpath.join(base, u.path)) + ('/' if u.path.endswith('/') else '')
        if p == '..' or p.startswith('../'): raise ReadmeError(f"link {target!r} in nbs/index.ipynb leaves the repository")
        return m.group(1) + p + (f'#{u.fragment}' if u.fragment else '') + m.group(3)
    return ''.join(part if i % 2 else _LINK.sub(fix, part) for i, part in enumerate(_CODE.split(text)))   # not in code

def render(nb_path:Path|None=None) -> str:
    "The README's text."
    parts = [relink(s) if k == 'markdown' else f'```python\n{s}\n```' for k, s in cells(nb_path)]
    return HEADER + '\n' + '\n\n'.join(parts) + '\n'

def tour(nb_path:Path|None=None) -> str:
    "The code cells under the tour's heading, joined into one script."
    code, inside = [], False
    for k, s in cells(nb_path):
        if k == 'markdown':
            heads = [l for l in s.splitlines() if l.startswith('## ')]
            if heads: inside = heads[-1].strip() == TOUR
        elif inside: code.append(s)
    if not code: raise ReadmeError(f"no code cells under {TOUR!r} in {str(nb_path or NOTEBOOK)!r}")
    return '\n\n'.join(code) + '\n'

def _write_atomic(path:Path, text:str):
    "Write `text` to a temporary file beside `path`, then rename it onto `path` (as `bmrs.files.write_atomic`, without importing torch)."
    import tempfile
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f: f.write(text)
        umask = os.umask(0); os.umask(umask); os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True); raise

def main(argv=None):
    p = argparse.ArgumentParser(prog='readme.py', description=__doc__.splitlines()[0])
    g = p.add_mutually_exclusive_group()
    g.add_argument('--check', action='store_true', help='exit 1 if README.md is not what nbs/index.ipynb gives')
    g.add_argument('--tour', action='store_true', help="print the tour's code as one Python script")
    a = p.parse_args(argv)
    try:
        if a.tour: sys.stdout.write(tour()); return 0
        text = render()
    except ReadmeError as e: print(f"readme.py: error: {e}", file=sys.stderr); return 2
    if len(text.encode()) > LIMIT:
        print(f"readme.py: error: README.md would be {len(text.encode()):,} bytes, over the {LIMIT:,}-byte limit: shorten nbs/index.ipynb", file=sys.stderr)
        return 1
    if a.check:
        old = README.read_text() if README.is_file() else None
        if old != text:
            print(f"readme.py: {README} is out of date with {NOTEBOOK}: run python scripts/readme.py", file=sys.stderr); return 1
        return 0
    _write_atomic(README, text)
    print(f"{README} ({len(text.encode()):,} bytes)")
    return 0

if __name__ == '__main__': sys.exit(main())
