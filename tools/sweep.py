"""Run notebooks under many seeds and one thread count; say how often they pass and how their figures spread.

    python tools/sweep.py nbs/06_cuda_cnn.ipynb nbs/09_annealing.ipynb --seeds 20 --threads 2
    python tools/sweep.py nbs/09_annealing.ipynb --seeds 5 --jobs 2 --out build/sweep.json --markdown

Every stochastic check in the course is asserted under one fixed seed on one machine; another GPU, CPU or
thread count is in effect another seed. Each (notebook, seed) pair runs in a fresh kernel with EXP_SEED=seed
(`set_seed` in the notebook reads it; seed 0 is the default run), OMP_NUM_THREADS=MKL_NUM_THREADS=threads
and EXP_RECORD naming a fresh JSON-lines file, to which the notebook's `record(name, value)` appends the
figures it tracks; as under tools/run_notebook.py, EXP_NO_EXPORT=1 keeps exp/ untouched. Prints a line per
finished run, then per notebook the passes, each failing seed with its cell and the last line of its error,
and min / median / max of every figure and of the seconds. --markdown adds a table for BENCHMARKS.md; --out
writes every run, full errors included, as JSON.
Exit code: 0 every run passed, 1 a run failed, 2 a usage mistake.
"""
import io, json, math, multiprocessing, os, platform, re, shlex, tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import cli, run_notebook  # tools/ is on sys.path: this script's folder
from common import shown, spread, write_atomic
_cell = re.compile(r'cell (\d+):')


class SweepError(cli.UsageError):
    "A user mistake (no such notebook, a count below 1): one line, exit code 2, nothing run."


@dataclass
class Run:
    notebook: str         # the notebook's path, as run
    seed: int
    ok: bool
    seconds: float
    cell: int = None      # the failing cell's index; None when the run passed or no cell started
    error: str = ''       # the runner's report: cell, source and traceback
    figures: dict = field(default_factory=dict)  # name -> value, from the notebook's record() calls

    @property
    def name(self): return Path(self.notebook).stem

    @property
    def place(self):
        "Where the run failed: `cell 23`, `before the first cell` (no kernel) or `after the last cell`."
        return f'cell {self.cell}' if self.cell is not None else self.error.split(':', 1)[0]

    @property
    def last_line(self):
        "The error's last non-blank line: usually the exception and its message."
        return next((l.strip() for l in reversed(self.error.splitlines()) if l.strip()), '')


def read_records(path):
    "The figures in a JSON-lines record file as {name: value}; a name recorded twice keeps its last value."
    figures = {}
    for i, line in enumerate(Path(path).read_text(encoding='utf-8').splitlines(), 1):
        if not line.strip(): continue
        try: rec = json.loads(line); figures[str(rec['name'])] = float(rec['value'])
        except (ValueError, TypeError, KeyError):
            raise ValueError(f"EXP_RECORD line {i} is not a {{\"name\": ..., \"value\": number}} object: {line[:80]}")
    return figures


def run_seed(path, seed, device, timeout, threads):
    "Run one notebook under one seed in a fresh kernel; the figures it recorded come back with the result."
    fd, record_file = tempfile.mkstemp(prefix=f'sweep-{Path(path).stem}-seed{seed}-', suffix='.jsonl')
    os.close(fd)
    env = {'EXP_SEED': str(seed), 'EXP_RECORD': record_file,
           'OMP_NUM_THREADS': str(threads), 'MKL_NUM_THREADS': str(threads)}
    try:
        with redirect_stdout(io.StringIO()):  # the runner's `running ...` line: the sweep prints its own per run
            r = run_notebook.run_one(path, device, timeout, env=env)
        error, figures = r.error, {}
        try: figures = read_records(record_file)
        except ValueError as e: error = error or f"after the last cell:\n{e}"
    finally: os.unlink(record_file)
    cell = _cell.match(error)
    return Run(str(path), seed, not error, r.seconds, cell and int(cell[1]), error, figures)


def whole(option, value, least=1):
    "`value` if it is a whole number >= `least`, else a SweepError naming the option."
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise SweepError(f"--{option} {value!r}: give a whole number >= {least}")
    return value


