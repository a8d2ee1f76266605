"""Issue 16, section 1: `kdrepro run|sweep --executor dask`, each notebook run a task on a Dask cluster.

Real `LocalCluster`s of two worker processes, temporary reports folders and stores (conftest.py): the workers execute the
notebooks in their own temporary folders and return the files; the client alone writes run folders, the store and
promotions. Slow parts: each run starts a kernel (seconds) and each cluster its worker processes."""
import os, re, json, time, signal, subprocess
from pathlib import Path
import pytest
from conftest import cli, cli_proc, reports, store, snapshot, integrity_ok, ROOT, VENV_BIN

distributed = pytest.importorskip('distributed')
PAPERS = ROOT/'nbs'/'papers'
QUICK = ['05_mmanet', '34_sd_further_pretraining']            # two of the quickest paper notebooks at the smoke scale
_OK = re.compile(r'✓ (\w+)\s+ok\s+[\d.]+ s\s+(\S+)')
_RAN = re.compile(r'# ok after [\d.]+ s on dask worker (\S+) \(pid (\d+), ran ([\d.]+)-([\d.]+)\)')

@pytest.fixture(scope='module')
def cluster():
    "A real LocalCluster of two single-threaded worker processes, as an existing cluster reached with --scheduler."
    from distributed import LocalCluster
    c = LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None)
    yield c
    c.close()

def _metrics(run_id):
    return sorted((r.method, r.metric, int(r.seed) if r.seed == r.seed else None, r.value) for r in store().metrics(run_id=run_id).itertuples())

def _ok_runs(out) -> dict:
    "slug -> run folder of every ok run printed by `kdrepro run`."
    return {m.group(1): Path(m.group(2)) for m in _OK.finditer(out)}

def _files(d:Path) -> set: return {p.relative_to(d).as_posix() for p in d.rglob('*') if p.is_file()}

def test_two_notebooks_in_parallel_land_as_with_the_local_executor(fresh_env, cluster):
    nbs = [str(PAPERS/f'{n}.ipynb') for n in QUICK]
    rc, out, err = cli('run', *nbs, '--scale', 'smoke', '--no-report')
    assert rc == 0, err
    local = _ok_runs(out); assert len(local) == 2, out
    local_man = {s: json.loads((reports()/s/'MANIFEST.json').read_text())['files'] for s in local}
    rc, out, err = cli('run', *nbs, '--scale', 'smoke', '--no-report', '--executor', 'dask', '--scheduler', cluster.scheduler_address)
    assert rc == 0, err
    assert 'dask: 2 runs on 2 workers' in out
    remote = _ok_runs(out); assert set(remote) == set(local), out
    runs = store().runs().set_index('run_id')
    ran = {}
    for slug, d in remote.items():
        rid = d.name
        assert d.parent == reports()/slug/'runs' and rid != local[slug].name
        # same metrics for the same seeds, bit for bit, recorded in the client's store
        m = _metrics(rid)
        assert m and m == _metrics(local[slug].name), slug
        assert runs.status[rid] == 'ok' and runs.run_dir[rid] == str(d)
        # the same run folder and the same promoted report as the local executor
        assert _files(d) == _files(local[slug]), slug
        assert json.loads((reports()/slug/'results.json').read_text())['run_id'] == rid
        man = json.loads((reports()/slug/'MANIFEST.json').read_text())
        assert man['run_id'] == rid and man['files'] == local_man[slug]
        assert json.loads((d/'results.json').read_text())['source_hash'] == json.loads((local[slug]/'results.json').read_text())['source_hash']
        log = (d/'run.log').read_text()
        w = _RAN.search(log); assert w, log[-500:]
        ran[slug] = (w.group(1), int(w.group(2)), float(w.group(3)), float(w.group(4)))
    # in parallel: on two different worker processes, their executions overlapping in time
    (a_addr, a_pid, a0, a1), (b_addr, b_pid, b0, b1) = ran.values()
    assert a_addr != b_addr and a_pid != b_pid
    assert max(a0, b0) < min(a1, b1), ran
    # the workers ran in their own temporary folders: nothing of theirs is left in the client's reports folder
    assert not [p for p in reports().rglob('*') if 'kdrepro-' in p.name and p.is_dir()]

def _wait_worker_started(tmp:Path, slug:str, timeout=180) -> int:
    "The pid of the Dask worker process whose notebook `slug` has started (its worker-local folder is named after both)."
    t = time.time()
    while time.time() - t < timeout:
        for d in tmp.glob(f'kdrepro-{slug}-w*'):
            if (d/'run'/'started').exists(): return int(re.match(rf'kdrepro-{slug}-w(\d+)-', d.name).group(1))
        time.sleep(0.3)
    raise AssertionError(f'{slug} never started on a worker')

