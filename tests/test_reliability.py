"""Issue 11: a fresh clone keeps its reports; runs, the store and sweeps survive bad input and faults.

Each test is one case of the issue: the store as a cache of the results.json files (fresh clone, corrupt store, corrupt
results.json, reproducible rebuild), paths from the catalog, promotion by scale, runs recorded from their first moment,
sweeps (size, duplicates, interruption) and the messages that name the thing to fix."""
import os, re, sys, json, time, shutil, signal, argparse, subprocess
from pathlib import Path
import pytest
from conftest import cli, cli_proc, reports, store, ROOT, FIXTURES

def _without_generated(text:str) -> str:
    return re.sub(r'Generated \S+ from', 'Generated - from', text)

def _rebuilt(tmp_path, monkeypatch, name='rebuilt.sqlite'):
    "A store rebuilt from scratch from the results.json files (as on a fresh clone)."
    monkeypatch.setenv('KDREPRO_STORE', str(tmp_path/name))
    return store()

# --- the store is a cache of the committed results.json files ---------------------------------------------------

def test_fresh_clone_keeps_every_committed_verdict(tmp_path, monkeypatch):
    "A `git clone` has no store: `kdrepro list` and `kdrepro report` (what `make reports` ends with) rebuild it and show every committed verdict."
    clone = tmp_path/'clone'
    subprocess.run(['git', 'clone', '-q', '--local', str(ROOT), str(clone)], check=True)
    rep = clone/'reports'
    assert not (rep/'results.sqlite').exists()
    monkeypatch.setenv('KDREPRO_REPORTS', str(rep)); monkeypatch.setenv('KDREPRO_NBS', str(clone/'nbs'/'papers'))
    monkeypatch.delenv('KDREPRO_STORE')
    committed = {p.parent.name: json.loads(p.read_text()) for p in sorted(rep.glob('*/results.json'))}
    assert committed
    rc, out, err = cli('list')
    assert rc == 0 and 'results store missing: rebuilt' in err, err
    rows = {l.split()[1]: l for l in out.splitlines() if len(l.split()) > 1 and l.split()[0].isdigit()}
    for slug, d in committed.items():
        for c in d['claims']: assert f"{c['name']}: {c['verdict']}" in rows[slug], (slug, c['name'])
    index = (rep/'index.md').read_text()
    rc, out, err = cli('report')
    assert rc == 0, err
    built = (rep/'index.md').read_text()
    n_files = len(list(rep.glob('*/runs/*/results.json')))
    assert f'from {n_files} runs in the results store' in built
    for slug, d in committed.items():                                     # every paper with a committed report is shown with it
        e = next(l for l in built.splitlines() if l.startswith('| ') and f' {slug} ' in l.replace('*', ' ').replace('[', ' ').replace(']', ' '))
        assert 'not run' not in e, e
    if f'from {n_files} runs' not in index:
        pytest.skip(f"the committed reports/index.md is older than the committed runs ({n_files} results.json files): regenerate it with `kdrepro report`")
    assert _without_generated(built) == _without_generated(index)          # the committed report, byte for byte

def test_corrupt_store_is_moved_aside_and_rebuilt(fresh_env):
    rc, out, err = cli('run', 'fx_good', '--scale', 'smoke', '--no-report')
    assert rc == 0, err
    db = Path(os.environ['KDREPRO_STORE'])
    db.write_bytes(db.read_bytes()[:300])                                  # truncated
    for f in ('-wal', '-shm'): Path(f'{db}{f}').unlink(missing_ok=True)
    rc, out, err = cli('list')
    assert rc == 0 and 'unreadable' in err and 'moved aside' in err and 'Traceback' not in err, err
    assert len(err.strip().splitlines()) == 1                              # said in one line
    assert 'kd>ce: inconclusive' in out
    assert list(db.parent.glob('results.sqlite.corrupt-*'))                # never deleted
    db.write_bytes(b'not a database at all' * 100)
    for argv in (['report'], ['report', '--rebuild'], ['run', 'fx_good', '--scale', 'smoke', '--no-report']):
        rc, out, err = cli(*argv)
        assert rc == 0 and 'Traceback' not in err, (argv, err)
        db.write_bytes(b'not a database at all' * 100)

def test_corrupt_results_json_is_skipped_and_the_rest_imported(fresh_env, tmp_path, monkeypatch):
    for _ in range(2):
        rc, out, err = cli('run', 'fx_good', '--scale', 'smoke', '--no-report'); assert rc == 0, err
    runs = sorted((reports()/'fx_good'/'runs').iterdir())
    (runs[0]/'results.json').write_text('{"run_id": ')
    _rebuilt(tmp_path, monkeypatch)
    rc, out, err = cli('report', '--rebuild')
    assert rc == 0 and f"skipped {runs[0]/'results.json'}" in err and 'Traceback' not in err, err
    assert set(store().runs().run_id) == {runs[1].name}

