"""tools/course_site.py: the executed notebooks as an offline website (run_notebook.py --save DIR).

Three tiny notebooks (a formula, a plot, a failure) run once for the whole module. Their pages must load
nothing from the network; headless Chromium, offline, then checks that the formulas are typeset, the images
load and DevTools reports no error or warning. The same browser check runs on the real pages in build/ (the
index, 07 with its 72 formulas, 09 with its plots) once `make course` has written them. Without `chromium` on
PATH (Debian: `apt-get install -y chromium`) the browser tests are skipped.
"""
import fcntl, html, json, os, re, select, shutil, subprocess, time
from html.parser import HTMLParser

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

import course_site, run_notebook
from common import ROOT

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


CHROMIUM = shutil.which('chromium')
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install -y chromium)")

# Run in each page once it has loaded: waits for MathJax to finish (when the page has it), then reports what a
# reader would see. MathJax 2 keeps every message it signalled in `posted`; its errors say "error" or "fail".
# The hook has a block body on purpose: a MathJax hook that returns a callback makes MathJax wait for it.
REPORT = r"""
new Promise(done => window.MathJax && MathJax.Hub
  ? MathJax.Hub.Register.StartupHook('End', () => { MathJax.Hub.Queue(() => done()); }) : done()
).then(() => {
  const signals = window.MathJax && MathJax.Hub ? [MathJax.Hub.signal, MathJax.Hub.Startup.signal] : [];
  const markdown = [...document.querySelectorAll('.jp-RenderedMarkdown')].map(e => e.innerText).join('\n');
  return {
    formulas: document.querySelectorAll('script[type^="math/tex"]').length,  // what MathJax found in the page
    typeset: document.querySelectorAll('span.MathJax').length,              // what it drew, one per formula
    mathErrors: [...document.querySelectorAll('.MathJax_Error, merror')].map(e => e.textContent)
      .concat(signals.flatMap(s => s.posted.map(m => [].concat(m).join(' ')))
                     .filter(t => /\berror|\bfail|not available|no valid/i.test(t))),
    rawTeX: markdown.match(/\$[^$]{0,40}/g) || [],  // a dollar still visible in the text is TeX left untypeset
    images: [...document.images].map(i => ({src: i.getAttribute('src').slice(0, 60), complete: i.complete,
                                             width: i.naturalWidth})),
    rows: [...document.querySelectorAll('tbody tr')].map(tr => [...tr.cells].map(c => c.innerText.trim())),
    links: [...document.querySelectorAll('a[href]')].map(a => a.getAttribute('href')),
  };
})"""


class Chromium:
    """Headless Chromium driven over its DevTools pipe (it reads fd 3, writes fd 4), networking switched off.

    `load(url)` opens a page in a fresh tab and returns the REPORT above plus what DevTools saw: console errors and
    warnings, uncaught exceptions, browser log errors (CORS, blocked loads), failed requests, and every URL fetched.
    """
    def __init__(self, profile, timeout=60):
        self.timeout, self.ids, self.pending = timeout, 0, []
        to_browser, from_browser = os.pipe(), os.pipe()
        def pipes_on_3_and_4():  # in the child, before exec; moved up first so dup2 never overwrites a pipe end
            read, write = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser[0], from_browser[1]))
            os.dup2(read, 3); os.dup2(write, 4)
        self.proc = subprocess.Popen(
            [CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
             '--disable-background-networking', '--disable-component-update', '--disable-sync',
             f'--user-data-dir={profile}', '--proxy-server=127.0.0.1:9',  # a closed port, besides offline mode
             '--remote-debugging-pipe', 'about:blank'],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=pipes_on_3_and_4, pass_fds=(3, 4))
        os.close(to_browser[0]); os.close(from_browser[1])
        self.send_fd, self.recv_fd, self.buffer = to_browser[1], from_browser[0], b''

    def call(self, method, session=None, **params):
        "Send one DevTools command and wait for its answer; events that arrive meanwhile are kept."
        self.ids += 1
        message = {'id': self.ids, 'method': method, 'params': params} | ({'sessionId': session} if session else {})
        os.write(self.send_fd, json.dumps(message).encode() + b'\0')
        reply = self.wait(lambda m: m.get('id') == self.ids)
        assert 'error' not in reply, (method, reply['error'])
        return reply['result']

    def wait(self, wanted):
        "The next message for which `wanted` is true; an AssertionError after `timeout` seconds."
        deadline = time.monotonic() + self.timeout
        while True:
            while b'\0' in self.buffer:
                raw, self.buffer = self.buffer.split(b'\0', 1)
                message = json.loads(raw)
                if wanted(message): return message
                self.pending.append(message)
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self.recv_fd], [], [], left)[0], f"chromium did not answer in {self.timeout} s"
            chunk = os.read(self.recv_fd, 1 << 20)
            assert chunk, f"chromium quit (exit status {self.proc.poll()})"
            self.buffer += chunk

    def load(self, url):
        "Open `url` in a new tab with the network offline, let it load and typeset; its report and DevTools' findings."
        target = self.call('Target.createTarget', url='about:blank')['targetId']
        session = self.call('Target.attachToTarget', targetId=target, flatten=True)['sessionId']
        for domain in ['Runtime', 'Log', 'Network', 'Page']: self.call(f'{domain}.enable', session)
        self.call('Network.emulateNetworkConditions', session, offline=True, latency=0,
                  downloadThroughput=-1, uploadThroughput=-1)
        self.pending = []
        self.call('Page.navigate', session, url=url)
        self.wait(lambda m: m.get('method') == 'Page.loadEventFired' and m.get('sessionId') == session)
        report = self.call('Runtime.evaluate', session, expression=REPORT, awaitPromise=True, returnByValue=True)
        assert 'exceptionDetails' not in report, report['exceptionDetails']
        report = report['result']['value']
        events = [(m['method'], m['params']) for m in self.pending if m.get('sessionId') == session]
        urls = {p['requestId']: p['request']['url'][:100] for method, p in events if method == 'Network.requestWillBeSent'}
        report['problems'] = [problem(method, p, urls) for method, p in events if problem(method, p, urls)]
        report['fetched'] = list(urls.values())
        self.call('Target.closeTarget', targetId=target)
        return report

    def close(self):
        try: self.call('Browser.close')
        except (AssertionError, OSError): pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        os.close(self.send_fd); os.close(self.recv_fd)