def default_jobs(threads):
    "As many kernels as the cores allow when each runs `threads` threads: oversubscribed torch crawls."
    return max(1, (os.cpu_count() or 1) // threads)


def sweep(paths, seeds=10, threads=1, jobs=None, device=None, timeout=600, progress=None):
    "Run every notebook under seeds 0..seeds-1, `jobs` kernels at a time; the runs in notebook then seed order."
    if not paths: raise SweepError("give one or more notebooks (or folders of numbered notebooks) to sweep")
    whole('seeds', seeds); whole('threads', threads)
    jobs = whole('jobs', default_jobs(threads) if jobs is None else jobs)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise SweepError(f"--timeout {timeout!r}: give seconds > 0")
    try: paths, device = run_notebook.find_notebooks(paths), run_notebook.pick_device(device)
    except run_notebook.RunError as e: raise SweepError(str(e))
    paths = list(dict.fromkeys(paths))  # a notebook named twice runs once per seed
    tasks = [(p, s, device, timeout, threads) for p in paths for s in range(seeds)]
    runs = []
    def done(run):
        runs.append(run)
        if progress: progress(run)
    if jobs == 1:
        for t in tasks: done(run_seed(*t))
    else:
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context('spawn')) as pool:
            try:
                for f in as_completed([pool.submit(run_seed, *t) for t in tasks]): done(f.result())
            except BaseException:  # Ctrl-C: start nothing new
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    order = {p: i for i, p in enumerate(map(str, paths))}
    return sorted(runs, key=lambda r: (order[r.notebook], r.seed))


def stats(values):
    "How many values, how many of them NaN, and (min, median, max) of the rest."
    return {'n': len(values), 'nan': sum(map(math.isnan, values)), 'spread': spread(values)}


def summarize(runs):
    "Per notebook, in order: runs, passes, failures (seed, where, last error line), the spread of figures and seconds."
    out = {}
    for r in runs:
        s = out.setdefault(r.name, {'notebook': r.name, 'runs': 0, 'passed': 0, 'failures': [],
                                    'figures': {}, 'seconds': []})
        s['runs'] += 1
        s['passed'] += r.ok
        if not r.ok: s['failures'].append({'seed': r.seed, 'cell': r.cell, 'at': r.place, 'error': r.last_line})
        for k, v in r.figures.items(): s['figures'].setdefault(k, []).append(v)  # in the order first recorded
        s['seconds'].append(r.seconds)
    for s in out.values():
        s['figures'] = {k: stats(vs) for k, vs in s['figures'].items()}
        s['seconds'] = stats(s['seconds'])
    return list(out.values())


def fmt(x, digits='.5g'): return '-' if x is None else f'{x:{digits}}'


def rows(s):
    "A notebook's table rows: (name, recorded?, stats, formatted min / median / max); the run's seconds last."
    out = [(k, True, fig, [fmt(x) for x in fig['spread'] or (None,) * 3]) for k, fig in s['figures'].items()]
    return out + [('seconds', False, s['seconds'], [fmt(x, '.1f') for x in s['seconds']['spread']])]


def report(summary):
    "The per-notebook summary as text lines."
    lines = []
    for s in summary:
        runs = f"{s['runs']} run{'s' * (s['runs'] != 1)}"
        lines += ['', f"{s['notebook']}: {runs}, {s['passed']} passed, {len(s['failures'])} failed"]
        lines += [f"  seed {f['seed']} failed at {f['at']}: {f['error']}" for f in s['failures']]
        lines.append(f"  {'':<28} {'n':>4} {'min':>10} {'median':>10} {'max':>10}")
        for name, _, fig, (lo, med, hi) in rows(s):
            nan = f"   ({fig['nan']} NaN)" if fig['nan'] else ''
            lines.append(f"  {name:<28} {fig['n']:>4} {lo:>10} {med:>10} {hi:>10}{nan}")
    return lines


