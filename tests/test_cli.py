"""tools/cli.py: `run(main)`, the command-line boundary of the tools, on a small `main` of its own.

`run` reads sys.argv and exits; each test sets sys.argv, runs it in-process and looks at the exit code,
stdout, stderr and what `main` received (nothing, when the command line is refused).
"""
import os, pty, subprocess, sys, textwrap
from pathlib import Path

import pytest

import cli

CLI = Path(cli.__file__)


class ToolError(cli.UsageError):
    "The tool's own user mistake."


calls = []


def main(*paths, check=False, timeout=600, device=None, save=None):
    """A tool with the shapes of options the course's tools have.

    Args:
      paths: files to work on
      check: only check
      timeout: seconds per item
      device: cpu or cuda
      save: a folder to save to
    """
    calls.append(dict(paths=paths, check=check, timeout=timeout, device=device, save=save))
    if device == 'tpu': raise ToolError("--device tpu: choose cpu or cuda\n(no TPUs here)")
    return 3 if check else 0


@pytest.fixture
def run(monkeypatch, capsys):
    "Run `main` through cli.run with these arguments: (exit code, stdout, stderr, the call main got or None)."
    def go(*argv, fn=main):
        calls.clear()
        monkeypatch.setattr(sys, 'argv', ['tool.py', *argv])
        with pytest.raises(SystemExit) as e: cli.run(fn)
        out, err = capsys.readouterr()
        return e.value.code, out, err, (calls[0] if calls else None)
    return go


def test_values_are_typed_as_fire_types_them(run):
    code, out, err, got = run('a.ipynb', '--timeout', '5', '--device=cuda', 'b.ipynb', '--save', 'build/runs')
    assert (code, out, err) == (0, '', '')
    assert got == dict(paths=('a.ipynb', 'b.ipynb'), check=False, timeout=5, device='cuda', save='build/runs')
    assert type(got['timeout']) is int
    assert run('--timeout', '-5')[3]['timeout'] == -5 and run('--timeout=2.5')[3]['timeout'] == 2.5


def test_exit_code_is_mains_and_fire_prints_no_return_value(run):
    code, out, err, got = run('--check')
    assert (code, out, err) == (3, '', '') and got['check'] is True


@pytest.mark.parametrize('argv,check', [(['--check'], True), (['--check=True'], True), (['--check=False'], False),
                                        (['--nocheck'], False), (['--no-check'], False), ([], False)])
def test_boolean_forms(run, argv, check):
    assert run(*argv)[3]['check'] is check


def test_boolean_does_not_take_the_next_word(run):
    "With fire alone, `--check a.ipynb` would set check='a.ipynb' and lose the path."
    code, _, _, got = run('--check', 'a.ipynb')
    assert got['check'] is True and got['paths'] == ('a.ipynb',)


@pytest.mark.parametrize('argv,message', [
    (['--chek'], 'unknown option --chek; did you mean --check?'),
    (['--devcie', 'cuda'], 'unknown option --devcie; did you mean --device?'),
    (['a.ipynb', '--zzz=1'], 'unknown option --zzz; see --help'),
    (['-x'], 'unknown option -x; see --help'),
    (['--paths', 'a'], 'unknown option --paths; see --help'),
    (['--timeout'], 'option --timeout needs a value'),
    (['--save', '--check'], 'option --save needs a value'),
    (['--timeout', '5', '--timeout', '6'], 'option --timeout is given twice'),
    (['--check=maybe'], "option --check is True or False, not 'maybe'"),
    (['--', '--check'], '`--` is not an argument or option here; see --help'),
    (['a', '-', 'b'], '`-` is not an argument or option here; see --help'),
], ids=['typo', 'typo-with-value', 'unknown', 'short', 'varargs', 'value-at-end', 'value-then-flag', 'twice',
        'bool-value', 'fire-flags', 'fire-chain'])
def test_command_line_mistakes_are_one_line_exit_2_before_main_runs(run, argv, message):
    code, out, err, got = run(*argv)
    assert (code, out, err, got) == (2, '', f'tool: {message}\n', None)


def test_positional_arguments_are_checked(run):
    def one(path, *, device='cpu'):
        """One path.

        Args:
          path: a file
          device: cpu or cuda
        """
        calls.append(path)
        return 0
    assert run('a', fn=one)[:2] == (0, '') and calls == ['a']
    assert run(fn=one) == (2, '', 'tool: missing PATH; see --help\n', None)
    assert run('a', 'b', fn=one) == (2, '', "tool: unexpected argument 'b'; see --help\n", None)


def test_the_tools_usage_error_is_one_line_exit_2(run):
    code, out, err, got = run('--device', 'tpu')
    assert (code, out, err) == (2, '', 'tool: --device tpu: choose cpu or cuda (no TPUs here)\n') and got


def test_other_exceptions_are_not_hidden(run):
    def broken():
        "Broken."
        raise ZeroDivisionError('a bug, not a user mistake')
    with pytest.raises(ZeroDivisionError): run(fn=broken)


@pytest.mark.parametrize('flag', ['--help', '-h'])
def test_help_is_built_from_the_docstring_on_stdout(run, flag):
    code, out, err, got = run('--chek', flag)  # help wins over a mistake in the same command
    assert (code, err, got) == (0, '', None)
    assert out.startswith('usage: tool [PATHS ...] [--check] [--timeout TIMEOUT] [--device DEVICE] [--save SAVE]\n')
    assert 'A tool with the shapes' in out and '  timeout: seconds per item\n' in out and '-h, --help' in out
    assert cli.undocumented(main) == []


def test_undocumented_finds_a_missing_option():
    def f(*paths, check=False, quiet=False):
        """F.

        Args:
          paths: files
          check: only check
        """
    assert cli.undocumented(f) == ['quiet']


def test_main_with_kwargs_is_refused(run):
    def loose(**kw):
        "Anything goes."
    with pytest.raises(TypeError, match='kwargs'): run(fn=loose)


def test_help_uses_no_pager_even_on_a_terminal(tmp_path):
    "On a terminal fire pages its help through $PAGER; ours prints it and returns."
    marker = tmp_path/'paged'
    (tmp_path/'tool.py').write_text(textwrap.dedent(f'''
        import sys; sys.path.insert(0, {str(CLI.parent)!r})
        import cli
        def main(*, check=False):
            """Help text.

            Args:
              check: only check
            """
            return 0
        cli.run(main)
    '''))
    leader, follower = pty.openpty()
    env = {**os.environ, 'PAGER': f'touch {marker}', 'TERM': 'xterm'}
    r = subprocess.run([sys.executable, str(tmp_path/'tool.py'), '--help'], stdin=follower, stdout=follower,
                       stderr=subprocess.PIPE, env=env, timeout=60)
    os.close(follower)
    shown = os.read(leader, 65536).decode()
    os.close(leader)
    assert r.returncode == 0 and 'usage: tool [--check]' in shown and 'Help text.' in shown
    assert not marker.exists()
