"""The library's contracts, checked in a few seconds: no notebook runs, no network, no dataset (except where marked).

The notebooks show and check each piece as it is built; these tests pin down the corners a notebook never visits
(cancelling at every stage, uneven batches, a parameter without a gradient, empty schedule phases), so a change to
`exp/` that breaks one fails here, fast, with a name that says what broke.
"""
import math, multiprocessing, os, shutil, subprocess, sys
from collections import Counter
from functools import partial

import pytest
import torch
from torch import nn, optim
import torch.nn.functional as F

from exp.nb_09 import (ROOT, AvgStatsCallback, BatchLoader, Callback, CancelBatchException, CancelEpochException,
                        CancelTrainException, DataBunch, Dataset, DeviceCallback, EmbeddingDot, EmbeddingDotBias,
                        EmbeddingNet, Learner, ParamScheduler, Runner, Sampler, adam_opt, adamw_opt, combine_scheds,
                        one_cycle_cbs, recommend, sched_lin, sched_no, sgd_opt)
# not `import *`: pytest would collect nb_00's test helpers as tests


def tiny_data(n_train=5, n_valid=3, bs=2):
    "A regression DataBunch: batches of 2, 2 and 1 for training (the last one short), 2 and 1 for validation."
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n_train + n_valid, 3, generator=g), torch.randn(n_train + n_valid, generator=g)
    train, valid = Dataset(x[:n_train], y[:n_train]), Dataset(x[n_train:], y[n_train:])
    return DataBunch(BatchLoader(train, Sampler(train, bs)), BatchLoader(valid, Sampler(valid, bs)))


class Squeeze(nn.Module):
    def __init__(self): super().__init__(); self.lin = nn.Linear(3, 1)
    def forward(self, x): return self.lin(x).squeeze(1)


def tiny_learner(data=None):
    torch.manual_seed(0)
    model = Squeeze()
    return Learner(model, optim.SGD(model.parameters(), lr=0.1), F.mse_loss, data or tiny_data())


EVENTS = ['begin_fit', 'begin_epoch', 'begin_batch', 'after_pred', 'after_loss', 'after_backward', 'after_step',
          'after_batch', 'after_cancel_batch', 'after_cancel_epoch', 'after_cancel_train', 'begin_validate',
          'after_epoch', 'after_fit']


class CountEvents(Callback):
    "Counts every event; raises `exc` at `event` of training batch `at_iter` (once)."
    def __init__(self, exc=None, event=None, at_iter=0): self.counts, self.exc, self.event, self.at_iter = Counter(), exc, event, at_iter
    def __call__(self, event):
        self.counts[event] += 1
        if self.exc and event == self.event and self.run.in_train and self.run.iter == self.at_iter:
            self.exc, exc = None, self.exc
            raise exc()
        return False


def counts_of(cb, epochs=2):
    Runner(cbs=[cb]).fit(epochs, tiny_learner())
    return {e: cb.counts[e] for e in EVENTS}


def test_runner_calls_every_event_the_right_number_of_times():
    # 2 epochs x (3 training + 2 validation batches); backward and step only in training
    assert counts_of(CountEvents()) == dict(
        begin_fit=1, begin_epoch=2, begin_batch=10, after_pred=10, after_loss=10, after_backward=6, after_step=6,
        after_batch=10, after_cancel_batch=0, after_cancel_epoch=0, after_cancel_train=0, begin_validate=2,
        after_epoch=2, after_fit=1)


def test_cancel_batch_skips_the_rest_of_that_batch_only():
    c = counts_of(CountEvents(CancelBatchException, 'after_pred', at_iter=1))
    assert c['after_cancel_batch'] == 1 and c['after_batch'] == 10     # after_batch still runs
    assert c['after_loss'] == 9 and c['after_step'] == 5               # one batch lost its loss and its step