def test_a_store_behind_the_files_catches_up(fresh_env):
    rc, out, err = cli('run', 'fx_good', '--scale', 'smoke', '--no-report'); assert rc == 0, err
    st = store(); rid = st.runs().run_id.iloc[0]
    with st._connect() as con:
        for t in ('metrics', 'claims', 'runs'): con.execute(f'DELETE FROM {t} WHERE run_id=?', (rid,))
    rc, out, err = cli('list')
    assert rc == 0 and 'behind the files' in err and 'kd>ce: inconclusive' in out, err

def test_a_rebuild_gives_the_same_report(fresh_env, tmp_path, monkeypatch):
    "Durations come from results.json in a live store too (they were whole seconds of ISO timestamps: 30 s became 29 s)."
    rc, out, err = cli('run', 'fx_good', 'fx_other', '--scale', 'smoke')
    assert rc == 0, err
    live = (reports()/'index.md').read_text()
    for r in store().runs().itertuples():
        assert r.duration == json.loads((Path(r.run_dir)/'results.json').read_text())['duration']
    _rebuilt(tmp_path, monkeypatch)
    rc, out, err = cli('report')
    assert rc == 0 and 'rebuilt' in err, err
    assert _without_generated((reports()/'index.md').read_text()) == _without_generated(live)

# --- paths come from the catalog ------------------------------------------------------------------------------------

def test_a_notebook_path_cannot_write_outside_reports(fresh_env, tmp_path):
    d = tmp_path/'some'/'dir'; d.mkdir(parents=True)
    for name in ('...ipynb', '..ipynb', 'scratch.ipynb'):
        shutil.copy(FIXTURES/'90_fx_good.ipynb', d/name)
        rc, out, err = cli('run', d/name, '--scale', 'smoke')
        assert rc == 2 and 'not a paper notebook name' in err, err
    assert not (fresh_env/'reports').exists() and not (fresh_env/'README.md').exists()
    from kdrepro.storage import promote, paper_dir
    for slug in ('..', '.', '../x', ''):
        with pytest.raises(ValueError, match='refusing'): paper_dir(slug, fresh_env/'reports')
        with pytest.raises(ValueError, match='refusing'): promote(tmp_path, slug, fresh_env/'reports')

# --- promotion by scale -------------------------------------------------------------------------------------------

def test_a_smoke_run_never_replaces_a_cpu_report(fresh_env):
    rc, out, err = cli('run', 'fx_good', '--scale', 'cpu', '--no-report'); assert rc == 0, err
    cpu = json.loads((reports()/'fx_good'/'results.json').read_text())['run_id']
    rc, out, err = cli('run', 'fx_good', '--scale', 'smoke')
    assert rc == 0 and 'kept in runs/' in out and 'below the cpu scale' in out, out
    assert json.loads((reports()/'fx_good'/'results.json').read_text())['run_id'] == cpu
    smoke = store().runs('fx_good').iloc[0]
    assert smoke.scale == 'smoke' and smoke.status == 'ok'                   # in the store and in runs/
    rc, out, err = cli('list')
    row = next(l for l in out.splitlines() if ' fx_good ' in f' {l} ')
    claims = store().claims(run_id=cpu)
    assert all(f"{c.claim}: {c.verdict}" in row for c in claims.itertuples())   # the cpu report's verdicts, not the smoke run's
    md = (reports()/'index.md').read_text()
    assert re.search(r'\| 90 \|.*\| cpu \|', md)
    rc, out, err = cli('run', 'fx_good', '--scale', 'smoke', '--promote', '--no-report'); assert rc == 0, err
    assert json.loads((reports()/'fx_good'/'results.json').read_text())['scale'] == 'smoke'

# --- validation before any compute --------------------------------------------------------------------------------

@pytest.mark.parametrize('argv,msg', [
    (['run', 'fx_other', '-p', 'methods', 'kd,fitnet'], "fx_other: these parameters break the notebook's constraint: the claim kd>ce compares against the baseline 'ce'"),
    (['run', 'fx_other', '--scale', 'cpu', '-p', 'epochs', '20'], "epochs * seeds at most 25"),
    (['run', 'fx_good', '-p', 'epochs', '４'], "(ASCII digits only)"),
    (['run', 'fx_good', '-p', 'epochs', '٤'], "(ASCII digits only)"),
    (['run', 'fx_good', '-p', 'epochs', '4_0'], "(ASCII digits only)"),
    (['run', 'fx_good', '-p', 'student', 'w' * 131072], "(131072 characters) is too long"),
    (['sweep', 'fx_good', '-g', 'epochs', ','.join(map(str, range(1, 51))), '-g', 'lr', '0.1,0.2'], "100 points (50 x 2), more than 50: add --yes"),
])
def test_bad_values_stop_before_anything(fresh_env, argv, msg):
    rc, out, err = cli(*argv)
    assert rc == 2 and msg in err, err
    assert len(err) < 400                                                  # a long value is quoted by a short prefix
    assert not (fresh_env/'reports').exists()

# --- runs are recorded from their first moment --------------------------------------------------------------------

