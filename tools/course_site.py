"""The executed course as a small website that works offline: one page per notebook and an index.

    python tools/run_notebook.py nbs --save build   # build/NN_name.html, build/index.html, build/mathjax/

The pages are nbconvert's `lab` HTML with three changes: MathJax comes from `mathjax/` next to them (a part
of the pinned package jupyter-server-mathjax, copied once per folder), so formulas render without a network;
the require.js, widget and mermaid scripts, which would load from a CDN and which the course never uses, are
left out; and each page links back to the index. Plots are PNG outputs, which nbconvert embeds as data: URIs.
"""
import html, importlib.metadata, os, re, shutil, tempfile, time
from pathlib import Path

import jupyter_server_mathjax, nbformat
from nbconvert import HTMLExporter

from common import write_atomic  # tools/ is on sys.path: this script's folder

MATHJAX_SRC = Path(jupyter_server_mathjax.__file__).parent/'static'
# What TeX input with HTML-CSS output needs: the loader, the combined configuration (TeX and its AMS
# extensions, the HTML-CSS output, menu and zoom, all in one file), what TeX and HTML-CSS load on demand
# (\color, \cancel, tables, line breaking, rare operators), and STIX-Web, the only web font the package ships.
# Left out: other languages (pages ask for English), the accessibility extensions and the SVG output.
MATHJAX_PARTS = ['MathJax.js', 'LICENSE', 'config/TeX-AMS-MML_HTMLorMML-full.js', 'config/Safe.js',
                 'extensions/Safe.js', 'extensions/TeX', 'extensions/HTML-CSS', 'jax/element/mml/optable',
                 'jax/output/HTML-CSS', 'fonts/HTML-CSS/STIX-Web/woff']
MATHJAX_URL = 'mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe&locale=en'  # relative to the page
_stamp = '.copied-from'

# nbconvert's lab page minus the scripts from elsewhere; MathJax told to use the one font it has here.
PAGE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block html_head_js_mathjax -%}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], preferredFont: null, webFont: "STIX-Web", imageFont: null,
  // MathJax's blank fallback font is url(about:blank), which a page opened from a file may not fetch (CORS)
  styles: {"@font-face": {"font-family": "MathJax_Blank", src: "local('MathJax_Blank')"}}}});