def test_cancel_epoch_ends_that_pass_and_validation_still_runs():
    c = counts_of(CountEvents(CancelEpochException, 'begin_batch', at_iter=1))
    assert c['after_cancel_epoch'] == 1
    assert c['after_step'] == 4              # epoch 0 trained one batch, epoch 1 all three
    assert c['begin_validate'] == 2 and c['after_epoch'] == 2


def test_cancel_train_ends_fit_and_after_fit_still_runs():
    c = counts_of(CountEvents(CancelTrainException, 'after_step', at_iter=0))
    assert c['after_cancel_train'] == 1 and c['after_fit'] == 1
    assert c['after_step'] == 1 and c['begin_validate'] == 0 and c['after_epoch'] == 0


def test_an_error_in_a_callback_propagates_after_after_fit():
    cb = CountEvents(ValueError, 'after_loss', at_iter=0)
    with pytest.raises(ValueError): Runner(cbs=[cb]).fit(1, tiny_learner())
    assert cb.counts['after_fit'] == 1


def test_callbacks_run_in_order_of_their_order_attribute():
    seen = []
    def make(name, order):
        cls = type(name, (Callback,), {'_order': order, 'begin_fit': lambda self: seen.append(name)})
        return cls()
    Runner(cbs=[make('LateCallback', 5), make('EarlyCallback', -5), make('MiddleCallback', 0)]).fit(1, tiny_learner())
    assert seen == ['EarlyCallback', 'MiddleCallback', 'LateCallback']


def test_avg_stats_weights_each_batch_by_its_size():
    data = tiny_data()                     # training batches of 2, 2 and 1
    learn = tiny_learner(data)
    run = Runner(cb_funcs=[partial(AvgStatsCallback, [])])
    run.logger = lambda row: None
    run.fit(1, learn)
    model = learn.model
    with torch.no_grad():
        whole = F.mse_loss(model(data.valid_ds.x), data.valid_ds.y).item()
    assert math.isclose(run.avg_stats.valid_stats.loss, whole, rel_tol=1e-5)
    batch_means = [F.mse_loss(model(xb), yb).item() for xb, yb in data.valid_dl]
    assert not math.isclose(sum(batch_means) / len(batch_means), whole, rel_tol=1e-3)   # the unweighted mean is wrong


def two_group_model():
    "Two parameter groups and a parameter the forward pass never uses (it gets no gradient)."
    torch.manual_seed(0)
    m = nn.ModuleDict({'body': nn.Linear(4, 8), 'head': nn.Linear(8, 2), 'unused': nn.Linear(2, 2)})
    groups = [{'params': list(m['body'].parameters())},
              {'params': list(m['head'].parameters()) + list(m['unused'].parameters()), 'lr': 0.05}]
    return m, groups


def train_steps(m, opt, steps=10):
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x, y = torch.randn(16, 4, generator=g), torch.randint(0, 2, (16,), generator=g)
        F.cross_entropy(m['head'](F.relu(m['body'](x))), y).backward()
        opt.step(); opt.zero_grad()
    return m


