#!/usr/bin/env python
"""Build the documentation site: every notebook of `nbs/` (and `nbs/experiments/`) as an HTML page with a navigation
bar, and one API reference page per module of `bmrs`, from its docstrings and docments.

    python scripts/docs.py [--out _docs]

nbdev's usual site needs Quarto, which the package registries do not have; this uses nbconvert (HTML of each notebook,
`basic` template: cells and their committed outputs, figures included) and mistune (docstrings). Notebook pages hide
what nbdev hides (`#|hide` cells, `#|default_exp`) and drop the `#|` directive lines. The site is written into a
temporary folder beside `--out` and moved into place at the end, so an error leaves the previous site as it was.
Open `_docs/index.html` in a browser; no server is needed. Exit status 2 for a bad option or an `--out` that cannot be
written, 1 when a notebook or a module cannot be read.
"""
from __future__ import annotations
import argparse, html, importlib, inspect, json, os, re, shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE = 'bmrs'
_DIRECTIVE = re.compile(r'^\s*#\s*\|')

def _src(cell) -> str: return cell['source'] if isinstance(cell['source'], str) else ''.join(cell['source'])

def _directives(cell) -> dict:
    "The nbdev directives of a cell (`#|hide`, `#|export`, `#|default_exp x`, `#|eval: false`) as {name: value}."
    out = {}
    for line in _src(cell).splitlines():
        if not _DIRECTIVE.match(line): break
        k, _, v = _DIRECTIVE.sub('', line).strip().partition(' ')
        out[k.rstrip(':')] = v.strip()
    return out

def _title(nb, fallback:str) -> tuple[str, str]:
    "(title, one-line description) from the notebook's first markdown cell: '# Title' and '> description'."
    for c in nb['cells']:
        if c['cell_type'] != 'markdown': continue
        lines = _src(c).splitlines()
        t = next((l[2:].strip() for l in lines if l.startswith('# ')), None)
        d = next((l[1:].strip() for l in lines if l.startswith('>')), '')
        if t: return t, d
        break
    return fallback, ''

