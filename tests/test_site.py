"""tools/course_site.py: the executed notebooks as an offline website (run_notebook.py --save DIR).

Three tiny notebooks (a formula, a plot, a failure) run once for the whole module. Their pages must load
nothing from the network; headless Chromium, its network pointed at a closed port, then checks that the
formulas are typeset, the images load and nothing reports an error. Without `chromium` on PATH
(Debian: `apt-get install chromium`) the browser test is skipped.
"""
import html, json, re, shutil, subprocess
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import course_site, run_notebook

ROOT = Path(run_notebook.__file__).resolve().parent.parent

NOTEBOOKS = {
    '01_math.ipynb': [new_markdown_cell('# 01 · Sums of `squares`\n\nA formula on its own line, $$\\sum_i x_i^2,$$'
                                        ' and one inline, $a^2 + b^2 = c^2$.'),
                      new_code_cell('print(sum(x**2 for x in range(4)))')],
    '02_plot.ipynb': [new_markdown_cell('A parabola, drawn by matplotlib. Nothing else.'),
                      new_code_cell('import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(4, 3))\n'
                                    'ax.plot([x / 10 for x in range(-10, 11)], [(x / 10)**2 for x in range(-10, 11)])\n'
                                    'ax.set_title("a parabola"); plt.show()')],
    '03_broken.ipynb': [new_markdown_cell('# 03 · Broken on purpose'), new_code_cell('x = 1'), new_code_cell('x / 0')],
}


@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "The three notebooks run once with --save; the folder of pages, and the results."
    nbs, out = tmp_path_factory.mktemp('nbs'), tmp_path_factory.mktemp('site')
    for name, cells in NOTEBOOKS.items(): nbformat.write(new_notebook(cells=cells), nbs/name)
    results = run_notebook.run_notebooks([nbs], device='cpu', save=out)
    assert [r.ok for r in results] == [True, True, False], [r.error for r in results]
    return out


class Tags(HTMLParser):
    "Every start tag of a page, as (tag, attributes)."
    def __init__(self, text):
        super().__init__()
        self.tags = []
        self.feed(text)

    def handle_starttag(self, tag, attrs): self.tags.append((tag, dict(attrs)))


def rows(index):
    "The index's table rows as (class, link, cells' text)."
    out = []
    for tr in re.findall(r'<tr class="(\w+)">(.*?)</tr>', index, re.S):
        link = re.search(r'href="([^"]+)"', tr[1])[1]
        cells = [html.unescape(re.sub(r'<[^>]+>', '', c)).strip() for c in re.findall(r'<td[^>]*>(.*?)</td>', tr[1], re.S)]
        out.append((tr[0], link, cells))
    return out


@pytest.mark.kernel
def test_index_lists_each_notebook_in_order_with_purpose_status_time_and_link(site):
    index = (site/'index.html').read_text(encoding='utf-8')
    found = rows(index)
    assert [link for _, link, _ in found] == ['01_math.html', '02_plot.html', '03_broken.html']
    assert all((site/link).is_file() for _, link, _ in found)
    purposes = [cells[1] for _, _, cells in found]
    assert purposes[0] == 'Sums of squares' and '<code>squares</code>' in index  # from the `# 01 · Title` heading
    assert purposes[1] == 'A parabola, drawn by matplotlib.'  # no heading: the first sentence
    assert purposes[2].startswith('Broken on purpose') and 'ZeroDivisionError' in purposes[2]
    assert [(cls, cells[2]) for cls, _, cells in found] == [('ok', 'ok'), ('ok', 'ok'), ('failed', 'FAILED')]
    assert all(re.fullmatch(r'\d+\.\d s', cells[3]) for _, _, cells in found)
    assert '3 notebooks, <span class="bad">1 failed</span>' in index and 'device cpu' in index
    assert 'span.failed' in index and '#b42318' in index, "a failed notebook is marked in red"


def remote(url): return bool(re.match(r'\s*(https?:)?//', url or '', re.I))


@pytest.mark.kernel
def test_pages_load_nothing_from_the_network(site):
    pages = sorted(site.glob('*.html'))
    assert [p.name for p in pages] == ['01_math.html', '02_plot.html', '03_broken.html', 'index.html']
    for page in pages:
        text = page.read_text(encoding='utf-8')
        tags = Tags(text).tags
        loads = [(t, a.get('src') or a.get('href')) for t, a in tags if t in ('script', 'link', 'img', 'iframe')]
        assert not [l for l in loads if remote(l[1])], (page.name, loads)
        assert not re.search(r'''(import\(|url\()\s*["']?\s*(https?:)?//''', text), page.name  # no script or CSS fetch
        for src in [a['src'] for t, a in tags if t == 'script' and a.get('src')]:
            assert (site/src.split('?')[0]).is_file(), f"{page.name} loads {src}, which is not in the folder"
        if page.name != 'index.html':
            assert any(t == 'script' and a.get('src', '').startswith('mathjax/MathJax.js') for t, a in tags)
            assert 'href="index.html"' in text, "each page links back to the index"