@pytest.mark.parametrize('ours,theirs', [
    (partial(sgd_opt, lr=0.1, mom=0.9, wd=1e-2), partial(optim.SGD, lr=0.1, momentum=0.9, weight_decay=1e-2)),
    (partial(adam_opt, lr=1e-2, wd=1e-2), partial(optim.Adam, lr=1e-2, weight_decay=1e-2)),
    (partial(adamw_opt, lr=1e-2, wd=1e-2), partial(optim.AdamW, lr=1e-2, weight_decay=1e-2)),
], ids=['sgd', 'adam', 'adamw'])
def test_optimizers_match_torch_optim_with_two_groups_and_an_unused_parameter(ours, theirs):
    m1, g1 = two_group_model()
    m2, g2 = two_group_model()
    before = m1['unused'].weight.clone()
    train_steps(m1, ours(g1)); train_steps(m2, theirs(g2))
    for (name, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
        assert torch.allclose(p1, p2, rtol=1e-4, atol=1e-6), name
    assert torch.equal(m1['unused'].weight, before)       # no gradient: no update (and no weight decay either)


def test_combine_scheds_is_exact_at_its_boundaries():
    f = combine_scheds([0.25, 0.75], [sched_lin(0., 1.), sched_lin(1., 0.)])
    assert f(0.) == 0. and f(0.25) == 1. and f(1.) == 0.
    assert math.isclose(f(0.125), 0.5) and math.isclose(f(0.625), 0.5)


def test_combine_scheds_skips_an_empty_phase():
    f = combine_scheds([0.5, 0., 0.5], [sched_lin(0., 1.), sched_no(99., 99.), sched_lin(1., 0.)])
    assert [f(p) for p in (0., 0.5, 1.)] == [0., 1., 0.]
    assert all(f(i / 100) != 99. for i in range(101))


@pytest.mark.parametrize('pcts', [[0.5, 0.6], [1.2, -0.2], [1.]])
def test_combine_scheds_rejects_bad_fractions(pcts):
    with pytest.raises(ValueError): combine_scheds(pcts, [sched_no(1., 1.), sched_no(2., 2.)])


@pytest.mark.parametrize('n,bs', [(10, 3), (9, 3), (1, 4)])
def test_sampler_covers_every_index_once_per_epoch(n, bs):
    ds = Dataset(torch.arange(n), torch.arange(n))
    s = Sampler(ds, bs, shuffle=True)
    epochs = [torch.cat(list(s)) for _ in range(3)]
    assert len(list(s)) == len(s) == math.ceil(n / bs)
    for e in epochs: assert torch.equal(e.sort().values, torch.arange(n))
    assert torch.equal(torch.cat(list(Sampler(ds, bs))), torch.arange(n))    # unshuffled: in order


def fetch_movielens_here(_):
    from exp.nb_08 import fetch_movielens   # in a fresh process: reads $EXP_DATA at import
    return str(fetch_movielens())


@pytest.mark.data
@pytest.mark.procs
def test_two_processes_fetching_movielens_at_once_both_succeed(tmp_path, monkeypatch):
    src = ROOT/'data'/'movielens.pkl.compress'
    if not src.exists(): pytest.skip("data/movielens.pkl.compress not fetched yet (make data)")
    shutil.copy(src, tmp_path/src.name)          # the download is done; the two conversions to CSV race
    monkeypatch.setenv('EXP_DATA', str(tmp_path))   # the spawned processes inherit it
    with multiprocessing.get_context('spawn').Pool(2) as pool:
        paths = pool.map(fetch_movielens_here, [0, 1], chunksize=1)
    assert paths == [str(tmp_path/'ml-latest-small')] * 2
    folder = tmp_path/'ml-latest-small'
    assert sorted(p.name for p in folder.iterdir()) == ['movies.csv', 'ratings.csv']   # no temporary file left
    import pandas as pd
    assert len(pd.read_csv(folder/'ratings.csv')) == 100_004


# --- callbacks and the runner share one namespace: every clash is an error at construction

class LossCallback(Callback): pass       # would be run.loss, the loop's own state
class DataCallback(Callback): pass       # would be run.data, a property of the runner


@pytest.mark.parametrize('cbs,words', [
    ([LossCallback()], "run.loss, but 'loss' is taken by the runner itself"),
    ([DataCallback()], "run.data, but 'data' is taken by the runner itself"),
    ([AvgStatsCallback([]), AvgStatsCallback([])], "already the name of a AvgStatsCallback"),
    ([object()], "is not a Callback"),
], ids=['loop-state', 'property', 'twice', 'not-a-callback'])
def test_a_callback_name_that_clashes_is_refused_when_the_runner_is_built(cbs, words):
    with pytest.raises((ValueError, TypeError), match=words.replace('(', r'\(')): Runner(cbs=cbs)


def test_schedulers_are_named_after_what_they_drive_so_both_one_cycle_schedulers_are_kept():
    run = Runner(cb_funcs=one_cycle_cbs(0.1))
    assert (run.lr_scheduler.pname, run.mom_scheduler.pname) == ('lr', 'mom')


def test_a_callback_writing_the_runners_state_is_told_to_use_self_run():
    class SetsInTrain(Callback):
        def begin_epoch(self): self.in_train = True
    with pytest.raises(AttributeError, match=r'write `self.run.in_train = ...`'):
        Runner(cbs=[SetsInTrain()]).fit(1, tiny_learner())


def test_the_model_outside_fit_is_a_clear_error_not_a_none_attribute():
    run = Runner()
    run.fit(1, tiny_learner())
    with pytest.raises(AttributeError, match="only while `fit` runs"): run.model


def test_stats_by_name():
    run = Runner(cbs=[AvgStatsCallback([])])
    run.logger = lambda row: None
    run.fit(1, tiny_learner())
    stats = run.avg_stats.valid_stats
    assert stats['loss'] == stats.loss == stats.values[0]
    with pytest.raises(KeyError, match="no average named 'accuracy'"): stats['accuracy']


# --- devices: named at import, checked where used

@pytest.mark.procs
@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has a CUDA GPU')
def test_exp_device_cuda_without_a_gpu_fails_where_the_device_is_used_not_at_import():
    code = ("import exp.nb_09 as m; print(m.def_device)\n"
            "try: m.DeviceCallback()\n"
            "except RuntimeError as e: print(e)")
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                       env={**os.environ, 'EXP_DEVICE': 'cuda'})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ['cuda', "device 'cuda' was asked for (--device or EXP_DEVICE), "
                                             "but this machine has no CUDA GPU"]