def problem(method, p, urls):
    "What a DevTools event says went wrong, in one line, or None."
    if method == 'Runtime.consoleAPICalled' and p['type'] in ('error', 'warning', 'assert'):
        return f"console.{p['type']}: " + ' '.join(str(a.get('value', a.get('description', ''))) for a in p['args'])
    if method == 'Runtime.exceptionThrown':
        details = p['exceptionDetails']
        return 'exception: ' + details.get('exception', {}).get('description', details['text'])
    if method == 'Log.entryAdded' and p['entry']['level'] in ('error', 'warning'):
        return f"{p['entry']['level']}: {p['entry']['text']} {p['entry'].get('url', '')}"
    if method == 'Network.loadingFailed':
        return f"failed to load {urls.get(p['requestId'], 'a request')}: {p['errorText']}"
    return None


@pytest.fixture(scope='module')
def browser(tmp_path_factory):
    "One headless Chromium for the module's browser tests."
    chromium = Chromium(tmp_path_factory.mktemp('chromium-profile'))
    yield chromium
    chromium.close()


def check_page(report, folder, name):
    "What holds for every page: nothing went wrong, nothing came from the network, every image and formula drawn."
    assert report['problems'] == [], (name, report['problems'])
    assert all(url.startswith(('file:', 'data:')) for url in report['fetched']), (name, report['fetched'])
    for img in report['images']:
        assert img['complete'] and img['width'] > 0, (name, img['src'])
        assert img['src'].startswith('data:image/') or (folder/img['src']).is_file(), (name, img['src'])
    assert report['mathErrors'] == [], (name, report['mathErrors'])
    assert report['typeset'] == report['formulas'], f"{name}: {report['typeset']} of {report['formulas']} formulas typeset"
    assert report['rawTeX'] == [], f"{name} shows raw TeX: {report['rawTeX'][:5]}"
    for link in report['links']:
        assert remote(link) or link.startswith('#') or (folder/link.split('#')[0]).is_file(), (name, link)


@pytest.mark.kernel
@needs_chromium
def test_pages_render_offline_in_a_browser(site, browser):
    seen = {}
    for name in ['index.html', '01_math.html', '02_plot.html', '03_broken.html']:
        seen[name] = browser.load((site/name).as_uri())
        check_page(seen[name], site, name)
    assert seen['01_math.html']['formulas'] == 2, "both formulas typeset by MathJax"
    assert len(seen['02_plot.html']['images']) == 1, "the plot is on its page"
    assert [cells[2] for cells in seen['index.html']['rows']] == ['ok', 'ok', 'FAILED']


def markdown_formulas(nb):
    "How many $…$ and $$…$$ formulas a notebook's markdown cells hold (code spans and blocks left out)."
    text = '\n'.join(c.source for c in nb.cells if c.cell_type == 'markdown')
    text = re.sub(r'`[^`]*`', '', re.sub(r'```.*?```', '', text, flags=re.S))
    return len(re.findall(r'\$\$.+?\$\$|\$[^$]+?\$', text, flags=re.S))


def plots(nb):
    "How many PNG outputs a notebook's code cells hold."
    return sum('image/png' in out.get('data', {}) for c in nb.cells if c.cell_type == 'code' for out in c.outputs)


BUILD = ROOT/'build'


@pytest.mark.course
@needs_chromium
@pytest.mark.parametrize('name', ['index.html', '07_optimizers.html', '09_annealing.html'])
def test_the_built_course_renders_offline_in_a_browser(name, browser):
    "The real pages `make course` wrote: 07 has the most formulas, 09 plots; the index lists every notebook."
    if not (BUILD/name).is_file(): pytest.skip(f"no build/{name}: `make course` builds the pages")
    report = browser.load((BUILD/name).as_uri())
    check_page(report, BUILD, name)
    if name == 'index.html':
        names = [p.stem for p in run_notebook.find_notebooks()]
        assert [cells[0] for cells in report['rows']] == names, "every notebook, in order (rerun `make course`?)"
        for cells in report['rows']:
            assert cells[1] and cells[2] in ('ok', 'FAILED') and re.fullmatch(r'\d+\.\d s', cells[3]), cells
        return
    nb = nbformat.read(BUILD/name.replace('.html', '.ipynb'), as_version=4)
    assert report['formulas'] == markdown_formulas(nb), "MathJax found every formula of the notebook"
    assert len(report['images']) == plots(nb), "every plot is on the page"
    assert report['formulas'] if name == '07_optimizers.html' else report['images'], "what the page was chosen for"
