"tools/bench.py: its table rows and its command line (the measurements themselves run under `make bench`)."
import pytest

import bench


def test_a_row_with_rounds_shows_their_spread_and_a_ratio_shows_none(capsys):
    rep = bench.Report()
    rep.add('step_ms', 12.0, [0.010, 0.012, 0.020], 'ms')
    rep.add('ours_over_torch', 1.5, None, 'x')   # a ratio has no rounds: this row once crashed `make bench`
    assert rep.numbers == {'step_ms': 12.0, 'ours_over_torch': 1.5}
    assert rep.rows[0][3:] == (0.010, 0.012, 0.020) and rep.rows[1][3:] == (None, None, None)
    rows = capsys.readouterr().out.splitlines()
    assert 'min/median/max 10.00 ms / 12.00 ms / 20.00 ms' in rows[0] and 'min/median/max' not in rows[1]


@pytest.mark.parametrize('threads', ['0', '1.5', 'two'])
def test_a_bad_thread_count_is_one_line_exit_2_and_nothing_measured(in_process, monkeypatch, threads):
    monkeypatch.setattr(bench, 'bench_matmul', lambda *a: pytest.fail('measured despite a usage mistake'))
    r = in_process(bench.main, 'bench', '--threads', threads)
    assert r.returncode == 2 and r.stdout == '' and len(r.stderr.strip().splitlines()) == 1, r


def test_help_explains_every_option(in_process):
    r = in_process(bench.main, 'bench', '--help')
    assert r.returncode == 0
    for option in ('--threads', '--skip_course', '--out'): assert option in r.stdout
