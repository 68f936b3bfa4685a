"""Fetch the course's datasets into data/ (each is also fetched on first use by the notebooks).

    python tools/fetch_data.py              # MNIST and MovieLens
    python tools/fetch_data.py mnist        # just one
"""
import sys

import fire

from exp.nb_01 import FetchError, fetch_mnist


def unavailable(name, err):
    "A fetcher that explains why `name` cannot be fetched here (its module failed to import)."
    def _fetch(): raise FetchError(f"{name} needs the Python package {err.name!r} ({err}); run `pip install -r requirements.txt`")
    return _fetch


def fetchers():
    "Name -> fetch function; MovieLens comes from notebook 08's module (which needs pandas)."
    out = {'mnist': fetch_mnist}
    try: from exp.nb_08 import fetch_movielens
    except ImportError as e: out['movielens'] = unavailable('movielens', e)
    else: out['movielens'] = fetch_movielens
    return out


def main(*names):
    available = fetchers()
    unknown = [n for n in names if n not in available]
    if unknown:
        print(f"fetch_data: unknown dataset {unknown[0]!r} (choose from {', '.join(available)})", file=sys.stderr)
        sys.exit(2)
    for name in names or available:
        try: print(f"{name}: {available[name]()}")
        except FetchError as e:
            print(f"fetch_data: {e}", file=sys.stderr)
            sys.exit(2)


if __name__ == '__main__': fire.Fire(main)
