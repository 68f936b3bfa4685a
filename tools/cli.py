"""The command-line boundary shared by the tools: `run(main)` instead of `fire.Fire(main)`.

`main` is a plain function: positional `*args` and keyword options with defaults; it returns an exit code.
An option whose default is True or False is a boolean (`--check`, `--nocheck`, `--check=False`); any other
option takes a value (`--timeout 5`, `--timeout=5`), typed as fire types it (`5` is an int). `run` checks the
command line against main's signature first, so a typo (`--chek`) runs nothing, and turns every user mistake,
its own or a `UsageError` that main raises, into one line on stderr and exit code 2. `-h`/`--help` prints a
usage built from main's docstring (its `Args:` section explains each option) to stdout, without a pager.
"""
import difflib, inspect, re, sys
from pathlib import Path

import fire
from fire.parser import DefaultParseValue

_flag = re.compile(r'--.+|-[A-Za-z].*')  # what fire takes for a flag; `-5` and `-0.5` are values


class UsageError(Exception):
    "A user mistake: `run` prints it as one line on stderr and exits with code 2."


def one_line(message): return re.sub(r'\s*\n\s*', ' ', str(message).strip())


def is_flag(token): return _flag.fullmatch(token) is not None


def options(main):
    "main's named parameters (those a `--name` can set), name -> inspect.Parameter."
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {n: p for n, p in inspect.signature(main).parameters.items() if p.kind in kinds}


def is_boolean(param): return param.default is True or param.default is False


def _unknown(token, names):
    close = difflib.get_close_matches(token.lstrip('-').split('=')[0].replace('-', '_'), names, n=1)
    hint = f"did you mean --{close[0]}?" if close else "see --help"
    return UsageError(f"unknown option {token.split('=')[0]}; {hint}")


def _option(token, opts):
    "The parameter a `--name[=value]` token sets, and whether it is the `--noname` form."
    key = token.lstrip('-').split('=')[0].replace('-', '_')
    if token.startswith('--') and key in opts: return opts[key], False
    negated = key[3:] if key.startswith('no_') else key[2:] if key.startswith('no') else None
    if token.startswith('--') and '=' not in token and negated in opts and is_boolean(opts[negated]):
        return opts[negated], True
    raise _unknown(token, list(opts))


def parse_command(main, argv):
    "Check `argv` against main's signature; the same command in a form fire cannot misread."
    sig, opts = inspect.signature(main), options(main)
    varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in sig.parameters.values())
    given, positional, i = {}, [], 0
    while i < len(argv):
        token = argv[i]; i += 1
        if token in ('-', '--'): raise UsageError(f"`{token}` is not an argument or option here; see --help")
        if not is_flag(token): positional.append(token); continue
        param, negated = _option(token, opts)
        if param.name in given: raise UsageError(f"option --{param.name} is given twice")
        if '=' in token: value = token.split('=', 1)[1]
        elif is_boolean(param): value = str(not negated)
        elif i == len(argv) or is_flag(argv[i]): raise UsageError(f"option --{param.name} needs a value")
        else: value = argv[i]; i += 1
        if is_boolean(param) and DefaultParseValue(value) not in (True, False):
            raise UsageError(f"option --{param.name} is True or False, not {value!r}")
        given[param.name] = value
    # positional words fill the positional parameters not set by name, then *args: as fire does
    free = [p for p in opts.values() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.name not in given]
    if len(positional) > len(free) and not varargs:
        raise UsageError(f"unexpected argument {positional[len(free)]!r}; see --help")
    missing = [p.name for p in free[len(positional):] if p.default is inspect.Parameter.empty]
    missing += [n for n, p in opts.items() if p.kind is inspect.Parameter.KEYWORD_ONLY
                and p.default is inspect.Parameter.empty and n not in given]
    if missing: raise UsageError(f"missing {missing[0].upper()}; see --help")
    return positional + [f'--{n}={v}' for n, v in given.items()]


def usage(main, prog):
    "The --help text: a usage line from main's signature, then main's docstring."
    words = []
    for p in inspect.signature(main).parameters.values():
        if p.kind is inspect.Parameter.VAR_POSITIONAL: words.append(f'[{p.name.upper()} ...]')
        elif p.kind is inspect.Parameter.VAR_KEYWORD: continue
        elif is_boolean(p): words.append(f'[--{p.name}]')
        elif p.default is inspect.Parameter.empty and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
            words.append(p.name.upper())
        else:
            words.append(f'--{p.name} {p.name.upper()}' if p.default is inspect.Parameter.empty
                         else f'[--{p.name} {p.name.upper()}]')
    doc = inspect.getdoc(main) or ''
    return f"usage: {' '.join([prog, *words])}\n\n{doc}\n  -h, --help: show this message and exit\n"


def undocumented(main):
    "main's parameters that its docstring's `Args:` section does not explain (the tests keep this empty)."
    doc = inspect.getdoc(main) or ''
    args = doc.split('Args:', 1)[1] if 'Args:' in doc else ''
    named = set(re.findall(r'^\s+\*{0,2}(\w+)\s*(?:\([^)]*\))?:', args, re.M))
    params = inspect.signature(main).parameters
    return [n for n in params if n not in named]


def run(main, prog=None):
    "What a tool's `if __name__ == '__main__':` calls: parse sys.argv for main, run it, exit with its code."
    prog = prog or Path(sys.argv[0]).stem
    argv = sys.argv[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(main).parameters.values()):
        raise TypeError(f"{prog}: main takes **kwargs, so no option could be refused as unknown")
    if '-h' in argv or '--help' in argv:
        sys.stdout.write(usage(main, prog))
        sys.exit(0)
    try:
        command = parse_command(main, argv)
        # fire prints what main returns (here the exit code) unless `serialize` turns it into None
        code = fire.Fire(main, command=command, name=prog, serialize=lambda result: None)
    except UsageError as e:
        print(f"{prog}: {one_line(e)}", file=sys.stderr)
        sys.exit(2)
    if not isinstance(code, int): raise TypeError(f"{prog}: main returned {code!r}, not an exit code")
    sys.exit(code)