@pytest.mark.kernel
def test_mathjax_is_copied_once_and_small(site):
    mathjax = site/'mathjax'
    assert (mathjax/'MathJax.js').is_file() and (mathjax/'config/TeX-AMS-MML_HTMLorMML-full.js').is_file()
    size = course_site.folder_size(mathjax)
    assert size < 3e6, f"{size} bytes: only TeX to HTML-CSS with one font should be copied"
    before = (mathjax/'MathJax.js').stat().st_mtime_ns
    course_site.copy_mathjax(site)
    assert (mathjax/'MathJax.js').stat().st_mtime_ns == before, "a second run reuses the copy"
    assert not list(site.glob('.mathjax.*')), "no half-built copy left behind"


def test_an_incomplete_mathjax_copy_is_replaced(tmp_path):
    (tmp_path/'mathjax').mkdir()
    (tmp_path/'mathjax'/'MathJax.js').write_text('half a file')
    course_site.copy_mathjax(tmp_path)
    assert (tmp_path/'mathjax'/'MathJax.js').read_bytes() == (course_site.MATHJAX_SRC/'MathJax.js').read_bytes()


@pytest.mark.parametrize('source, expected', [
    ('# 07 · Optimizers from scratch\n\nSo far `opt.step()` was PyTorch\'s.', 'Optimizers from scratch'),
    ('# 02a: Why √5\n\ntext', 'Why √5'),
    ('## A plain heading ##', 'A plain heading'),
    ('We train a model. Then we look at it.', 'We train a model.'),
    ('', ''),
])
def test_purpose(source, expected):
    nb = new_notebook(cells=[new_code_cell('x = 1'), new_markdown_cell(source)] if source else [new_code_cell('x = 1')])
    assert course_site.purpose(nb) == expected


def test_every_course_notebook_has_a_titled_purpose():
    for path in run_notebook.find_notebooks():
        what = course_site.purpose(nbformat.read(path, as_version=4))
        assert what and not what[0].isdigit() and '\n' not in what, (path.name, what)


# Runs first in each page: collects errors (failed loads, console.error/warn, MathJax's error signals), and once
# the page and MathJax are done, leaves a report on <html data-probe="..."> for --dump-dom to show.
PROBE = """<script>
window.__probe = {errors: []};
addEventListener('error', e => __probe.errors.push(e.message || 'failed to load ' + (e.target.src || e.target.href)), true);
for (const level of ['error', 'warn']) {
  const log = console[level].bind(console);
  console[level] = (...a) => { __probe.errors.push(level + ': ' + a.join(' ')); log(...a); };
}
addEventListener('load', () => {
  const report = () => document.documentElement.setAttribute('data-probe', JSON.stringify({
    errors: __probe.errors,
    images: [...document.images].map(i => ({src: i.getAttribute('src'), complete: i.complete, width: i.naturalWidth})),
    math: document.querySelectorAll('.MathJax_Display, span.MathJax').length,
    mathErrors: document.querySelectorAll('.MathJax_Error, merror').length}));
  if (!window.MathJax || !MathJax.Hub) return report();
  for (const signal of [MathJax.Hub.signal, MathJax.Hub.Startup.signal])  // Interest replays earlier messages
    signal.Interest(m => { const t = [].concat(m).join(' ');
                           if (/\\berror|\\bfail|not available|no valid/i.test(t)) __probe.errors.push('MathJax: ' + t); });
  MathJax.Hub.Queue(report);
});
</script>"""


def browse(page, profile):
    "Load `page` in headless Chromium with every network request failing; its probe report and console lines."
    probe = page.with_name(f'probe-{page.name}')  # beside the page, so its relative links work the same
    probe.write_text(page.read_text(encoding='utf-8').replace('<head>', '<head>' + PROBE, 1), encoding='utf-8')
    cmd = ['chromium', '--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-sync',
           '--disable-background-networking', '--disable-component-update', f'--user-data-dir={profile}',
           '--proxy-server=127.0.0.1:9',  # a closed port: anything fetched from elsewhere fails
           '--virtual-time-budget=15000', '--enable-logging=stderr', '--v=0', '--dump-dom', probe.as_uri()]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    probe.unlink()
    found = re.search(r'<html[^>]* data-probe="([^"]*)"', r.stdout)
    assert found, f"no probe report from {page.name}: {r.stderr[-2000:]}"
    console = [l for l in r.stderr.splitlines() if ':CONSOLE' in l]
    return json.loads(html.unescape(found[1])), r.stdout, console


@pytest.mark.kernel
@pytest.mark.skipif(shutil.which('chromium') is None, reason="no chromium on PATH (apt-get install chromium)")
def test_pages_render_offline_in_a_browser(site, tmp_path):
    seen = {}
    for name in ['index.html', '01_math.html', '02_plot.html']:
        report, dom, console = browse(site/name, tmp_path/'profile')
        assert report['errors'] == [] and console == [], (name, report['errors'], console)
        assert report['mathErrors'] == 0, name
        for img in report['images']:
            assert img['complete'] and img['width'] > 0, (name, img['src'][:60])
            assert img['src'].startswith('data:image/') or (site/img['src']).is_file(), (name, img['src'][:60])
        seen[name] = report, dom
    report, dom = seen['01_math.html']
    assert report['math'] >= 2 and 'class="MathJax_Display"' in dom, "both formulas typeset by MathJax"
    assert '$$' not in re.sub(r'<script.*?</script>', '', dom, flags=re.S), "no formula left as raw TeX"
    assert len(seen['02_plot.html'][0]['images']) == 1, "the plot is on its page"
