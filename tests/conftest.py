"""Shared fixtures: every test runs against temporary reports / store / cache folders and the fixture
paper notebooks of tests/fixtures/papers, never against the repository's reports/."""
import os, io, sys, json, shutil, sqlite3, subprocess, contextlib, tempfile
from pathlib import Path
import pytest

HERE = Path(__file__).parent
FIXTURES = HERE/'fixtures'/'papers'
ROOT = HERE.parent
VENV_BIN = Path(sys.executable).parent

_SESSION = Path(tempfile.mkdtemp(prefix='kdrepro-tests-'))
os.environ.update(KDREPRO_REPORTS=str(_SESSION/'reports'), KDREPRO_STORE=str(_SESSION/'reports'/'results.sqlite'),
                  KDREPRO_CACHE=str(_SESSION/'cache'), KDREPRO_NBS=str(FIXTURES), HF_HUB_OFFLINE='1', MPLBACKEND='Agg')
os.environ.pop('IN_TEST', None)

def cli(*argv):
    "Run `kdrepro ARGV` in this process; return (exit code, stdout, stderr)."
    from kdrepro.cli import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err): rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()

def cli_proc(*argv, env=None, **kw):
    "Start `kdrepro ARGV` as its own process (a new session, so it can be killed with its kernel)."
    e = dict(os.environ, **(env or {}))
    return subprocess.Popen([str(VENV_BIN/'kdrepro'), *map(str, argv)], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, **kw)

def reports() -> Path: return Path(os.environ['KDREPRO_REPORTS'])

def store():
    from kdrepro.results import ResultsStore
    return ResultsStore(os.environ['KDREPRO_STORE'])

def integrity_ok(path) -> bool:
    con = sqlite3.connect(path)
    try: return con.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
    finally: con.close()

def snapshot(slug) -> dict:
    "Every file of a paper's current report (not its run folders), name -> bytes."
    d = reports()/slug
    return {p.name: p.read_bytes() for p in d.iterdir() if p.is_file() and not p.name.startswith('.')}

@pytest.fixture
def fresh_env(tmp_path, monkeypatch):
    "An empty reports folder and store for one test."
    monkeypatch.setenv('KDREPRO_REPORTS', str(tmp_path/'reports'))
    monkeypatch.setenv('KDREPRO_STORE', str(tmp_path/'reports'/'results.sqlite'))
    return tmp_path

@pytest.fixture(scope='session')
def baseline():
    """A good report of fx_fail (run with crash=false), then fx_good, fx_fail (failing) and fx_other run
    together with two jobs. Shared by the end-to-end tests (kernels cost seconds each)."""
    rc_a, out_a, err_a = cli('run', 'fx_fail', '-p', 'crash', 'false', '--scale', 'smoke', '--no-report')
    assert rc_a == 0, err_a
    good_fail = json.loads((reports()/'fx_fail'/'results.json').read_text())
    snap = snapshot('fx_fail')
    rc, out, err = cli('run', 'fx_good', 'fx_fail', 'fx_other', '--scale', 'smoke', '--jobs', '2')
    return dict(rc=rc, out=out, err=err, fx_fail_good=good_fail, fx_fail_snapshot=snap)

def pytest_addoption(parser):
    parser.addoption('--slow', action='store_true', help='also run the tests marked slow (make test-slow)')

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: a long test (the gpu-scale probe of every notebook); runs with --slow (make test-slow)')

def pytest_collection_modifyitems(config, items):
    if config.getoption('--slow'): return
    skip = pytest.mark.skip(reason='slow: run with --slow (make test-slow)')
    for it in items:
        if 'slow' in it.keywords: it.add_marker(skip)