</script>
{{ super() }}
{%- endblock html_head_js_mathjax -%}
{% block extra_css %}
<style type="text/css">
nav.course-nav { padding: 10px 0 0 20px; font: 14px/1.4 sans-serif; }
nav.course-nav a { color: #1a5fb4; text-decoration: none; }
</style>
{% endblock extra_css %}
{%- block body_header -%}
{{ super() }}
<nav class="course-nav"><a href="index.html">&larr; all notebooks</a></nav>
{%- endblock body_header -%}
"""


def copy_mathjax(folder):
    "Copy the part of MathJax the pages load into `folder`/mathjax, unless the same copy is there already."
    folder, dest = Path(folder), Path(folder)/'mathjax'
    stamp = f"jupyter-server-mathjax {importlib.metadata.version('jupyter-server-mathjax')}: {' '.join(MATHJAX_PARTS)}\n"
    if (dest/_stamp).is_file() and (dest/_stamp).read_text() == stamp: return dest
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder, prefix='.mathjax.'))  # built aside, then renamed: never half there
    try:
        for part in MATHJAX_PARTS:
            src, to = MATHJAX_SRC/part, tmp/part
            to.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir(): shutil.copytree(src, to)
            else: shutil.copy2(src, to)
        (tmp/_stamp).write_text(stamp)
        tmp.chmod(0o755)  # mkdtemp makes the folder private; a website is readable
        if dest.exists(): shutil.rmtree(dest)
        os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def folder_size(folder):
    "Bytes in all files under `folder`."
    return sum(p.stat().st_size for p in Path(folder).rglob('*') if p.is_file())


def page_html(nb, name):
    "An executed notebook as a standalone HTML page that loads scripts only from its own folder."
    exporter = HTMLExporter(template_name='lab', raw_template=PAGE_TEMPLATE, mathjax_url=MATHJAX_URL)
    return exporter.from_notebook_node(nb, resources={'metadata': {'name': name}})[0]


def save_page(nb, folder, name):
    "Write an executed notebook as `name`.ipynb and `name`.html in `folder`."
    folder = Path(folder)
    write_atomic(folder/f'{name}.ipynb', nbformat.writes(nb))
    write_atomic(folder/f'{name}.html', page_html(nb, name))


def purpose(nb):
    "A notebook's one-line purpose: the title of its `# NN · Title` heading, else its first sentence."
    first = next((c.source for c in nb.cells if c.cell_type == 'markdown' and c.source.strip()), '')
    lines = [l.strip() for l in first.splitlines() if l.strip()]
    if lines and (m := re.fullmatch(r'#+\s+(?:\d+[a-z]?\s*[·:.–—-]\s+)?(.+?)\s*#*', lines[0])): return m[1]
    text = ' '.join(l for l in lines if not l.startswith('#'))
    sentence = re.split(r'(?<=[.!?])\s', text, maxsplit=1)[0]
    return sentence if len(sentence) <= 160 else sentence[:159].rstrip() + '…'


def inline_markdown(text):
    "Escape `text` for HTML, keeping `code` spans and dropping the * and _ of emphasis."
    parts = re.split(r'`([^`]+)`', text)
    out = [html.escape(re.sub(r'(\*\*|\*|__)(.+?)\1', r'\2', p)) if i % 2 == 0 else f'<code>{html.escape(p)}</code>'
           for i, p in enumerate(parts)]
    return ''.join(out)


def error_summary(error):
    "One line for the index: the failing cell and the error's last line."
    lines = [l.strip() for l in error.splitlines() if l.strip()]
    if not lines: return 'failed'
    return lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')}: {lines[-1]}"


INDEX_CSS = """
body { margin: 0; background: #fafafa; color: #1f2328; font: 16px/1.5 -apple-system, "Segoe UI", Roboto,
       "Helvetica Neue", Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 32px 24px 48px; }
h1 { font-size: 28px; margin: 0 0 4px; }
p.summary { color: #57606a; margin: 0 0 24px; }
p.summary .bad { color: #b42318; font-weight: 600; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #d0d7de; border-radius: 6px; }
th, td { text-align: left; padding: 10px 14px; border-bottom: 1px solid #eaeef2; vertical-align: baseline; }
th { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: #57606a; background: #f6f8fa; }
tr:last-child td { border-bottom: none; }
td.name { white-space: nowrap; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 14px; }
td.name a { color: #1a5fb4; text-decoration: none; }
td.name a:hover, td.name a:focus { text-decoration: underline; }
td.status, th.status { text-align: center; }
td.seconds, th.seconds { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
span.ok { color: #1a7f37; font-weight: 600; }
span.failed { color: #fff; background: #b42318; font-weight: 700; padding: 1px 8px; border-radius: 10px; }
tr.failed td { background: #fff4f2; }
tr.failed td:first-child { box-shadow: inset 4px 0 0 #b42318; }
div.error { margin-top: 4px; color: #b42318; font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
            white-space: pre-wrap; overflow-wrap: anywhere; }
code { font: 0.9em ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f0f2f4; padding: 0 3px;
       border-radius: 3px; }
footer { margin-top: 16px; color: #57606a; font-size: 13px; }
"""


def index_html(rows, about=''):
    "The index page: one row per (name, purpose, ok, seconds, error) in the order given, and a summary line."
    failed = sum(not ok for _, _, ok, _, _ in rows)
    total = sum(seconds for _, _, _, seconds, _ in rows)
    counts = f"{len(rows)} notebook{'s' * (len(rows) != 1)}, " + (
        f'<span class="bad">{failed} failed</span>' if failed else '0 failed')
    body = []
    for name, what, ok, seconds, error in rows:
        link = f'<a href="{html.escape(name)}.html">{html.escape(name)}</a>'
        err = '' if ok else f'<div class="error">{html.escape(error_summary(error))}</div>'
        status = '<span class="ok">ok</span>' if ok else '<span class="failed">FAILED</span>'
        body.append(f'<tr class="{"ok" if ok else "failed"}"><td class="name">{link}</td>'
                    f'<td class="purpose">{inline_markdown(what)}{err}</td><td class="status">{status}</td>'
                    f'<td class="seconds">{seconds:.1f} s</td></tr>')
    rows_html = '\n'.join(body)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Deep learning from the foundations: the executed notebooks</title>
<style>{INDEX_CSS}</style>
</head>
<body>
<main>
<h1>Deep learning from the foundations</h1>
<p class="summary">{counts}, {total:.1f} s of running{html.escape(about)}</p>
<table>
<thead><tr><th>notebook</th><th>what it builds</th><th class="status">status</th><th class="seconds">time</th></tr></thead>
<tbody>
{rows_html}
</tbody>
</table>
<footer>Each page is the notebook as it ran, outputs and plots included; it works without a network.
Written by <code>tools/run_notebook.py</code> on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.</footer>
</main>
</body>
</html>
"""


def write_index(folder, results, about=''):
    "Write `folder`/index.html for run results (objects with path, ok, seconds, error), in their order."
    rows = [(Path(r.path).stem, purpose(nbformat.read(r.path, as_version=4)), r.ok, r.seconds, r.error)
            for r in results]
    path = Path(folder)/'index.html'
    write_atomic(path, index_html(rows, about))
    return path
