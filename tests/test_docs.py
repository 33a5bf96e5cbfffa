"""The documentation site (`python scripts/docs.py`): every notebook and every module has a page, hidden cells stay
hidden, the API reference comes from the docstrings and docments, a failed build leaves the old site alone, and a real
headless Chromium opens the index and two pages, follows every internal link and checks that every figure loaded.
The browser check needs Chromium (Debian: `apt-get install chromium`); without it that one test is skipped, saying so."""
import functools, html.parser, http.server, importlib.util, json, os, shutil, subprocess, sys, threading
from pathlib import Path
from urllib.parse import unquote, urlsplit
import pytest

ROOT = Path(__file__).resolve().parents[1]

def _docs_module():
    spec = importlib.util.spec_from_file_location('bmrs_docs_script', ROOT/'scripts'/'docs.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def _chromium():
    for name in (os.environ.get('BMRS_CHROMIUM'), 'chromium', 'chromium-browser', 'google-chrome'):
        if name and shutil.which(name): return shutil.which(name)
    return None

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp('site')/'_docs'
    r = subprocess.run([sys.executable, str(ROOT/'scripts'/'docs.py'), '--out', str(out)], capture_output=True, text=True,
                       timeout=1200, cwd=tmp_path_factory.getbasetemp())
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith(str(out/'index.html'))
    return out

class _Refs(html.parser.HTMLParser):
    "The ids, link targets and image sources of a page."
    def __init__(self):
        super().__init__(); self.ids, self.hrefs, self.srcs = set(), [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get('id'): self.ids.add(a['id'])
        if tag == 'a' and a.get('href'): self.hrefs.append(a['href'])
        if tag == 'img' and a.get('src'): self.srcs.append(a['src'])

def _refs(path) -> _Refs:
    p = _Refs(); p.feed(Path(path).read_text()); return p

def test_every_notebook_and_module_has_a_page(site):
    nbs = sorted(p.stem for p in (ROOT/'nbs').glob('*.ipynb') if p.name != 'index.ipynb')
    assert nbs and all((site/f'{n}.html').is_file() for n in nbs)
    assert all((site/'experiments'/f'{p.stem}.html').is_file() for p in (ROOT/'nbs'/'experiments').glob('*.ipynb'))
    mods = sorted(p.stem for p in (ROOT/'bmrs').glob('*.py') if not p.stem.startswith('_'))
    assert all((site/'api'/f'{m}.html').is_file() for m in mods)
    assert (site/'index.html').is_file() and not list(site.parent.glob('._docs.*'))     # no temporary folder left

def test_links_resolve_in_every_page(site):
    "Every relative link of every page names a page of the site, and its #fragment an element of that page."
    cache, n = {}, 0
    for page in site.rglob('*.html'):
        for href in _refs(page).hrefs:
            u = urlsplit(href)
            if u.scheme or u.netloc: continue                          # external: not ours to check
            target = (page.parent/unquote(u.path)).resolve() if u.path else page
            assert target.is_file(), f"{page.relative_to(site)}: link {href!r} names no page"
            if u.fragment:
                ids = cache.setdefault(target, _refs(target).ids)
                assert u.fragment in ids or unquote(u.fragment) in ids, f"{page.relative_to(site)}: link {href!r}: no element with that id"
            n += 1
    assert n > 500

def test_pages_show_what_nbdev_shows(site):
    dist = (site/'00_distributions.html').read_text()
    assert 'from fastcore.test import' not in dist and '#|' not in dist            # #|hide cells and directives left out
    assert '<span class="nf">expected_theta</span>' in dist and 'api/distributions.html' in dist   # exported code, highlighted
    assert 'data:image/png;base64,' in (site/'06_posthoc.html').read_text()        # committed figures are in the page

def test_api_reference_from_docstrings(site):
    api = (site/'api'/'distributions.html').read_text()
    assert 'id="expected_theta"' in api and 'under LogN_[a,b](mu, sigma^2)' in api   # the docstring
    assert 'location of log theta' in api                                          # a docment, in the parameters table
    assert 'href="../00_distributions.html"' in api                                # back to the notebook
    grid = (site/'api'/'grid.html').read_text()
    assert 'id="Run.done"' in grid                                                 # methods of exported classes

def test_bad_out_and_failed_build(tmp_path):
    blocker = tmp_path/'file'; blocker.write_text('x')
    r = subprocess.run([sys.executable, str(ROOT/'scripts'/'docs.py'), '--out', str(blocker/'site')], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'docs.py: error: cannot write to --out folder' in r.stderr, r.stderr
    assert not (blocker.parent/'site').exists()
    # a notebook that cannot be read: the build fails naming it, and the site built before stays as it was
    docs, fake = _docs_module(), tmp_path/'repo'
    (fake/'nbs'/'experiments').mkdir(parents=True); (fake/'bmrs').mkdir()
    (fake/'nbs'/'00_x.ipynb').write_text('{"cells": [')
    out = tmp_path/'_docs'; out.mkdir(); (out/'index.html').write_text('old site')
    with pytest.raises(RuntimeError, match="cannot read notebook '.*00_x.ipynb'"): docs.build(out, root=fake)
    assert (out/'index.html').read_text() == 'old site' and sorted(p.name for p in tmp_path.iterdir()) == ['_docs', 'file', 'repo']

_HARNESS = """<!doctype html><html><head><meta charset="utf-8"><title>check</title></head><body><pre id="result"></pre><script>
const pages = PAGES;
async function check(p) {
  const fr = document.createElement('iframe'); fr.style.width = '1200px'; fr.style.height = '800px';
  const loaded = new Promise(r => fr.onload = r); fr.src = p; document.body.appendChild(fr); await loaded;
  const d = fr.contentDocument, imgs = [...d.images];
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  const res = {page: p, title: d.title, nav: d.querySelectorAll('#sidebar a').length, images: imgs.length,
               broken_images: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 60)),
               links: 0, broken_links: []};
  const docs = {};
  for (const a of d.querySelectorAll('a[href]')) {
    const u = new URL(a.getAttribute('href'), fr.contentWindow.location.href);
    if (u.origin !== location.origin) continue;                    // external links are not checked
    res.links++;
    const key = u.origin + u.pathname;
    if (!(key in docs)) { const r = await fetch(key); docs[key] = r.ok ? new DOMParser().parseFromString(await r.text(), 'text/html') : null; }
    const raw = u.hash.slice(1), frag = decodeURIComponent(raw);  // as browsers look a fragment up: as written, then decoded
    if (!docs[key] || (raw && !docs[key].getElementById(raw) && !docs[key].getElementById(frag))) res.broken_links.push(a.getAttribute('href'));
  }
  return res;
}
(async () => {
  const out = [];
  for (const p of pages) { try { out.push(await check(p)); } catch (e) { out.push({page: p, error: String(e)}); } }
  document.getElementById('result').textContent = JSON.stringify(out);
})();
</script></body></html>"""

def test_in_a_headless_browser(site):
    """Chromium loads the index and two pages with figures from a local server: every figure decoded, every internal link and #fragment found.
    Skipped, saying why, where Chromium is absent; a failure where `BMRS_REQUIRE_CHROMIUM=1` (CI, after installing it)."""
    if _chromium() is None:
        if os.environ.get('BMRS_REQUIRE_CHROMIUM') == '1': pytest.fail("BMRS_REQUIRE_CHROMIUM=1 but no Chromium found (chromium, chromium-browser, google-chrome, $BMRS_CHROMIUM)")
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium), so the site cannot be checked in a real browser")
    pages = ['index.html', '06_posthoc.html', 'experiments/figures.html', 'api/layers.html']
    (site/'__check__.html').write_text(_HARNESS.replace('PAGES', json.dumps(pages)))
    handler = functools.partial(type('Quiet', (http.server.SimpleHTTPRequestHandler,), {'log_message': lambda *a: None}),
                                directory=str(site))
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        r = subprocess.run([_chromium(), '--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-extensions',
                            '--virtual-time-budget=120000', '--dump-dom', f'http://127.0.0.1:{server.server_address[1]}/__check__.html'],
                           capture_output=True, text=True, timeout=600)
    finally: server.shutdown(); server.server_close(); (site/'__check__.html').unlink()
    start = r.stdout.find('<pre id="result">')
    assert r.returncode == 0 and start >= 0, (r.returncode, r.stderr[-2000:])
    text = r.stdout[start + len('<pre id="result">'):r.stdout.index('</pre>', start)]
    assert text, f"the check page did not finish: {r.stderr[-2000:]}"
    res = {x['page']: x for x in json.loads(html.unescape(text))}
    assert list(res) == pages
    for p, x in res.items():
        assert 'error' not in x, x
        assert x['title'].endswith('bmrs') and x['nav'] > 20, x                   # the page and its navigation are there
        assert x['broken_images'] == [] and x['broken_links'] == [], x
        assert x['links'] > 20, x
    assert res['06_posthoc.html']['images'] >= 3                                   # its committed figures