def test_a_worker_killed_mid_run_fails_its_run_and_leaves_the_report_intact(fresh_env, tmp_path):
    rc, out, err = cli('run', 'fx_slow', '-p', 'steps', '1', '--scale', 'smoke', '--no-report')
    assert rc == 0, err
    snap, good = snapshot('fx_slow'), json.loads((reports()/'fx_slow'/'results.json').read_text())['run_id']
    wtmp = tmp_path/'workers'; wtmp.mkdir()
    p = cli_proc('run', 'fx_slow', 'fx_good', '--scale', 'smoke', '--executor', 'dask', '--jobs', '2', '--no-report',
                 env={'TMPDIR': str(wtmp)})          # the LocalCluster's workers inherit it: their run folders are found there
    try:
        pid = _wait_worker_started(wtmp, 'fx_slow')
        os.kill(pid, signal.SIGKILL)                                  # the worker process running fx_slow dies mid-run
        out, err = p.communicate(timeout=240)
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 1, (out, err)
    assert '1 ok, 1 failed: fx_slow' in out and 'worker died' in out, out
    runs = store().runs()
    slow = runs[runs.paper == 'fx_slow'].set_index('run_id')
    rid = next(r for r in slow.index if r != good)
    assert slow.status[rid] == 'failed' and 'worker died' in slow.error[rid]
    res = json.loads((reports()/'fx_slow'/'runs'/rid/'results.json').read_text())
    assert res['status'] == 'failed' and 'worker died' in res['error']
    # never promoted: the previous report of fx_slow is intact, byte for byte, and no half-written promotion is left
    assert snapshot('fx_slow') == snap
    assert json.loads((reports()/'fx_slow'/'results.json').read_text())['run_id'] == good
    assert not list((reports()/'fx_slow').glob('.staging-*')) and not (reports()/'fx_slow'/'.promote').exists()
    # the other run finished and was promoted
    fg = runs[runs.paper == 'fx_good']
    assert fg.status.tolist() == ['ok']
    assert json.loads((reports()/'fx_good'/'MANIFEST.json').read_text())['run_id'] == fg.run_id.iloc[0]
    assert integrity_ok(os.environ['KDREPRO_STORE'])

def test_bad_parameters_are_refused_before_anything_is_submitted(fresh_env, monkeypatch, cluster):
    contacted = []
    def no(*a, **k): contacted.append(a); raise AssertionError('a Dask cluster was contacted')
    monkeypatch.setattr(distributed, 'Client', no); monkeypatch.setattr(distributed, 'LocalCluster', no)
    for argv in (['run', 'fx_good', '-p', 'epochs', '0', '--executor', 'dask', '--jobs', '2'],
                 ['run', 'fx_good', 'fx_slow', '-p', 'temperature', '3', '--executor', 'dask', '--scheduler', cluster.scheduler_address],
                 ['sweep', 'fx_good', '-g', 'epochs', '1,0', '--executor', 'dask', '--scheduler', cluster.scheduler_address]):
        rc, out, err = cli(*argv, '--scale', 'smoke', '--no-report')
        assert rc == 2, (argv, err)
        assert ("parameter 'epochs'" in err and "'0' is out of range" in err) or "fx_slow: unknown parameter 'temperature'" in err, err
    assert contacted == []                                             # no Client, no LocalCluster: nothing submitted
    assert not reports().exists()                                      # and nothing written

