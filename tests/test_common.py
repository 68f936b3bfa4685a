"""tools/common.py: what the tools share (the repository root, notebook listing and reading, path display,
atomic writes, min / median / max), checked once here rather than through each tool."""
import json, os, stat

import pytest

import cli, common


def test_root_is_the_repository():
    assert (common.ROOT/'tools'/'common.py').is_file() and common.NBS == common.ROOT/'nbs'


def test_numbered_notebooks_in_order(tmp_path):
    for name in ['10_z.ipynb', '02a_b.ipynb', '02_a.ipynb', 'notes.ipynb', '01_x.txt', 'x01_y.ipynb']:
        (tmp_path/name).write_text('{}')
    assert [p.name for p in common.numbered_notebooks(tmp_path)] == ['02_a.ipynb', '02a_b.ipynb', '10_z.ipynb']


BAD = {'missing': None, 'not_json': '{"cells": [', 'not_utf8': b'\xff\xfe{', 'a_list': '[1, 2]',
       'no_cells': '{"nbformat": 4}', 'cells_not_a_list': '{"cells": 3, "nbformat": 4}',
       'nbformat_3': '{"cells": [], "nbformat": 3}', 'no_nbformat': '{"cells": []}'}


@pytest.mark.parametrize('kind', BAD)
def test_read_notebook_refuses_what_is_not_an_nbformat_4_notebook_in_one_line(tmp_path, kind):
    path = tmp_path/'01_bad.ipynb'
    content = BAD[kind]
    if isinstance(content, bytes): path.write_bytes(content)
    elif content is not None: path.write_text(content)
    with pytest.raises(common.NotebookError) as e: common.read_notebook(path)
    assert str(e.value).startswith(f'{path}: ') and '\n' not in str(e.value)
    assert isinstance(e.value, cli.UsageError), "a tool that lets it through reports it as one line, exit 2"


def test_read_notebook_gives_the_json(tmp_path):
    nb = {'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': 'é'}], 'metadata': {}, 'nbformat': 4,
          'nbformat_minor': 5}
    (tmp_path/'01_a.ipynb').write_text(json.dumps(nb), encoding='utf-8')
    assert common.read_notebook(tmp_path/'01_a.ipynb') == nb


def test_shown_is_relative_inside_the_base_else_absolute(tmp_path, monkeypatch):
    (tmp_path/'a'/'b').mkdir(parents=True)
    monkeypatch.chdir(tmp_path/'a')
    assert common.shown('b/x.ipynb', tmp_path) == 'a/b/x.ipynb'
    assert common.shown('../y.ipynb', tmp_path/'a') == (tmp_path/'y.ipynb').resolve().as_posix()
    assert common.shown(common.ROOT/'nbs'/'01_matmul.ipynb') == 'nbs/01_matmul.ipynb'  # default base: the repository


@pytest.mark.parametrize('data', ['é\nline\r\nkept as is\n', b'\x00\xff bytes'], ids=['str', 'bytes'])
def test_write_atomic_writes_exactly_a_readable_file_and_no_temp_file(tmp_path, data):
    path = tmp_path/'sub'/'f.txt'
    old = os.umask(0o022)
    try: common.write_atomic(path, data)
    finally: os.umask(old)
    assert path.read_bytes() == (data.encode('utf-8') if isinstance(data, str) else data)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644, "not private like a mkstemp file (0600)"
    assert [p.name for p in path.parent.iterdir()] == ['f.txt']


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    path = tmp_path/'f.txt'
    path.write_text('old')
    def broken_replace(src, dst): raise OSError('disk full')
    monkeypatch.setattr(os, 'replace', broken_replace)
    with pytest.raises(OSError, match='disk full'): common.write_atomic(path, 'new')
    assert path.read_text() == 'old' and [p.name for p in tmp_path.iterdir()] == ['f.txt']


def test_spread_leaves_nan_out():
    assert common.spread([3.0, float('nan'), 1.0, 2.0]) == (1.0, 2.0, 3.0)
    assert common.spread([1, 2]) == (1, 1.5, 2) and common.spread([float('nan')]) is None and common.spread([]) is None