class Page:
    "One notebook of the site: where it comes from, where it goes (relative to the site), its title and module."
    def __init__(self, src:Path, rel:str, section:str):
        self.src, self.rel, self.section = src, rel, section
        try: self.nb = json.loads(src.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as e: raise RuntimeError(f"cannot read notebook {str(src)!r}: {e}") from None
        self.title, self.description = _title(self.nb, src.stem)
        self.module = next((d['default_exp'] for c in self.nb['cells'] if c['cell_type'] == 'code'
                            for d in [_directives(c)] if d.get('default_exp')), None)

def find_pages(root:Path=ROOT) -> list[Page]:
    "The site's notebooks in order: nbs/index.ipynb (if there is one) as the home page, nbs/*.ipynb, nbs/experiments/*.ipynb."
    nbs = root/'nbs'
    pages = [Page(nbs/'index.ipynb', 'index.html', 'Home')] if (nbs/'index.ipynb').is_file() else []
    pages += [Page(p, f'{p.stem}.html', 'Notebooks') for p in sorted(nbs.glob('*.ipynb')) if p.name != 'index.ipynb']
    pages += [Page(p, f'experiments/{p.stem}.html', 'Experiments') for p in sorted((nbs/'experiments').glob('*.ipynb'))]
    if not pages: raise RuntimeError(f"no notebooks in {str(nbs)!r}")
    return pages

def api_modules(root:Path=ROOT) -> list[str]:
    "The public modules of the package (`bmrs/*.py` without a leading underscore)."
    return sorted(p.stem for p in (root/'bmrs').glob('*.py') if not p.stem.startswith('_'))

# ---------------------------------------------------------------- rendering
def _md(text:str) -> str:
    import mistune
    return mistune.create_markdown(escape=True, plugins=['table'])(text)

def _cleaned(nb:dict) -> dict:
    "The notebook as the site shows it: `#|hide` and `#|default_exp` cells left out, `#|` directive lines dropped."
    import nbformat
    nb = nbformat.reads(json.dumps(nb), as_version=4)          # sources as strings
    cells = []
    for c in nb.cells:
        d = _directives(c) if c.cell_type == 'code' else {}
        if 'hide' in d or 'default_exp' in d: continue
        if c.cell_type == 'code':
            c.source = '\n'.join(l for l in c.source.splitlines() if not _DIRECTIVE.match(l)).strip('\n')
            if not c.source: continue
        cells.append(c)
    nb.cells = cells
    return nb

_MDLINK = re.compile(r'(!?)(\[[^\]]*\]\()([^)\s]+)(\))')     # [text](target) and ![alt](target)

def repo_url(root:Path=ROOT) -> str|None:
    "The repository's web address (settings.ini's `git_url`), for links to files the site does not hold; None if unset."
    import configparser
    cp = configparser.ConfigParser(); cp.read(root/'settings.ini')
    return cp['DEFAULT'].get('git_url') or None

def site_links(text:str, page:Page, root:Path=ROOT) -> str:
    """Markdown `text` of `page`'s notebook with its relative links made to work on the site: a link to a notebook goes to
    its page, an image of the repository is embedded (data URI), a link to any other file or folder of the repository
    goes to it at the repository's web address (`git_url`, branch `branch` of settings.ini)."""
    import base64, configparser, mimetypes, posixpath
    from urllib.parse import urlsplit, unquote
    root = root.resolve(); nbs = root/'nbs'
    cp = configparser.ConfigParser(); cp.read(root/'settings.ini'); branch = cp['DEFAULT'].get('branch', 'main')
    def fix(m):
        bang, head, target, tail = m.groups(); u = urlsplit(target)
        if u.scheme or u.netloc or target.startswith(('#', '/')) or not u.path: return m.group(0)
        p = Path(os.path.normpath(page.src.parent/unquote(u.path)))
        try: rel = p.relative_to(root)
        except ValueError: return m.group(0)                            # outside the repository: left as written
        frag = f'#{u.fragment}' if u.fragment else ''
        if bang and p.is_file():
            mime = mimetypes.guess_type(p.name)[0] or 'application/octet-stream'
            return f"{bang}{head}data:{mime};base64,{base64.b64encode(p.read_bytes()).decode()}{tail}"
        if p.suffix == '.ipynb' and p.parent in (nbs, nbs/'experiments'):
            dest = 'index.html' if p == nbs/'index.ipynb' else p.relative_to(nbs).with_suffix('.html').as_posix()
            return f"{bang}{head}{posixpath.relpath(dest, posixpath.dirname(page.rel) or '.')}{frag}{tail}"
        base = repo_url(root)
        if base is None: return m.group(0)
        kind = 'tree' if p.is_dir() or u.path.endswith('/') else 'blob'
        return f"{bang}{head}{base}/{kind}/{branch}/{rel.as_posix()}{'/' if kind == 'tree' else ''}{frag}{tail}"
    return _outside_code(text, lambda t: _MDLINK.sub(fix, t))

_CODE = re.compile(r'(```.*?```|`[^`\n]*`)', re.S)                    # fenced blocks and inline code spans

def _outside_code(text:str, f) -> str:
    "`f` applied to the parts of markdown `text` that are not code (links in code are text, not links)."
    return ''.join(p if i % 2 else f(p) for i, p in enumerate(_CODE.split(text)))

def notebook_body(page:Page, root:Path=ROOT) -> str:
    "The HTML of a notebook's cells and outputs (nbconvert, `basic` template, no prompts), links made to work on the site."
    from nbconvert import HTMLExporter
    ex = HTMLExporter(template_name='basic', exclude_input_prompt=True, exclude_output_prompt=True)
    nb = _cleaned(page.nb)
    for c in nb.cells:
        if c.cell_type == 'markdown': c.source = site_links(c.source, page, root)
    body, _ = ex.from_notebook_node(nb)
    return body

def _signature(obj) -> str:
    try: return str(inspect.signature(obj))
    except (TypeError, ValueError): return ''

def _params_table(obj) -> str:
    "Parameters with their type, default and docment (the comment beside each), as an HTML table; '' if none is documented."
    from fastcore.docments import docments
    try: d = docments(obj, full=True)
    except Exception: return ''                    # builtins, C extensions: no source to read the comments from
    rows = [(k, v) for k, v in d.items() if k not in ('return', 'self') and v.get('docment')]
    if not rows: return ''
    fmt = lambda a: '' if a is inspect.Parameter.empty else html.escape(getattr(a, '__name__', None) or str(a))
    body = ''.join(f"<tr><td><code>{html.escape(k)}</code></td><td>{fmt(v['anno'])}</td><td>{fmt(v['default']) and '<code>' + fmt(v['default']) + '</code>'}</td>"
                   f"<td>{html.escape(v['docment'] or '')}</td></tr>" for k, v in rows)
    return f'<table class="params"><thead><tr><th>Parameter</th><th>Type</th><th>Default</th><th>Details</th></tr></thead><tbody>{body}</tbody></table>'

def _entry(anchor:str, name:str, obj, kind:str) -> str:
    sig = _signature(obj) if kind in ('function', 'class', 'method') else ''
    doc = inspect.getdoc(obj) if kind != 'constant' else ''
    head = f'<h3 id="{html.escape(anchor)}"><code>{html.escape(name)}</code> <small>{kind}</small></h3>'
    if kind == 'constant':
        r = repr(obj); r = r if len(r) <= 300 else r[:300] + ' …'
        return head + f'<pre class="sig">{html.escape(name)} = {html.escape(r)}</pre>'
    return head + (f'<pre class="sig">{html.escape(name)}{html.escape(sig)}</pre>' if sig else '') + \
        (_md(doc) if doc else '<p><em>No docstring.</em></p>') + _params_table(obj)

def _methods(cls) -> list:
    "Public methods and properties defined on `cls` itself (patched ones included), in definition order."
    return [(k, v) for k, v in vars(cls).items() if not k.startswith('_') and (inspect.isfunction(v) or isinstance(v, property))]

def api_body(modname:str, pages:list[Page]) -> str:
    "The API reference of `bmrs.<modname>`: every name of its `__all__`, with signature, docstring and parameters."
    try: mod = importlib.import_module(f'bmrs.{modname}')
    except Exception as e: raise RuntimeError(f"cannot import bmrs.{modname} for its API page: {type(e).__name__}: {e}") from None
    src = next((p for p in pages if p.module == modname), None)
    intro = f'<h1>bmrs.{html.escape(modname)}</h1>'
    if src: intro += f'<p>Made from the notebook <a href="../{src.rel}">{html.escape(src.title)}</a> ({html.escape(src.src.name)}), where each function is derived and tested.</p>'
    if mod.__doc__: intro += _md(inspect.cleandoc(mod.__doc__))
    names = list(getattr(mod, '__all__', []))
    toc, parts = [], []
    for name in names:
        obj = getattr(mod, name, None)
        kind = 'class' if inspect.isclass(obj) else 'function' if callable(obj) and not isinstance(obj, (dict, list, tuple)) else 'constant'
        toc.append(f'<li><a href="#{html.escape(name)}"><code>{html.escape(name)}</code></a></li>')
        parts.append(_entry(name, name, obj, kind))
        if kind == 'class':
            for mname, m in _methods(obj):
                f = m.fget if isinstance(m, property) else m
                parts.append(_entry(f'{name}.{mname}', f'{name}.{mname}', f, 'property' if isinstance(m, property) else 'method'))
    return intro + f'<ul class="toc">{"".join(toc)}</ul>' + ''.join(parts) if names else intro + '<p>This module exports nothing.</p>'

# ---------------------------------------------------------------- the site
_CSS = """
body{margin:0;font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;display:flex}
#sidebar{position:sticky;top:0;height:100vh;overflow-y:auto;width:250px;flex:none;background:#f6f7f9;border-right:1px solid #ddd;padding:12px 14px;box-sizing:border-box;font-size:14px}
#sidebar .home{font-weight:700;font-size:18px;text-decoration:none;color:#222}
#sidebar h4{margin:14px 0 4px;font-size:12px;text-transform:uppercase;color:#666}
#sidebar ul{list-style:none;margin:0;padding:0} #sidebar li{margin:2px 0}
#sidebar a{color:#0645ad;text-decoration:none} #sidebar a.current{font-weight:700;color:#222}
main{flex:1;min-width:0;max-width:1100px;padding:12px 32px 64px}
pre{background:#f6f8fa;padding:8px 10px;overflow-x:auto;border-radius:4px;font-size:13px}
pre.sig{background:#eef3fb} table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;vertical-align:top}
img{max-width:100%} .jp-InputArea,.jp-OutputArea{margin:6px 0} a.anchor-link{margin-left:4px;font-size:80%;text-decoration:none;color:#aaa}
h3 small{color:#888;font-weight:400;font-size:70%} .desc{color:#555}
"""

def _pygments_css() -> str:
    from pygments.formatters import HtmlFormatter
    return HtmlFormatter(style='default').get_style_defs('.highlight')

def _nav(pages:list[Page], modules:list[str], here:str) -> str:
    up = '../' * here.count('/')
    def link(rel, text):
        cur = ' class="current" aria-current="page"' if rel == here else ''
        return f'<li><a href="{up}{rel}"{cur}>{html.escape(text)}</a></li>'
    out = [f'<a class="home" href="{up}index.html">{SITE}</a>']
    for section in ('Notebooks', 'Experiments'):
        items = [link(p.rel, p.title) for p in pages if p.section == section]
        if items: out.append(f'<h4>{section}</h4><ul>{"".join(items)}</ul>')
    out.append('<h4>API reference</h4><ul>' + ''.join(link(f'api/{m}.html', f'bmrs.{m}') for m in modules) + '</ul>')
    return '<nav id="sidebar">' + ''.join(out) + '</nav>'

def _page(title:str, body:str, nav:str) -> str:
    return (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)} · {SITE}</title><style>{_CSS}{_pygments_css()}</style></head>'
            f'<body>{nav}<main>{body}</main></body></html>\n')