def test_gpu_runs_ask_for_a_gpu_worker(fresh_env, cluster):
    # a cluster without a GPU worker: refused before anything is submitted or written
    rc, out, err = cli('run', 'fx_good', '--scale', 'gpu', '--no-report', '--executor', 'dask', '--scheduler', cluster.scheduler_address)
    assert rc == 2 and 'GPU=1' in err and 'no worker' in err, err
    assert not (reports()/'fx_good'/'runs').exists()
    # a mixed cluster: one more worker with the resource GPU=1; the gpu-scale run is placed there, a cpu run is not restricted
    w = subprocess.Popen([str(VENV_BIN/'dask'), 'worker', cluster.scheduler_address, '--nthreads', '1', '--resources', 'GPU=1',
                          '--name', 'gpu0', '--no-dashboard'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        from distributed import Client
        with Client(cluster.scheduler_address) as c:
            c.wait_for_workers(3, timeout=120)
            gpu_addr = next(a for a, i in c.scheduler_info()['workers'].items() if (i.get('resources') or {}).get('GPU'))
        rc, out, err = cli('run', 'fx_good', '--scale', 'gpu', '--no-report', '--executor', 'dask', '--scheduler', cluster.scheduler_address)
        assert rc == 0, err
        d = _ok_runs(out)['fx_good']
        assert _RAN.search((d/'run.log').read_text()).group(1) == gpu_addr
        assert json.loads((d/'results.json').read_text())['scale'] == 'gpu'
    finally:
        os.killpg(w.pid, signal.SIGTERM); w.wait(timeout=60)

def test_sweep_on_dask_keeps_its_points_in_runs(fresh_env, cluster):
    rc, out, err = cli('sweep', 'fx_good', '-g', 'epochs', '1,4', '--scale', 'smoke', '--no-report', '--executor', 'dask',
                       '--scheduler', cluster.scheduler_address)
    assert rc == 0, err
    runs = store().runs()
    assert sorted(runs.status) == ['ok', 'ok'] and not (reports()/'fx_good'/'MANIFEST.json').exists()   # a sweep's points are not promoted
    table = (sorted((reports()/'fx_good'/'sweeps').iterdir())[-1]/'sweep.md').read_text()
    acc = {int(l.split('|')[1]): float(l.split('|')[4].split('±')[0]) for l in table.splitlines() if re.match(r'\| [14] \| kd \| acc', l)}
    assert set(acc) == {1, 4} and acc[4] > acc[1]

def test_sigterm_to_the_client_records_its_runs_as_interrupted(fresh_env, tmp_path):
    rc, out, err = cli('run', 'fx_slow', '-p', 'steps', '1', '--scale', 'smoke', '--no-report')
    assert rc == 0, err
    snap = snapshot('fx_slow')
    wtmp = tmp_path/'workers'; wtmp.mkdir()
    p = cli_proc('run', 'fx_slow', '--scale', 'smoke', '--executor', 'dask', '--jobs', '1', '--no-report', env={'TMPDIR': str(wtmp)})
    try:
        _wait_worker_started(wtmp, 'fx_slow')
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, (out, err)
    runs = store().runs()
    assert sorted(runs.status) == ['interrupted', 'ok']
    rid = runs[runs.status == 'interrupted'].run_id.iloc[0]
    assert json.loads((reports()/'fx_slow'/'runs'/rid/'results.json').read_text())['status'] == 'interrupted'
    assert snapshot('fx_slow') == snap

def _kernels_of(tmp:Path) -> list:
    "Pids of live processes whose environment names a run folder under `tmp` (the notebook kernels the workers started)."
    pids = []
    for d in Path('/proc').iterdir():
        if not d.name.isdigit(): continue
        try: env = (d/'environ').read_bytes()
        except OSError: continue
        if f'KDREPRO_RUN_DIR={tmp}'.encode() in env and (d/'stat').read_text().split(') ')[1][0] != 'Z': pids.append(int(d.name))
    return pids

def test_ctrl_c_stops_the_dask_runs_and_their_kernels(fresh_env, tmp_path):
    """Ctrl-C in a terminal signals the whole process group: the client, the LocalCluster's nannies and workers and the
    notebook kernels. The command ends promptly with 130, no worker starts a queued notebook, every run is recorded as
    interrupted (none promoted), and no kernel is left running."""
    wtmp = tmp_path/'workers'; wtmp.mkdir()
    p = cli_proc('sweep', 'fx_slow', '-g', 'steps', '400,401,402,403', '--scale', 'smoke', '--no-report', '--executor', 'dask',
                 '--jobs', '2', env={'TMPDIR': str(wtmp)})
    try:
        t = time.time()
        while len({d.name.split('-w')[1].split('-')[0] for d in wtmp.glob('kdrepro-fx_slow-w*') if (d/'run'/'started').exists()}) < 2:
            assert time.time() - t < 180 and p.poll() is None, 'two runs never started'
            time.sleep(0.3)
        assert len(_kernels_of(wtmp)) >= 2
        seen = {d.name for d in wtmp.glob('kdrepro-fx_slow-w*')}
        os.killpg(p.pid, signal.SIGINT)
        t = time.time()
        while p.poll() is None:                      # every worker folder made until the command ends (a kernel takes seconds to start)
            assert time.time() - t < 60, 'the command did not end within 60 s of Ctrl-C'
            seen |= {d.name for d in wtmp.glob('kdrepro-fx_slow-w*')}; time.sleep(0.1)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None: os.killpg(p.pid, signal.SIGKILL); p.communicate(timeout=30)
    assert p.returncode == 130, (out, err)
    runs = store().runs()
    assert len(runs) == 4 and set(runs.status) == {'interrupted'}, runs.status.tolist()
    assert len(seen) == 2, sorted(seen)                                      # no worker took a queued point after Ctrl-C
    t = time.time()
    while _kernels_of(wtmp) and time.time() - t < 30: time.sleep(0.5)
    assert _kernels_of(wtmp) == [], 'a notebook kernel outlived the command'
