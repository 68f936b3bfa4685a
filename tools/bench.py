"""Measure the course's speed claims side by side; print a table and write build/bench.json.

    python tools/bench.py                    # everything (timing the whole course takes several minutes)
    python tools/bench.py --skip_course      # the quick part only (under 3 minutes on 2 CPU cores)
    python tools/bench.py --threads 1        # pin a different number of CPU threads

Every number is the median of several runs after a warm-up run; the table shows min / median / max.
"""
import json, statistics, time
from functools import partial

import torch

import cli, run_notebook   # tools/ is on sys.path: this script's folder
from common import ROOT, spread
from exp.nb_09 import *     # the library, with nb_01's `timings` and `fmt_time` and nb_00's `write_atomic`


class Report:
    "Collects named numbers (the JSON) and table rows (what a person reads)."
    def __init__(self): self.numbers, self.rows = {}, []
    def add(self, key, value, ts=None, unit=''):
        self.numbers[key] = value
        lo, med, hi = spread(ts or []) or (None, None, None)   # a ratio or a count has no rounds to spread
        self.rows.append((key, value, unit, lo, med, hi))
        print(self.fmt_row(self.rows[-1]), flush=True)
    @staticmethod
    def fmt_row(row):
        key, value, unit, lo, med, hi = row
        times = '' if lo is None else f'   min/median/max {fmt_time(lo)} / {fmt_time(med)} / {fmt_time(hi)}'
        return f'{key:<44} {value:>14,.2f} {unit:<10}{times}'


def bench_matmul(rep, device):
    "Notebook 01's five matrix multiplications of 5 x 784 @ 784 x 10, and one large product for GFLOP/s."
    x_valid = get_data()[2]
    torch.manual_seed(0)
    a, b = x_valid[:5], torch.randn(784, 10)
    loops = timings(lambda: matmul_loops(a, b), runs=3)
    rep.add('matmul_seconds_loops', statistics.median(loops), loops, 's')
    for name, f, number in [('elementwise', matmul_elementwise, 20), ('broadcast', matmul_broadcast, 200),
                            ('einsum', matmul_einsum, 2000), ('torch', torch.matmul, 2000)]:
        ts = timings(lambda: f(a, b), runs=7, number=number)
        rep.add(f'matmul_speedup_loops_to_{name}', statistics.median(loops) / statistics.median(ts), ts, 'x')
    for dev in ['cpu'] + (['cuda'] if device.type == 'cuda' else []):
        n = 2048
        x, y = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
        sync = torch.cuda.synchronize if dev == 'cuda' else None
        ts = timings(lambda: x @ y, runs=5, number=10 if dev == 'cuda' else 1, sync=sync)
        rep.add('matmul_torch_gflops' + ('_cuda' if dev == 'cuda' else ''), 2 * n**3 / statistics.median(ts) / 1e9, ts, 'GFLOP/s')


def epoch_time(dl):
    "Seconds to iterate once over `dl`."
    def run():
        for _ in dl: pass
    return run


def bench_loaders(rep, name, train_ds, bs=64):
    "Samples per second of one epoch: item-by-item, PyTorch's DataLoader, and whole-batch indexing."
    tds = torch.utils.data.TensorDataset(train_ds.x, train_ds.y)
    loaders = {'item': DataLoader(train_ds, Sampler(train_ds, bs, shuffle=True)),
               'torch': torch.utils.data.DataLoader(tds, batch_size=bs, shuffle=True),
               'batch': BatchLoader(train_ds, Sampler(train_ds, bs, shuffle=True))}
    for kind, dl in loaders.items():
        ts = timings(epoch_time(dl), runs=3)
        rep.add(f'loader_samples_per_s_{kind}{name}', len(train_ds) / statistics.median(ts), ts, 'samples/s')


def plain_epoch(model, opt, data, sched, n_iter):
    "A hand-written loop doing the Runner's work: train, schedule lr, record, validate, weighted stats."
    model.train()
    tot_loss, tot_acc, count, lrs, losses = 0., 0., 0, [], []
    for i, (xb, yb) in enumerate(data.train_dl):
        for pg in opt.param_groups: pg['lr'] = sched(i / n_iter)
        pred = model(xb); loss = F.cross_entropy(pred, yb)
        bn = len(yb)
        tot_loss, tot_acc, count = tot_loss + loss.detach() * bn, tot_acc + accuracy(pred, yb).detach() * bn, count + bn
        lrs.append(opt.param_groups[-1]['lr']); losses.append(loss.detach())
        loss.backward(); opt.step(); opt.zero_grad()
    model.eval()
    v_loss, v_acc, v_count = 0., 0., 0
    with torch.no_grad():
        for xb, yb in data.valid_dl:
            pred = model(xb); bn = len(yb)
            v_loss, v_acc, v_count = v_loss + F.cross_entropy(pred, yb) * bn, v_acc + accuracy(pred, yb) * bn, v_count + bn
    return [float(o) / count for o in (tot_loss, tot_acc)] + [float(o) / v_count for o in (v_loss, v_acc)]


