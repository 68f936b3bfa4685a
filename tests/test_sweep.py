"""tools/sweep.py: tiny notebooks in a temporary folder run under a few seeds, checked through the JSON and the text.

Kernel starts cost seconds, so one sweep (2 notebooks x 3 seeds, 2 kernels at a time) is shared by the tests that
read its output; the summary arithmetic and the usage errors are checked without kernels. Tests that start kernels
are marked `kernel` (`make check` leaves them out).
"""
import json, math, os, re, subprocess, sys
from pathlib import Path

import pytest
import torch
from nbformat.v4 import new_markdown_cell

import cli, sweep
from conftest import make_nb

TOOL = Path(sweep.__file__)


# Seeded: every figure is a function of the seed, so the test knows each run's value.
DRAWS = ['from exp.nb_00 import record, set_seed\nimport os, torch',
         'seed = set_seed(5)\nrecord("seed", seed)\nrecord("draw", torch.rand(1))',
         # the sweep's environment reaches the kernel: one thread, no export
         'assert (os.environ["OMP_NUM_THREADS"], os.environ["MKL_NUM_THREADS"]) == ("1", "1")\n'
         'assert torch.get_num_threads() == 1 and os.environ["EXP_NO_EXPORT"]']
LUCK = ['from exp.nb_00 import record, set_seed', 'seed = set_seed(0)\nrecord("n", seed // 1000)',
        new_markdown_cell('Seed 1 (1000) is unlucky.'), 'assert seed != 1000, "unlucky seed"', 'record("after", seed)']


def draw(seed):
    torch.manual_seed(seed)
    return torch.rand(1).item()


@pytest.fixture(scope='module')
def swept(tmp_path_factory):
    "Run the sweep once through the CLI; its stdout, exit code, JSON and the folder it ran in."
    folder = tmp_path_factory.mktemp('sweep')
    make_nb(folder, '01_draws.ipynb', *DRAWS)
    make_nb(folder, '02_luck.ipynb', *LUCK)
    (folder/'tmp').mkdir()
    # our own thread settings differ from --threads 1, so the kernels' settings must be the sweep's doing
    env = {**os.environ, 'TMPDIR': str(folder/'tmp'), 'OMP_NUM_THREADS': '2', 'MKL_NUM_THREADS': '2'}
    r = subprocess.run([sys.executable, str(TOOL), '01_draws.ipynb', '02_luck.ipynb', '--seeds', '3', '--threads', '1',
                        '--jobs', '2', '--device', 'cpu', '--out', 'out/sweep.json', '--markdown'],
                       cwd=folder, env=env, capture_output=True, text=True)
    data = json.loads((folder/'out'/'sweep.json').read_text()) if (folder/'out'/'sweep.json').exists() else None
    return r, data, folder


@pytest.mark.kernel
def test_exit_code_1_when_a_run_failed(swept):
    r, data, _ = swept
    assert r.returncode == 1, r.stdout + r.stderr
    assert data is not None and r.stderr == ''


@pytest.mark.kernel
def test_progress_line_per_run(swept):
    r, _, _ = swept
    lines = [l.split() for l in r.stdout.splitlines() if re.fullmatch(r'\S+ seed \d+ (ok|FAILED) \d+\.\d s', l)]
    assert sorted((l[0], int(l[2]), l[3]) for l in lines) == [
        ('01_draws', 0, 'ok'), ('01_draws', 1, 'ok'), ('01_draws', 2, 'ok'),
        ('02_luck', 0, 'ok'), ('02_luck', 1, 'FAILED'), ('02_luck', 2, 'ok')]


@pytest.mark.kernel
def test_raw_runs_carry_each_seeds_figures(swept):
    _, data, _ = swept
    runs = {(Path(r['notebook']).name, r['seed']): r for r in data['runs']}
    assert list(runs) == [('01_draws.ipynb', s) for s in range(3)] + [('02_luck.ipynb', s) for s in range(3)]
    for s in range(3):  # seed N is set_seed's default + 1000 N, and torch really was seeded with it
        assert runs['01_draws.ipynb', s]['figures'] == {'seed': 5 + 1000 * s, 'draw': draw(5 + 1000 * s)}
    bad = runs['02_luck.ipynb', 1]
    assert not bad['ok'] and bad['cell'] == 3 and 'unlucky seed' in bad['error'] and 'Traceback' in bad['error']
    assert bad['figures'] == {'n': 1.0}, "figures recorded before the failure are kept, later ones never ran"