def _home(pages:list[Page], modules:list[str]) -> str:
    def items(section): return ''.join(f'<li><a href="{p.rel}">{html.escape(p.title)}</a>'
                                       f'{" — <span class=desc>" + html.escape(p.description) + "</span>" if p.description else ""}</li>'
                                       for p in pages if p.section == section)
    return (f'<h1>{SITE}</h1><p>Bayesian Model Reduction for Structured pruning. Each page below is one notebook of the '
            f'repository: the derivation, the code and its tests side by side. The API reference lists what each module exports.</p>'
            f'<h2>Notebooks</h2><ul>{items("Notebooks")}</ul><h2>Experiments</h2><ul>{items("Experiments")}</ul>'
            '<h2>API reference</h2><ul>' + ''.join(f'<li><a href="api/{m}.html">bmrs.{m}</a></li>' for m in modules) + '</ul>')

def build(out, root:Path=ROOT) -> list[Path]:
    "Write the site into `out` (replacing what is there only once the whole site is written); returns its pages."
    from bmrs.files import check_writable
    out = Path(out).resolve()
    check_writable(out.parent, '--out folder')
    if out.exists() and not out.is_dir(): raise ValueError(f"--out {str(out)!r} is a file, not a folder")
    pages, modules = find_pages(root), api_modules(root)
    tmp = out.parent/f'.{out.name}.tmp-{os.getpid()}'
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        written = []
        def write(rel, title, body):
            p = tmp/rel; p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(_page(title, body, _nav(pages, modules, rel))); written.append(out/rel)
        for pg in pages:
            try: body = notebook_body(pg, root)
            except Exception as e: raise RuntimeError(f"cannot render notebook {str(pg.src)!r}: {type(e).__name__}: {e}") from None
            if pg.module: body = f'<p class="desc">API reference: <a href="{"../" * pg.rel.count("/")}api/{pg.module}.html">bmrs.{pg.module}</a></p>' + body
            write(pg.rel, pg.title, body)
        if not any(p.rel == 'index.html' for p in pages): write('index.html', SITE, _home(pages, modules))
        for m in modules: write(f'api/{m}.html', f'bmrs.{m}', api_body(m, pages))
        old = out.parent/f'.{out.name}.old-{os.getpid()}'
        if out.exists(): out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
        return written
    finally: shutil.rmtree(tmp, ignore_errors=True)

def main(argv=None):
    p = argparse.ArgumentParser(prog='docs.py', description=__doc__.splitlines()[0])
    p.add_argument('--out', default=str(ROOT/'_docs'), help='the site folder (default: _docs/ of the repository)')
    a = p.parse_args(argv)
    from bmrs.utils import run_cli
    pages = run_cli('docs.py', lambda: build(a.out))
    print(f"{len(pages)} pages -> {Path(a.out).resolve()/'index.html'}")

if __name__ == '__main__': main()