# --- recommend, with any of the three models

def tiny_collab():
    "Three users, four movies; user 1 rated movies 10 and 20."
    import pandas as pd
    from exp.nb_09 import collab_databunch
    ratings = pd.DataFrame({'userId': [1, 1, 2, 3, 3], 'movieId': [10, 20, 20, 30, 40], 'rating': [4., 3., 5., 2., 1.]})
    movies = pd.DataFrame({'movieId': [10, 20, 30, 40], 'title': ['A', 'B', 'C', 'D']})
    return ratings, movies, collab_databunch(ratings, bs=2, valid_pct=0.2)


@pytest.mark.parametrize('model_cls', [EmbeddingDot, EmbeddingDotBias, EmbeddingNet])
def test_recommend_skips_rated_movies_keeps_the_mode_and_handles_an_unknown_user(model_cls):
    ratings, movies, data = tiny_collab()
    torch.manual_seed(0)
    model = model_cls(data.n_users, data.n_movies, 4).train()
    recs = recommend(model, data, ratings, movies, user_id=1, n=10)
    assert sorted(recs.movieId) == [30, 40] and list(recs.columns) == ['movieId', 'title', 'predicted rating']
    assert model.training                                         # put back in training mode
    cold = recommend(model, data, ratings, movies, user_id=99, n=2, min_ratings=1)   # a user it never saw
    assert len(cold) == 2
    assert cold.columns[-1] == ('movie bias' if hasattr(model, 'movie_bias') else 'number of ratings')


# --- the data tool names what is missing

def test_fetch_data_names_a_missing_package_instead_of_an_unknown_dataset(monkeypatch, capsys):
    import cli, fetch_data
    monkeypatch.setitem(sys.modules, 'pandas', None)          # `import pandas` now fails, as without the package
    for name in ['exp.nb_08', 'exp.nb_09', 'exp.nb_10']: monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, 'argv', ['fetch_data.py', 'movielens'])
    with pytest.raises(SystemExit) as e: cli.run(fetch_data.main, 'fetch_data')
    err = capsys.readouterr().err
    assert e.value.code == 2 and len(err.strip().splitlines()) == 1
    assert "movielens needs the Python package 'pandas'" in err