def _wait(pred, timeout=240):                         # generous: the machine is shared
    t = time.time()
    while time.time() - t < timeout:
        if (v := pred()): return v
        time.sleep(0.05)
    raise AssertionError('timed out')

def _new_run(slug, seen):
    return next((d for d in (reports()/slug/'runs').glob('*') if d.name not in seen), None) if (reports()/slug/'runs').exists() else None

@pytest.mark.parametrize('when', ['before the kernel', 'during the notebook'])
def test_a_killed_run_leaves_an_interrupted_run_that_survives_a_rebuild(fresh_env, tmp_path, monkeypatch, when):
    p = cli_proc('run', 'fx_slow', '--scale', 'smoke', '--no-report')
    d = _wait(lambda: _new_run('fx_slow', set()))
    if when == 'before the kernel': _wait(lambda: (d/'results.json').exists())
    else: _wait(lambda: (d/'started').exists())
    os.killpg(p.pid, signal.SIGKILL); p.communicate(timeout=30)            # the command and its kernel
    assert when != 'before the kernel' or not (d/'started').exists()
    def marked():                                                          # the next command marks it (once the killed kernel is reaped)
        rc, out, err = cli('list'); assert rc == 0, err
        return json.loads((d/'results.json').read_text())['status'] == 'interrupted'
    _wait(marked, timeout=120)
    assert store().runs().set_index('run_id').status[d.name] == 'interrupted'
    _rebuilt(tmp_path, monkeypatch)
    rc, out, err = cli('report')
    assert rc == 0 and store().runs().set_index('run_id').status[d.name] == 'interrupted'

# --- sweeps -------------------------------------------------------------------------------------------------------

def test_a_duplicate_sweep_point_runs_once(fresh_env):
    rc, out, err = cli('sweep', 'fx_good', '-g', 'epochs', '1,1,01', '--scale', 'smoke', '--no-report')
    assert rc == 0 and 'sweep of fx_good: 1 runs' in out, (out, err)
    assert len(list((reports()/'fx_good'/'runs').iterdir())) == 1
    assert not (reports()/'fx_good'/'MANIFEST.json').exists()             # a sweep's points stay in runs/ unless --promote

def test_an_interrupted_sweep_says_which_points_finished(fresh_env):
    p = cli_proc('sweep', 'fx_slow', '-g', 'steps', '1,2,400', '--scale', 'smoke', '--no-report', '--promote')
    _wait(lambda: (reports()/'fx_slow'/'runs').exists() and sum((d/'started').exists() for d in (reports()/'fx_slow'/'runs').iterdir()) == 3)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (out, err)
    assert 'interrupted after 2 of 3 runs' in err, err
    assert err.count('(promoted: now the current report)') == 2 and 'not finished: fx_slow {"scale":"smoke","steps":400}' in err
    assert '2 current reports replaced: fx_slow' in err and 'no report changed' not in err
    assert 'Traceback' not in err, err
    assert sorted(store().runs('fx_slow').status) == ['interrupted', 'ok', 'ok']
    sw = sorted((reports()/'fx_slow'/'sweeps').iterdir())[-1]              # the finished points still get their table
    assert '2 of 2 runs ok' in (sw/'sweep.md').read_text()

# --- messages name the thing to fix -------------------------------------------------------------------------------

def test_a_missing_kernel_is_named_with_the_command_that_registers_it(fresh_env, tmp_path, monkeypatch):
    k = tmp_path/'jupyter'/'kernels'/'kdrepro'; k.mkdir(parents=True)
    (k/'kernel.json').write_text(json.dumps({'argv': ['/nonexistent/venv/bin/python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
                                             'display_name': 'kdrepro (venv)', 'language': 'python'}))
    monkeypatch.setenv('JUPYTER_PATH', str(tmp_path/'jupyter'))
    rc, out, err = cli('run', 'fx_good', '--scale', 'smoke')
    assert rc == 2 and "the Jupyter kernel 'kdrepro'" in err and '/nonexistent/venv/bin/python' in err, err
    assert '-m ipykernel install --sys-prefix --name kdrepro' in err and 'FileNotFoundError' not in err
    assert not (fresh_env/'reports'/'fx_good'/'runs').exists()

def test_did_you_mean_names_each_paper_once(fresh_env, tmp_path, monkeypatch):
    nbs = tmp_path/'nbs'; nbs.mkdir()
    (nbs/'00_kd_baselines.ipynb').write_text('{}')
    monkeypatch.setenv('KDREPRO_NBS', str(nbs))
    rc, out, err = cli('run', 'kd_baseline')
    assert rc == 2 and 'did you mean kd_baselines' in err and err.count('kd_baselines') == 1, err

def test_a_log_path_is_printed_only_when_it_exists(capsys):
    from kdrepro.cli import _finish
    from kdrepro.runner import RunResult
    r = RunResult('fx_good', '', 'failed', '', 'runner error: OSError: disk full')
    assert _finish([r], argparse.Namespace(no_report=True), None) == 1
    err = capsys.readouterr().err
    assert 'disk full' in err and '(log:' not in err
