"""End to end: notebooks executed by papermill through `kdrepro run` / `sweep`, in temporary folders.

Kernels cost a few seconds each, so the first runs are shared (the `baseline` fixture in conftest.py)."""
import os, json, time, signal, sqlite3, base64, subprocess
from pathlib import Path
import pytest
from conftest import cli, cli_proc, reports, store, integrity_ok, snapshot

def _metrics(run_id):
    m = store().metrics(run_id=run_id)
    return sorted((r.method, r.metric, int(r.seed), r.value) for r in m.itertuples())

def _run_id(out, slug):
    line = next(l for l in out.splitlines() if l.split()[1:2] == [slug])
    return Path(line.split()[-1]).name

def test_failing_notebook_among_good_ones(baseline):
    assert baseline['rc'] == 1, baseline['err']
    assert '2 ok, 1 failed: fx_fail' in baseline['out']
    runs = store().runs().set_index('run_id')
    latest = {p: g.iloc[0] for p, g in store().runs().groupby('paper', sort=False)}
    assert latest['fx_good'].status == 'ok' and latest['fx_other'].status == 'ok'
    bad = latest['fx_fail']
    assert bad.status == 'failed' and 'RuntimeError: deliberate failure: crash=True' in bad.error
    assert 'Traceback' in bad.error or 'Cell In' in bad.error          # the failing cell's traceback is kept
    assert 'deliberate failure' in baseline['err']                       # and shown
    # the failed run folder holds its log, the executed notebook and a results.json saying failed
    d = Path(bad.run_dir)
    assert json.loads((d/'results.json').read_text())['status'] == 'failed'
    assert (d/'91_fx_fail.ipynb').exists() and 'seed 1' in (d/'run.log').read_text()
    # the previous good report of fx_fail is intact, byte for byte
    assert snapshot('fx_fail') == baseline['fx_fail_snapshot']
    assert json.loads((reports()/'fx_fail'/'results.json').read_text())['run_id'] == baseline['fx_fail_good']['run_id']
    # the good ones were promoted, with README, table, figure and executed notebook
    for slug in ('fx_good', 'fx_other'):
        man = json.loads((reports()/slug/'MANIFEST.json').read_text())
        assert man["run_id"] == latest[slug].run_id
        assert {'README.md', 'table.md', 'accuracy.png', 'results.json'} <= set(man['files'])
        assert (reports()/slug/'accuracy.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    readme = (reports()/'fx_good'/'README.md').read_text()
    assert 'kd>ce' in readme and 'inconclusive' in readme and '![accuracy](accuracy.png)' in readme
    # the comparison report was regenerated and shows the failure next to the last good run
    md = (reports()/'index.md').read_text()
    row = next(l for l in md.splitlines() if l.startswith('| 91 |'))
    assert 'failed (showing the last good run)' in row and '| smoke |' in row
    assert 'deliberate failure' in md

def test_same_parameters_and_seed_give_identical_metrics(baseline):
    first = store().runs('fx_good').iloc[-1].run_id
    rc, out, err = cli('run', 'fx_good', '--scale', 'smoke', '--no-report')
    assert rc == 0, err
    second = _run_id(out, 'fx_good')
    assert second != first
    a, b = _metrics(first), _metrics(second)
    assert len(a) == 8 and a == b                                # 2 methods x 2 metrics x 2 seeds, bit for bit
    pa, pb = (store().runs().set_index('run_id').params_hash[r] for r in (first, second))
    assert pa == pb

def test_show_report_and_rebuild(baseline, tmp_path, monkeypatch):
    rc, out, err = cli('show', 'fx_good')
    assert rc == 0 and '| kd | acc |' in out and 'inconclusive' in out and 'KD beats plain cross-entropy' in out
    rc, out, err = cli('show', 'fx_fail')
    assert rc == 0 and 'note: the latest run' in out and 'failed' in out
    rc, out, err = cli('report')
    assert rc == 0 and (reports()/'index.html').exists()
    before = store().runs()[['run_id', 'paper', 'status']].sort_values('run_id').values.tolist()
    n_metrics = len(store().metrics())
    # a lost store is rebuilt from the results.json files
    monkeypatch.setenv('KDREPRO_STORE', str(tmp_path/'rebuilt.sqlite'))
    rc, out, err = cli('report', '--rebuild')
    assert rc == 0 and 're-imported' in out, err
    after = store().runs()[['run_id', 'paper', 'status']].sort_values('run_id').values.tolist()
    assert after == before and len(store().metrics()) == n_metrics

def test_sweep(baseline):
    rc, out, err = cli('sweep', 'fx_good', '-g', 'epochs', '1,4', '--scale', 'smoke', '--jobs', '2')
    assert rc == 0, err
    sw = sorted((reports()/'fx_good'/'sweeps').iterdir())[-1]
    assert (sw/'sweep.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    table = (sw/'sweep.md').read_text()
    rows = [l for l in table.splitlines() if l.startswith('| 1 | kd | acc') or l.startswith('| 4 | kd | acc')]
    assert len(rows) == 2
    acc = {int(l.split('|')[1]): float(l.split('|')[4].split('±')[0]) for l in rows}
    assert acc[4] > acc[1]                                        # more epochs, higher accuracy in the fixture's model
    md = (reports()/'index.md').read_text()
    assert "epochs: 1 → 4" in md or "epochs: 4 → 1" in md or "epochs: 2 → 1" in md   # what changed between runs
    assert 'sweep' in md

def test_concurrent_runs_write_the_store(baseline):
    procs = [cli_proc('run', 'fx_other', '--scale', 'smoke', '--no-report'),
             cli_proc('run', 'fx_good', '--scale', 'smoke', '-p', 'epochs', '3', '--no-report')]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    ids = [_run_id(o, s) for (o, _), s in zip(outs, ('fx_other', 'fx_good'))]
    runs = store().runs().set_index('run_id')
    for rid in ids:
        assert runs.status[rid] == 'ok'
        assert len(_metrics(rid)) == 8
    assert integrity_ok(os.environ['KDREPRO_STORE'])

def _wait_started(slug, after, timeout=90):
    t = time.time()
    while time.time() - t < timeout:
        ds = [d for d in (reports()/slug/'runs').glob('*') if d.name not in after and (d/'started').exists()]
        if ds: return ds[0]
        time.sleep(0.3)
    raise AssertionError('the slow notebook never started')

def test_interrupted_runs_leave_the_report_intact(baseline):
    rc, out, err = cli('run', 'fx_slow', '-p', 'steps', '1', '--scale', 'smoke', '--no-report')
    assert rc == 0, err
    snap, good_id = snapshot('fx_slow'), _run_id(out, 'fx_slow')
    # 1. SIGTERM: the runner records the run as interrupted and exits 130
    seen = {d.name for d in (reports()/'fx_slow'/'runs').iterdir()}
    p = cli_proc('run', 'fx_slow', '--scale', 'smoke', '--no-report')
    d1 = _wait_started('fx_slow', seen)
    p.send_signal(signal.SIGTERM)
    out1, err1 = p.communicate(timeout=60)
    assert p.returncode == 130, (out1, err1)
    st = store().runs().set_index('run_id')
    assert st.status[d1.name] == 'interrupted'
    assert json.loads((d1/'results.json').read_text())['status'] == 'interrupted'
    assert snapshot('fx_slow') == snap
    # 2. SIGKILL of the runner: nothing can be recorded then; the kernel notices its parent is gone and exits,
    #    the next store opening marks the run interrupted, the store stays consistent, the report is intact
    seen |= {d1.name}
    p = cli_proc('run', 'fx_slow', '--scale', 'smoke', '--no-report')
    d2 = _wait_started('fx_slow', seen)
    os.kill(p.pid, signal.SIGKILL); p.communicate(timeout=30)
    assert snapshot('fx_slow') == snap
    assert integrity_ok(os.environ['KDREPRO_STORE'])
    t = time.time()
    while store().runs().set_index('run_id').status[d2.name] != 'interrupted':
        assert time.time() - t < 30, 'the killed run was never marked interrupted'
        time.sleep(0.5)
    # 3. a re-run completes and becomes the current report
    rc, out, err = cli('run', 'fx_slow', '-p', 'steps', '2', '--scale', 'smoke', '--no-report')
    assert rc == 0, err
    new_id = _run_id(out, 'fx_slow')
    assert json.loads((reports()/'fx_slow'/'results.json').read_text())['run_id'] == new_id != good_id
    assert not list((reports()/'fx_slow').glob('.staging-*')) and not (reports()/'fx_slow'/'.promote').exists()

def test_ctrl_c_stops_every_worker(fresh_env):
    """Ctrl-C in a terminal signals the whole process group, the pool's workers included: each records its run as
    interrupted and exits; no worker takes the next notebook, and the command ends promptly with 130."""
    p = cli_proc('sweep', 'fx_slow', '-g', 'steps', '400,401,402,403', '--scale', 'smoke', '--no-report', '--jobs', '2')
    t = time.time()
    while len([d for d in (reports()/'fx_slow'/'runs').glob('*') if (d/'started').exists()] if (reports()/'fx_slow'/'runs').exists() else []) < 2:
        assert time.time() - t < 120 and p.poll() is None, 'two runs never started'
        time.sleep(0.3)
    os.killpg(p.pid, signal.SIGINT)
    try: out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL); p.communicate(timeout=30)
        raise AssertionError('the command did not end within 60 s of Ctrl-C (a worker went on with the next notebook)')
    assert p.returncode == 130, (out, err)
    runs = sorted((reports()/'fx_slow'/'runs').iterdir())
    assert len(runs) == 2, [d.name for d in runs]                           # the third and fourth points never started
    st = store().runs().set_index('run_id')
    assert all(st.status[d.name] == 'interrupted' for d in runs), st.status.to_dict()

def test_skip_unchanged(fresh_env):
    "`--skip-unchanged` re-runs nothing when notebook, library and parameters are those of the current report, and re-runs when a parameter changes."
    rc, out, err = cli('run', 'fx_good', '--scale', 'smoke', '--no-report', '--skip-unchanged')
    assert rc == 0, err
    first = json.loads((reports()/'fx_good'/'results.json').read_text())
    assert first['source_hash']
    runs = sorted((reports()/'fx_good'/'runs').iterdir())
    rc, out, err = cli('run', 'fx_good', '--scale', 'smoke', '--no-report', '--skip-unchanged')
    assert rc == 0 and 'up to date' in out and first['run_id'] in out
    assert sorted((reports()/'fx_good'/'runs').iterdir()) == runs            # no new run folder
    rc, out, err = cli('run', 'fx_good', '--scale', 'smoke', '--seeds', '3', '--no-report', '--skip-unchanged')
    assert rc == 0 and 'up to date' not in out
    assert len(list((reports()/'fx_good'/'runs').iterdir())) == len(runs) + 1