def machine(threads, device):
    "Cores, CPU model, Python, torch, device and threads: what a reader needs to compare two sweeps."
    cpuinfo, model = Path('/proc/cpuinfo'), None
    if cpuinfo.is_file():
        model = next((l.split(':', 1)[1].strip() for l in cpuinfo.read_text().splitlines()
                      if l.startswith('model name')), None)
    try: torch = version('torch')
    except PackageNotFoundError: torch = None
    return {'cores': os.cpu_count(), 'cpu': model or platform.processor() or platform.machine(),
            'python': platform.python_version(), 'torch': torch, 'device': device, 'threads': threads}


def markdown_table(summary, info, command, date):
    "A Markdown section for BENCHMARKS.md: date, machine, the command, and a table row per figure."
    threads = f"{info['threads']} thread{'s' * (info['threads'] != 1)}"
    lines = [f"Seed sweep, {date}: {info['cores']} cores ({info['cpu']}), Python {info['python']}, "
             f"torch {info['torch']}, device {info['device']}, {threads} per kernel.",
             '', f"`{command}`", '',
             '| notebook | passed | failed seeds | figure | min | median | max |', '|---|---|---|---|---|---|---|']
    for s in summary:
        failed = ', '.join(f"{f['seed']} ({f['at']})" for f in s['failures']) or '-'
        first = [f"`{s['notebook']}`", f"{s['passed']} / {s['runs']}", failed]
        for i, (name, recorded, _, cells) in enumerate(rows(s)):
            name = f'`{name}`' if recorded else name  # a figure's name as the notebook spells it
            lines.append('| ' + ' | '.join((first if i == 0 else [''] * 3) + [name, *cells]) + ' |')
    return lines


def main(*notebooks, seeds=10, threads=1, jobs=None, device=None, timeout=600, out=None, markdown=False):
    """Run notebooks under seeds 0..seeds-1 and summarize passes and the spread of their recorded figures.

    Args:
        notebooks: notebook files, or folders of numbered notebooks
        seeds: how many seeds: 0, 1, ..., seeds-1, given as EXP_SEED; seed 0 is the default run (default 10)
        threads: torch threads per kernel, given as OMP_NUM_THREADS and MKL_NUM_THREADS (default 1)
        jobs: kernels at a time; default: as many as the cores allow, cores // threads
        device: cpu, cuda or mps, given to the notebooks as EXP_DEVICE (default: $EXP_DEVICE, else cuda when
            torch sees a GPU, else cpu)
        timeout: seconds a cell may run before its run counts as failed (default 600)
        out: write every run (figures, full errors) and the summary to this JSON file
        markdown: also print the summary as Markdown, with date, machine and command, for BENCHMARKS.md
    """
    if out is not None and Path(str(out)).is_dir():
        raise SweepError(f"--out {out}: that is a folder; give a file name")
    show = lambda r: print(f"{r.name} seed {r.seed} {'ok' if r.ok else 'FAILED'} {r.seconds:.1f} s", flush=True)
    runs = sweep(notebooks, seeds=seeds, threads=threads, jobs=jobs, device=device, timeout=timeout, progress=show)
    summary = summarize(runs)
    print('\n'.join(report(summary)))
    # the command that repeats this sweep, every option spelled out
    jobs = default_jobs(threads) if jobs is None else jobs
    device = run_notebook.pick_device(device)
    options = dict(seeds=seeds, threads=threads, jobs=jobs, device=device, timeout=timeout)
    command = shlex.join(['python', 'tools/sweep.py', *dict.fromkeys(shown(r.notebook) for r in runs),
                          *(a for k, v in options.items() for a in (f'--{k}', str(v)))])
    info, date = machine(threads, device), datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    if markdown: print('', *markdown_table(summary, info, command, date), sep='\n')
    if out is not None:
        data = {'command': command, 'date': date, 'machine': info, 'seeds': seeds, 'jobs': jobs,
                'summary': summary, 'runs': [asdict(r) for r in runs]}
        write_atomic(Path(str(out)), json.dumps(data, indent=2) + '\n')
        print(f"\nwrote {out}")
    return 1 if any(not r.ok for r in runs) else 0


if __name__ == '__main__': cli.run(main, prog='sweep')