def bench_runner(rep, runs=5):
    "Epoch time of the Runner with the standard callbacks over a plain loop on the same batches (MNIST MLP)."
    data = mnist_databunch()   # notebook 06's MNIST: flat rows, normalized
    sched = sched_cos(0.5, 0.05)
    model, opt = mlp_and_opt(data, lr=0.5, nh=50)
    learn = Learner(model, opt, F.cross_entropy, data)
    run = Runner(cb_funcs=[partial(AvgStatsCallback, [accuracy]), Recorder, partial(ParamScheduler, 'lr', sched)])
    run.logger = lambda row: None   # printing is not the work being compared
    runner_epoch = lambda: run.fit(1, learn)
    plain = lambda: plain_epoch(model, opt, data, sched, len(data.train_dl))
    r_ts, p_ts = [], []
    runner_epoch(); plain()         # warm-up
    for _ in range(runs):            # interleaved, so a slow moment of the machine hits both
        r_ts += timings(runner_epoch, runs=1, warmup=0)
        p_ts += timings(plain, runs=1, warmup=0)
    rep.add('runner_epoch_seconds', statistics.median(r_ts), r_ts, 's')
    rep.add('plain_loop_epoch_seconds', statistics.median(p_ts), p_ts, 's')
    rep.add('runner_overhead_ratio', statistics.median(r_ts) / statistics.median(p_ts), None, 'x')


def bench_batchnorm(rep, device, rounds=5, steps=10, bs=64, nfs=(8, 16, 32, 64)):
    "nb_06's `cnn_train_step` with our BatchNorm and with nn.BatchNorm2d: one training step of its CNN on one batch."
    data = mnist_databunch(bs)
    xb, yb = data.train_ds.x[:bs], data.train_ds.y[:bs]
    ours, fused = (cnn_train_step(data, nfs, bn, xb, yb, device) for bn in (BatchNorm, nn.BatchNorm2d))
    sync = torch.cuda.synchronize if device.type == 'cuda' else None
    o_ts, f_ts = [], []
    for _ in range(rounds):   # interleaved, as for the runner
        o_ts += timings(ours, runs=steps, warmup=1, sync=sync)
        f_ts += timings(fused, runs=steps, warmup=1, sync=sync)
    rep.add('batchnorm_step_ms_ours', statistics.median(o_ts) * 1e3, o_ts, 'ms')
    rep.add('batchnorm_step_ms_torch', statistics.median(f_ts) * 1e3, f_ts, 'ms')
    rep.add('batchnorm_ours_over_torch', statistics.median(o_ts) / statistics.median(f_ts), None, 'x')


def bench_course(rep, device):
    "Wall time to execute every notebook with 1 and with 2 parallel jobs."
    for jobs, key in [(1, 'course_seconds_serial'), (2, 'course_seconds_jobs2')]:
        start = time.perf_counter()
        results = run_notebook.run_notebooks([ROOT/'nbs'], device=device.type, jobs=jobs)
        secs = time.perf_counter() - start
        if not all(r.ok for r in results): raise SystemExit(f"bench: a notebook failed while timing the course ({key})")   # exit 1
        rep.add(key, secs, None, 's')


def main(threads=2, skip_course=False, out='build/bench.json'):
    """Measure the course's speed claims, print them as a table and write them as one JSON object.

    Args:
      threads: torch CPU threads for every measurement (default 2)
      skip_course: leave out timing the whole course twice, the slowest part
      out: the JSON file to write (default build/bench.json)
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise cli.UsageError(f"--threads {threads!r}: give a whole number >= 1")
    torch.set_num_threads(threads)
    device = def_device
    print(f"threads: {torch.get_num_threads()} (torch.set_num_threads)   device: {device}   torch {torch.__version__}\n")
    rep = Report()
    bench_matmul(rep, device)
    x_train, y_train, _, _ = get_data()
    bench_loaders(rep, '', Dataset(x_train, y_train))
    bench_loaders(rep, '_movielens', collab_databunch(load_ratings(), bs=64).train_ds)
    bench_runner(rep)
    bench_batchnorm(rep, device)
    if not skip_course: bench_course(rep, device)
    rep.numbers.update(threads=threads, device=str(device), torch=torch.__version__)
    (ROOT/out).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(ROOT/out, json.dumps(rep.numbers, indent=2) + '\n')
    print(f"\nwrote {out}")
    return 0


if __name__ == '__main__': cli.run(main, 'bench')