@pytest.mark.kernel
def test_summary_counts_failures_and_spread(swept):
    _, data, _ = swept
    draws, luck = data['summary']
    assert (draws['notebook'], draws['runs'], draws['passed'], draws['failures']) == ('01_draws', 3, 3, [])
    assert list(draws['figures']) == ['seed', 'draw']
    assert draws['figures']['seed'] == {'n': 3, 'nan': 0, 'spread': [5, 1005, 2005]}
    ds = sorted(draw(5 + 1000 * s) for s in range(3))
    assert draws['figures']['draw']['spread'] == ds
    assert (luck['runs'], luck['passed']) == (3, 2)
    assert luck['failures'] == [{'seed': 1, 'cell': 3, 'at': 'cell 3', 'error': 'AssertionError: unlucky seed'}]
    assert luck['figures']['n'] == {'n': 3, 'nan': 0, 'spread': [0, 1, 2]}
    assert luck['figures']['after'] == {'n': 2, 'nan': 0, 'spread': [0, 1000, 2000]}  # median of two: the mean
    lo, med, hi = luck['seconds']['spread']
    assert 0 < lo <= med <= hi and luck['seconds']['n'] == 3


@pytest.mark.kernel
def test_printed_summary_and_markdown(swept):
    r, data, folder = swept
    out = r.stdout
    assert '02_luck: 3 runs, 2 passed, 1 failed\n  seed 1 failed at cell 3: AssertionError: unlucky seed\n' in out
    assert '01_draws: 3 runs, 3 passed, 0 failed\n' in out
    assert re.search(r'^  seed +3 +5 +1005 +2005$', out, re.M)
    assert '| notebook | passed | failed seeds | figure | min | median | max |' in out
    assert '| `02_luck` | 2 / 3 | 1 (cell 3) | `n` | 0 | 1 | 2 |' in out
    assert '| `01_draws` | 3 / 3 | - | `seed` | 5 | 1005 | 2005 |' in out
    assert len(re.findall(r'^\|  \|  \|  \| seconds \| \d+\.\d \| \d+\.\d \| \d+\.\d \|$', out, re.M)) == 2
    command = data['command']
    assert command.endswith(' --seeds 3 --threads 1 --jobs 2 --device cpu --timeout 600') and f'`{command}`' in out
    assert f"{os.cpu_count()} cores" in out and f"torch {data['machine']['torch']}" in out
    assert 'device cpu, 1 thread per kernel.' in out


@pytest.mark.kernel
def test_nothing_left_behind(swept):
    _, _, folder = swept
    assert sorted(p.name for p in folder.iterdir()) == ['01_draws.ipynb', '02_luck.ipynb', 'out', 'tmp']
    assert list((folder/'tmp').iterdir()) == [], "each run's record file is removed"
    assert [p.name for p in (folder/'out').iterdir()] == ['sweep.json'], "written atomically, no temp file left"


@pytest.mark.kernel
def test_one_job_runs_in_this_process_and_passes(tmp_path, capsys):
    threads = 'import os\nassert os.environ["OMP_NUM_THREADS"] == os.environ["MKL_NUM_THREADS"] == "2"'
    nb = make_nb(tmp_path, '01_plain.ipynb', threads)
    assert sweep.main(str(nb), seeds=1, threads=2, jobs=1, device='cpu') == 0
    out = capsys.readouterr().out
    assert re.search(r'^01_plain seed 0 ok \d+\.\d s$', out, re.M)
    assert '01_plain: 1 run, 1 passed, 0 failed' in out and '  seconds ' in out


@pytest.mark.kernel
def test_a_bad_record_line_fails_the_run(tmp_path):
    nb = make_nb(tmp_path, '01_scribble.ipynb', 'import os\nopen(os.environ["EXP_RECORD"], "a").write("oops\\n")')
    r = sweep.run_seed(nb, 0, 'cpu', 60, 1)
    assert (r.ok, r.cell, r.place, r.figures) == (False, None, 'after the last cell', {})
    assert r.last_line.startswith('EXP_RECORD line 1 is not') and r.last_line.endswith('oops')


