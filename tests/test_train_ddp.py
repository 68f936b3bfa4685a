"""tools/train_ddp.py under torchrun, and notebook 10's `launch` when things go wrong.

Every case starts real processes (a few seconds each, more on a busy machine); all run on the CPU with Gloo, one
torch thread per process.
"""
import os, socket, subprocess, sys, time
from pathlib import Path

import pytest
import torch

from exp.nb_10 import (RankError, check_world_size, child_pids, fail_on_rank, hello, launch, max_world_size,
                       stall_on_rank)

from common import ROOT
BIN = Path(sys.executable).parent
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'EXP_DEVICE': 'cpu'}
TINY = ['--n_train', '512', '--n_valid', '256']   # a few batches: enough to run every part of a fit

two_cores = pytest.mark.skipif(max_world_size('cpu') < 2, reason="needs 2 CPU cores: one per process")


def train_ddp(*args, torchrun=None, timeout=300):
    "Run tools/train_ddp.py (under torchrun with `torchrun` processes, if given); the finished process."
    launcher = [str(BIN/'torchrun'), '--standalone', '--nproc_per_node', str(torchrun)] if torchrun else [sys.executable]
    return subprocess.run([*launcher, str(ROOT/'tools'/'train_ddp.py'), *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


@two_cores
@pytest.mark.procs
@pytest.mark.data
def test_torchrun_two_processes_trains_and_only_rank_0_prints_and_saves(tmp_path):
    r = train_ddp('--epochs', '1', *TINY, '--save', str(tmp_path/'cnn.pt'), torchrun=2)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count('trained on 2 process(es)') == 1, r.stdout   # the final line, from rank 0 only
    assert r.stdout.count('valid_accuracy') == 2, r.stdout             # and one table header: rank 0's
    assert r.stdout.count('saved the weights') == 1, r.stdout
    weights = torch.load(tmp_path/'cnn.pt', weights_only=True)
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert [p.name for p in tmp_path.iterdir()] == ['cnn.pt']          # no temporary file left behind


@pytest.mark.procs
@pytest.mark.data
def test_without_torchrun_it_trains_in_one_process():
    r = train_ddp('--epochs', '1', *TINY)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'trained on 1 process(es), cpu' in r.stdout


def run_main(monkeypatch, capsys, *argv, env=None):
    "tools/train_ddp.py's command line in this process (no new Python to start): exit code, stdout, stderr."
    import train_ddp   # tools/ is on sys.path (conftest.py)
    monkeypatch.setattr(sys, 'argv', ['train_ddp.py', *argv])
    for k, v in (env or {}).items(): monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as e: train_ddp.cli.run(train_ddp.main, prog='train_ddp')
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


@pytest.mark.parametrize('args,message', [
    (['--epochs', '0'], '--epochs 0'),
    (['--n_train', '-5'], '--n_train -5'),
    (['--lr_max', '0'], '--lr_max 0'),
    (['--save', 'no/such/folder/cnn.pt'], 'does not exist'),
    (['--epoch', '2'], 'did you mean --epochs'),
])
def test_usage_mistakes_are_one_line_exit_2(monkeypatch, capsys, args, message):
    code, out, err = run_main(monkeypatch, capsys, *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_more_processes_than_cores_is_a_usage_error(monkeypatch, capsys):
    # what torchrun --nproc_per_node 3 tells each process on a 2-core machine; refused before joining any group
    n = max_world_size('cpu') + 1
    code, out, err = run_main(monkeypatch, capsys, '--device', 'cpu',
                              env=dict(RANK='0', LOCAL_RANK='0', WORLD_SIZE=str(n), LOCAL_WORLD_SIZE=str(n)))
    assert code == 2 and '--nproc_per_node' in err and 'but this machine has' in err, err


def test_help_explains_every_option(monkeypatch, capsys):
    import cli, train_ddp
    assert cli.undocumented(train_ddp.main) == []
    code, out, err = run_main(monkeypatch, capsys, '--help')
    assert code == 0 and 'Args:' in out and '--n_train' in out


@two_cores
@pytest.mark.procs
def test_launch_returns_each_ranks_result():
    ranks = launch(hello, world_size=2, device='cpu')
    assert [r['rank'] for r in ranks] == [0, 1] and {r['total'] for r in ranks} == {3.0}


@two_cores
@pytest.mark.procs
def test_launch_shows_what_the_ranks_print(capsys):
    # a spawned rank writes to the kernel's terminal, never to the notebook; launch relays it, rank 0's first
    assert launch(print, 'printed by a rank', world_size=2, device='cpu') == [None, None]
    assert capsys.readouterr().out == 'cpu printed by a rank\n--- rank 1 printed:\ncpu printed by a rank\n'


@two_cores
@pytest.mark.procs
@pytest.mark.parametrize('bad_rank', [0, 1])
def test_a_failing_rank_fails_the_launch_with_its_own_error_and_leaves_no_process(bad_rank):
    before, start = child_pids(), time.perf_counter()
    with pytest.raises(RankError, match=f'rank {bad_rank} failed first') as e:
        launch(fail_on_rank, bad_rank, world_size=2, device='cpu', timeout=120)
    assert f'rank {bad_rank} failed on purpose' in str(e.value)
    assert time.perf_counter() - start < 120   # the others were stopped, not left waiting for the timeout
    assert child_pids() - before == set()


@two_cores
@pytest.mark.procs
def test_a_hanging_rank_times_out_instead_of_hanging_forever():
    before, start = child_pids(), time.perf_counter()
    with pytest.raises(RankError, match='rank 0 failed first') as e:
        launch(stall_on_rank, 1, 600, world_size=2, device='cpu', timeout=3)
    assert 'Timed out' in str(e.value)
    assert time.perf_counter() - start < 300   # not the 600 s the stalled rank sleeps
    assert child_pids() - before == set()


def test_a_port_in_use_is_refused_before_any_process_starts():
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0)); taken.listen()
        port = taken.getsockname()[1]
        before = child_pids()
        with pytest.raises(RuntimeError, match=f'port {port} on 127.0.0.1 is in use'):
            launch(hello, world_size=1, device='cpu', port=port)
        assert child_pids() == before


def test_too_many_processes_and_functions_from_main_are_refused():
    with pytest.raises(ValueError, match='but this machine has'):
        launch(hello, world_size=max_world_size('cpu') + 1, device='cpu')
    with pytest.raises(ValueError, match='whole number'): check_world_size(0, 'cpu')
    def local(device): return 1
    local.__module__ = '__main__'   # as a function defined in a notebook or a script is
    with pytest.raises(ValueError, match='defined in this notebook or script'): launch(local, world_size=1, device='cpu')
