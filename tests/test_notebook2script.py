"""tools/notebook2script.py, its specification as tests.

Every test works in a throwaway repo, tmp/nbs and tmp/exp: the functions are called with `root=tmp`, and the
command line runs in-process through `cli.run` with the module's ROOT pointed at tmp (main passes ROOT on), so
the real exp/ is never touched. The tool's own process is run, as a student runs it, only where nothing is
written anywhere: --help and a mistyped option.
"""
import json, os, stat, subprocess, sys
from types import SimpleNamespace

import pytest

import cli, notebook2script as n2s  # tools/ is on sys.path (conftest.py)
from common import ROOT

TOOL = ROOT/'tools'/'notebook2script.py'


def code(source): return {'cell_type': 'code', 'metadata': {}, 'execution_count': None, 'outputs': [], 'source': source}
def markdown(source): return {'cell_type': 'markdown', 'metadata': {}, 'source': source}


def write_nb(path, *cells):
    "A notebook file of the given cells; a plain string is a code cell. The JSON is written as is."
    nb = {'cells': [code(c) if isinstance(c, (str, list)) else c for c in cells],
          'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    path.write_text(json.dumps(nb, ensure_ascii=False), encoding='utf-8')
    return path


def snapshot(folder):
    "Every file in the folder with its bytes and modification time: to show that nothing was written."
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def run_tool(*args, cwd):
    "The real tool as a student runs it, in its own process (for what writes nothing: --help, refused options)."
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def repo(tmp_path, monkeypatch, in_process):
    """A throwaway repo (tmp/nbs, tmp/exp), the current folder, with the tool's command line run on it in-process:
    `repo.run(*args)` gives .returncode, .stdout and .stderr, `repo.main(*args, **options)` the exit code alone."""
    (tmp_path/'nbs').mkdir(); (tmp_path/'exp').mkdir()
    (tmp_path/'exp'/'__init__.py').write_text('')
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(n2s, 'ROOT', tmp_path)  # what main hands to convert()
    run = lambda *args: in_process(n2s.main, 'notebook2script', *args)
    main = lambda *args, **kw: run(*args, *(f'--{k}={v}' for k, v in kw.items())).returncode
    return SimpleNamespace(root=tmp_path, nbs=tmp_path/'nbs', exp=tmp_path/'exp', main=main, run=run)


# --- which cells are exported

@pytest.mark.parametrize('first', ['#export', '# export', '#| export', '#|export', '#EXPORT', '# Export',
                                   '  # Export  ', '\t#export', '\n\n#export', '  \n#export'])
def test_directives_that_export(repo, first):
    cell = code(f'{first}\nx = 1\n')
    assert n2s.is_export(cell)
    nb = write_nb(repo.nbs/'01_a.ipynb', cell)
    assert n2s.export_cells(nb) == ['x = 1']


@pytest.mark.parametrize('cell', [
    code('#exports\nx = 1'), code('# export this\nx = 1'), code('#export: x\nx = 1'), code('export\nx = 1'),
    code('x = 1\n#export'), code('# a comment\n#export\nx = 1'), code(''), code('\n\n'),
    markdown('#export\nx = 1'), {'cell_type': 'raw', 'metadata': {}, 'source': '#export\nx = 1'},
], ids=['exports', 'export-this', 'export-colon', 'no-hash', 'not-first-line', 'after-comment', 'empty', 'blank',
        'markdown', 'raw'])
def test_cells_that_are_not_exported(repo, cell):
    assert not n2s.is_export(cell)
    nb = write_nb(repo.nbs/'01_a.ipynb', cell)
    assert n2s.export_cells(nb) == []


def test_directive_dropped_and_the_rest_kept_verbatim(repo):
    src = '#export\ndef f(x):\n    "Doc."\n    return x  # keep this comment\n\n\ny = f(2)\n'
    nb = write_nb(repo.nbs/'01_a.ipynb', src)
    assert n2s.export_cells(nb) == ['def f(x):\n    "Doc."\n    return x  # keep this comment\n\n\ny = f(2)']
    assert repo.main(str(nb)) == 0
    text = (repo.exp/'nb_01.py').read_text(encoding='utf-8')
    assert text.split('\n', 2)[2] == 'def f(x):\n    "Doc."\n    return x  # keep this comment\n\n\ny = f(2)\n'


def test_source_as_string_or_list_of_lines_gives_the_same_module(repo):
    lines = ['#export\n', 'import math\n', '\n', 'def g(): return math.pi\n']
    write_nb(repo.nbs/'01_a.ipynb', ''.join(lines))
    assert repo.main('nbs/01_a.ipynb') == 0
    as_string = (repo.exp/'nb_01.py').read_bytes()
    write_nb(repo.nbs/'01_a.ipynb', lines)
    assert repo.main('nbs/01_a.ipynb') == 0
    assert (repo.exp/'nb_01.py').read_bytes() == as_string


def test_crlf_becomes_lf(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\r\nx = 1\r\n\r\ny = 2\r\n', ['#export\r\n', 'z = 3\r\n'])
    assert repo.main('nbs/01_a.ipynb') == 0
    data = (repo.exp/'nb_01.py').read_bytes()
    assert b'\r' not in data and data.endswith(b'x = 1\n\ny = 2\n\nz = 3\n')


def test_non_ascii_round_trips_as_utf8(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\ndef σ(x):\n    "café → σ"\n    return x\nname = "é"\n')
    assert repo.main('nbs/01_a.ipynb') == 0
    text = (repo.exp/'nb_01.py').read_bytes().decode('utf-8')
    assert 'def σ(x):\n    "café → σ"' in text and 'name = "é"' in text
    ns = {}
    exec(compile(text, 'nb_01.py', 'exec'), ns)
    assert ns['σ'].__doc__ == 'café → σ'


def test_trailing_spaces_stripped_and_one_final_newline(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export  \nx = 1   \n\t\ny = 2\t\n\n\n\n', '#export\nz = 3\n\n')
    assert repo.main('nbs/01_a.ipynb') == 0
    text = (repo.exp/'nb_01.py').read_text(encoding='utf-8')
    assert all(l == l.rstrip() for l in text.split('\n'))
    assert text.endswith('z = 3\n') and not text.endswith('\n\n')
    assert text.split('\n', 2)[2] == 'x = 1\n\ny = 2\n\nz = 3\n'


def test_header_names_the_notebook_relative_to_the_repo(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\nx = 1')
    assert repo.main(str(repo.nbs/'01_a.ipynb')) == 0  # an absolute path is shown relative all the same
    lines = (repo.exp/'nb_01.py').read_text(encoding='utf-8').split('\n')
    assert lines[0].startswith('# AUTOGENERATED from nbs/01_a.ipynb') and 'tools/notebook2script.py' in lines[0]
    assert lines[1] == '' and lines[2] == 'x = 1'


@pytest.mark.parametrize('name,module', [('02a_why_sqrt5.ipynb', 'nb_02a'), ('01_matmul.ipynb', 'nb_01'),
                                         ('nbs/10_x_y.ipynb', 'nb_10'), ('00_exports.ipynb', 'nb_00')])
def test_module_name(repo, name, module):
    assert n2s.module_name(name) == module


@pytest.mark.parametrize('name', ['0-1_x.ipynb', '01.5_x.ipynb', 'é1_x.ipynb'])
def test_bad_prefix_is_refused(repo, name):
    write_nb(repo.nbs/name, '#export\nx = 1')
    r = repo.run(f'nbs/{name}')
    assert r.returncode == 2
    err = r.stderr
    assert err.count('\n') == 1 and name in err
    assert snapshot(repo.exp).keys() == {'__init__.py'}


def test_two_notebooks_for_one_module_is_refused_and_nothing_written(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    write_nb(repo.nbs/'01_b.ipynb', '#export\nb = 1')
    r = repo.run('nbs/01_a.ipynb', 'nbs/01_b.ipynb')
    assert r.returncode == 2
    err = r.stderr
    assert err.count('\n') == 1 and '01_b.ipynb' in err and 'nb_01' in err
    assert snapshot(repo.exp).keys() == {'__init__.py'}
    r = repo.run()  # the same two in nbs/, found without naming them
    assert r.returncode == 2 and r.stderr.count('\n') == 1
    assert snapshot(repo.exp).keys() == {'__init__.py'}


# --- user mistakes: one line on stderr, exit 2, nothing written

BAD = {
    'missing': None,
    'not_json': '{"cells": [',
    'json_list': '[1, 2, 3]',
    'no_cells': '{"metadata": {}, "nbformat": 4}',
    'cells_not_a_list': '{"cells": "oops", "nbformat": 4}',
    'source_not_text': json.dumps({'cells': [code(5)], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}),
    'syntax_error': json.dumps({'cells': [code('x = 1'), markdown('m'), code('#export\ndef f(:\n    pass')],
                                'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}),
}


@pytest.fixture
def converted(repo):
    "A repo with nbs/01_a.ipynb already converted: exp/nb_01.py exists, to show it is left alone."
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    assert repo.main('nbs/01_a.ipynb') == 0
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 2')  # changed since: a run that went ahead would rewrite
    return repo


@pytest.mark.parametrize('kind', BAD)
@pytest.mark.parametrize('after_a_good_one', [False, True], ids=['alone', 'second'])
def test_bad_input_exit_2_one_line_nothing_written(converted, kind, after_a_good_one):
    repo = converted
    bad = repo.nbs/'02_bad.ipynb'
    if BAD[kind] is not None: bad.write_text(BAD[kind], encoding='utf-8')
    before = snapshot(repo.exp)
    args = (['nbs/01_a.ipynb'] if after_a_good_one else []) + ['nbs/02_bad.ipynb']
    r = repo.run(*args)
    out, err = r.stdout, r.stderr
    assert r.returncode == 2
    assert err.count('\n') == 1 and err.startswith('notebook2script: ') and '02_bad.ipynb' in err
    assert 'Traceback' not in err and out == ''
    if kind == 'syntax_error': assert 'cell 2' in err
    assert snapshot(repo.exp) == before


def test_bad_input_message_names_the_notebook_as_given(converted):
    (converted.nbs/'02_bad.ipynb').write_text('not json', encoding='utf-8')
    before = snapshot(converted.exp)
    r = converted.run('nbs/01_a.ipynb', 'nbs/02_bad.ipynb')
    assert r.returncode == 2 and r.stdout == ''
    assert r.stderr.startswith('notebook2script: nbs/02_bad.ipynb: not valid JSON') and r.stderr.count('\n') == 1
    assert snapshot(converted.exp) == before


# --- what gets written

def test_notebook_without_export_cells_writes_no_module(repo):
    write_nb(repo.nbs/'01_a.ipynb', 'x = 1', markdown('#export'))
    assert repo.main('nbs/01_a.ipynb') == 0
    assert snapshot(repo.exp).keys() == {'__init__.py'}


def test_notebook_that_stops_exporting_loses_its_module(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    assert repo.main('nbs/01_a.ipynb') == 0 and (repo.exp/'nb_01.py').exists()
    write_nb(repo.nbs/'01_a.ipynb', 'a = 1')
    assert repo.main('nbs/01_a.ipynb') == 0
    assert snapshot(repo.exp).keys() == {'__init__.py'}
    assert repo.main(check=True) == 0


def test_no_paths_converts_every_numbered_notebook_in_order(repo):
    write_nb(repo.nbs/'02_b.ipynb', '#export\nfrom exp.nb_01 import *\nb = 2')
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    write_nb(repo.nbs/'02a_c.ipynb', '#export\nc = 3')
    write_nb(repo.nbs/'03_none.ipynb', 'not_exported = 1')
    write_nb(repo.nbs/'scratch.ipynb', '#export\nscratch = 1')
    r = repo.run()
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ['wrote exp/nb_01.py', 'wrote exp/nb_02.py', 'wrote exp/nb_02a.py']
    assert snapshot(repo.exp).keys() == {'__init__.py', 'nb_01.py', 'nb_02.py', 'nb_02a.py'}
    r = subprocess.run([sys.executable, '-c', 'from exp.nb_02 import *; assert (a, b) == (1, 2)'], cwd=repo.root)
    assert r.returncode == 0


def test_rerun_is_byte_identical_and_leaves_files_alone(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = "é"', '#export\nb = 2')
    assert repo.run().returncode == 0
    before = snapshot(repo.exp)
    r = repo.run()
    assert r.returncode == 0 and r.stdout.splitlines() == ['unchanged exp/nb_01.py']
    assert snapshot(repo.exp) == before


def test_writes_leave_no_temp_files(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    write_nb(repo.nbs/'02_b.ipynb', '#export\nb = 1')
    assert repo.main() == 0
    assert sorted(p.name for p in repo.exp.iterdir()) == ['__init__.py', 'nb_01.py', 'nb_02.py']


def test_modules_are_ordinary_readable_files(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    old = os.umask(0o022)
    try: assert repo.main() == 0
    finally: os.umask(old)
    assert stat.S_IMODE((repo.exp/'nb_01.py').stat().st_mode) == 0o644, "not private like a mkstemp file (0600)"


def test_failed_write_keeps_the_old_module_and_no_temp_file(repo, monkeypatch):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    assert repo.main() == 0
    before = snapshot(repo.exp)
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 2')

    def broken_replace(src, dst): raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', broken_replace)
    with pytest.raises(OSError): n2s.convert(root=repo.root)
    assert snapshot(repo.exp) == before


def test_convert_writes_into_the_root_it_is_given_from_any_folder(repo, monkeypatch, tmp_path_factory, capsys):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    monkeypatch.chdir(tmp_path_factory.mktemp('elsewhere'))
    assert n2s.convert(root=repo.root) == 0
    assert capsys.readouterr().out == 'wrote exp/nb_01.py\n' and (repo.exp/'nb_01.py').is_file()
    assert n2s.stale_modules(repo.root) == [] and n2s.convert(check=True, root=repo.root) == 0


# --- --check

def test_check_in_sync(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    write_nb(repo.nbs/'02_b.ipynb', 'nothing exported')
    assert repo.run().returncode == 0
    r = repo.run('--check')
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1] == 'exp/ is in sync with nbs/'
    assert n2s.stale_modules(repo.root) == []


def test_check_lists_stale_missing_and_orphans_and_writes_nothing(repo):
    for n, name in enumerate(['01_a', '02_b', '03_c'], 1): write_nb(repo.nbs/f'{name}.ipynb', f'#export\nv = {n}')
    assert repo.run().returncode == 0
    write_nb(repo.nbs/'01_a.ipynb', '#export\nv = 10')   # notebook edited, module not regenerated
    (repo.exp/'nb_02.py').unlink()                          # module deleted
    (repo.exp/'nb_09.py').write_text('orphan = 1\n')        # module without a notebook
    before = snapshot(repo.exp)
    r = repo.run('--check')
    assert r.returncode == 1
    assert r.stdout.splitlines() == ['stale: exp/nb_01.py', 'missing: exp/nb_02.py', 'no notebook exports it: exp/nb_09.py',
                                     'exp/ is out of sync with nbs/']
    assert snapshot(repo.exp) == before
    assert n2s.stale_modules(repo.root) == r.stdout.splitlines()[:-1]


def test_check_reports_a_broken_notebook_as_a_usage_error(repo):
    (repo.nbs/'01_a.ipynb').write_text('{', encoding='utf-8')
    r = repo.run('--check')
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and '01_a.ipynb' in r.stderr


# --- near misses: not exported, but a warning names them

NEAR_MISSES = ['#exports', '# export this', '#| exports', '#|export:', '#export: x', '  # EXPORTS  ']


@pytest.mark.parametrize('first', NEAR_MISSES)
def test_near_miss_warns_and_is_still_not_exported(repo, first):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1', markdown('# Exports\nA heading, not a directive.'),
             f'{first}\nb = 2', '# a plain comment\nc = 3')
    r = repo.run('nbs/01_a.ipynb')
    out, err = r.stdout, r.stderr
    assert r.returncode == 0
    assert out == 'wrote exp/nb_01.py\n'
    [warning] = err.splitlines()
    assert warning.startswith('notebook2script: warning: nbs/01_a.ipynb: cell 2 ') and repr(first.strip()) in warning
    assert (repo.exp/'nb_01.py').read_text(encoding='utf-8').split('\n', 2)[2] == 'a = 1\n'  # b = 2 not exported


def test_no_warning_for_directives_and_comments(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1', '#| export\nb = 2', '# a comment about exports\nc = 3',
             '# Export\nd = 4', markdown('#exports'), 'x = 1\n#exports')
    r = repo.run('nbs/01_a.ipynb')
    assert r.returncode == 0 and r.stderr == ''


def test_near_miss_warning_from_the_command_line_and_check(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1', '#exports\nb = 2')
    r = repo.run()
    assert r.returncode == 0 and r.stdout == 'wrote exp/nb_01.py\n'
    assert r.stderr.count('\n') == 1 and '01_a.ipynb: cell 1' in r.stderr and "'#exports'" in r.stderr
    r = repo.run('--check')
    assert r.returncode == 0 and '01_a.ipynb: cell 1' in r.stderr


def test_bad_notebook_reports_only_its_error_not_the_warnings(repo):
    write_nb(repo.nbs/'01_a.ipynb', '#exports\nb = 2')
    (repo.nbs/'02_bad.ipynb').write_text('{', encoding='utf-8')
    r = repo.run()
    assert r.returncode == 2
    err = r.stderr
    assert err.count('\n') == 1 and '02_bad.ipynb' in err


# --- the command line (tools/cli.py): typos refused before anything runs, help without a pager

@pytest.mark.parametrize('args', [['--chek'], ['--check', '--verbose'], ['nbs/01_a.ipynb', '-c'], ['--paths', 'x']],
                         ids=['typo', 'unknown', 'short', 'varargs-by-name'])
def test_unknown_option_is_one_line_exit_2_nothing_written(converted, args):
    before = snapshot(converted.exp)
    r = converted.run(*args)
    assert r.returncode == 2 and r.stdout == '' and r.stderr.count('\n') == 1
    assert r.stderr.startswith('notebook2script: unknown option ') and 'Traceback' not in r.stderr
    assert snapshot(converted.exp) == before


def test_typo_suggests_the_option(repo):
    r = repo.run('--chek')
    assert 'did you mean --check?' in r.stderr


def test_check_does_not_swallow_a_path(repo):
    "fire alone would read `--check nbs/01_a.ipynb` as check='nbs/01_a.ipynb'; a boolean takes no value here."
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    r = repo.run('--check', 'nbs/01_a.ipynb')
    assert r.returncode == 1 and 'missing: exp/nb_01.py' in r.stdout
    assert snapshot(repo.exp).keys() == {'__init__.py'}


@pytest.mark.parametrize('flag', ['--help', '-h'])
def test_help_lists_the_options_and_writes_nothing(repo, flag):
    write_nb(repo.nbs/'01_a.ipynb', '#export\na = 1')
    r = repo.run('nbs/01_a.ipynb', flag)
    assert r.returncode == 0 and r.stderr == ''
    assert r.stdout.startswith('usage: notebook2script [PATHS ...] [--check]\n')
    assert 'Args:' in r.stdout and '  paths: ' in r.stdout and '  check: ' in r.stdout
    assert snapshot(repo.exp).keys() == {'__init__.py'}


def test_the_tool_in_its_own_process(tmp_path):
    "As a student runs it. The notebook named does not exist: had the option not been refused, nothing is written."
    r = run_tool('91_missing.ipynb', '--help', cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, '') and r.stdout.startswith('usage: notebook2script [PATHS ...] [--check]\n')
    r = run_tool('91_missing.ipynb', '--chek', cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (2, '', 'notebook2script: unknown option --chek; did you mean --check?\n')


def test_every_option_is_explained_in_the_docstring():
    assert cli.undocumented(n2s.main) == []