BAD = {'seeds 0': (['--seeds', '0'], '--seeds 0'), 'threads 0': (['--threads', '0'], '--threads 0'),
       'jobs 0': (['--jobs', '0'], '--jobs 0'), 'seeds word': (['--seeds', 'many'], "--seeds 'many'"),
       'seeds fraction': (['--seeds', '2.5'], '--seeds 2.5'), 'timeout 0': (['--timeout', '0'], '--timeout 0'),
       'device': (['--device', 'tpu'], 'tpu'), 'missing': (['missing.ipynb'], 'missing.ipynb: no such notebook'),
       'out folder': (['--out', '.'], '--out .'), 'typo': (['--seed', '3'], 'did you mean --seeds')}


@pytest.mark.parametrize('kind', BAD)
def test_usage_mistake_is_one_line_exit_2_nothing_run(tmp_path, monkeypatch, in_process, kind):
    monkeypatch.chdir(tmp_path)
    make_nb(tmp_path, '01_mark.ipynb', 'open("ran.txt", "w").write("ran")')
    args, says = BAD[kind]
    r = in_process(sweep.main, 'sweep', '01_mark.ipynb', *args)
    err = r.stderr
    assert r.returncode == 2 and r.stdout == ''
    assert err.startswith('sweep: ') and err.count('\n') == 1 and says in err and 'Traceback' not in err
    assert not (tmp_path/'ran.txt').exists()


def test_no_notebook_is_a_usage_error(in_process):
    r = in_process(sweep.main, 'sweep', '--seeds', '2')
    assert (r.returncode, r.stdout) == (2, '')
    assert r.stderr == 'sweep: give one or more notebooks (or folders of numbered notebooks) to sweep\n'


def test_missing_notebook_cli(tmp_path):
    r = subprocess.run([sys.executable, str(TOOL), 'missing.ipynb', '--seeds', '2'],
                       cwd=tmp_path, capture_output=True, text=True)
    assert (r.returncode, r.stdout, r.stderr) == (2, '', 'sweep: missing.ipynb: no such notebook\n')


def test_help_documents_every_option():
    assert cli.undocumented(sweep.main) == []


def run(name, seed, ok=True, seconds=1.0, error='', **figures):
    return sweep.Run(f'nbs/{name}.ipynb', seed, ok, seconds, None, error, figures)


def test_summarize_without_kernels():
    runs = [run('01_a', 0, x=1.0, y=5.0), run('01_a', 1, seconds=3.0, x=4.0),
            run('01_a', 2, seconds=2.0, x=float('nan')),
            run('01_a', 3, False, 9.0, 'before the first cell: RuntimeError: kernel died\n'),
            run('02_b', 0, False, 2.0, 'after the last cell:\nEXP_RECORD line 1 is not ...', z=0.5)]
    a, b = sweep.summarize(runs)
    assert (a['runs'], a['passed']) == (4, 3)
    assert a['failures'] == [{'seed': 3, 'cell': None, 'at': 'before the first cell',
                              'error': 'before the first cell: RuntimeError: kernel died'}]
    assert a['figures']['x'] == {'n': 3, 'nan': 1, 'spread': (1.0, 2.5, 4.0)}  # NaN counted, not in the spread
    assert a['figures']['y'] == {'n': 1, 'nan': 0, 'spread': (5.0, 5.0, 5.0)}
    assert a['seconds'] == {'n': 4, 'nan': 0, 'spread': (1.0, 2.5, 9.0)} and list(a['figures']) == ['x', 'y']
    assert b['failures'][0]['at'] == 'after the last cell' and b['figures']['z']['n'] == 1
    assert sweep.spread([float('nan')]) is None and sweep.fmt(None) == '-'
    text = sweep.report([a])
    assert any(l.endswith('(1 NaN)') for l in text) and text[-1].split() == ['seconds', '4', '1.0', '2.5', '9.0']


def test_read_records(tmp_path):
    f = tmp_path/'r.jsonl'
    f.write_text('{"name": "acc", "value": 0.5}\n\n{"name": "acc", "value": 0.75}\n{"name": "loss", "value": NaN}\n')
    figures = sweep.read_records(f)
    assert figures['acc'] == 0.75 and math.isnan(figures['loss'])  # a name recorded twice: its last value
    f.write_text('{"name": "acc"}\n')
    with pytest.raises(ValueError, match='line 1'): sweep.read_records(f)
