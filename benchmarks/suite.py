"""The whole suite at the cpu scale: wall time per notebook and in total, with the local executor and with Dask, and a
cost model of wall time against the number of workers.

    .venv/bin/python benchmarks/suite.py --run local dask [--jobs 2] [--out reports/suite_benchmark.md]
    .venv/bin/python benchmarks/suite.py                   # the cost model alone, from the recorded runs

`--run E` executes `kdrepro run --all --scale cpu --no-report --executor E --jobs J` in a subprocess, into a scratch
reports folder and store (the repository's reports/ is not touched) with the machine's cache as it is. What the cache
held is measured, not assumed: the runs' own cost lines say how many cached computations ran in the run and how many
were read from the cache, and the machine's load average is sampled every 15 s during the run. Each notebook's metrics
are compared with its committed report: a deterministic suite gives the same numbers under both executors.

    .venv/bin/python benchmarks/suite.py --collect SCRATCH [SCRATCH ...] [--out F]   # runs already in SCRATCH/<executor>/
    .venv/bin/python benchmarks/suite.py --collect SCRATCH --rerun STORE SINCE [--rerun STORE2 SINCE2]   # and notebooks re-run since, cold

`--collect` rebuilds the tables from the scratch folders of earlier `--run`s, one column pair per run, named by its
executor and by what the cache held (cold: nothing read from the cache; warm: nothing computed) (their stores, `suite_run.json` and
`load.json` where present; without them the wall time is the span of the store's runs and the load is unknown). A `--run`
records how many entries the cache held at its start: a run that started on an empty cache is labelled cold even though
its notebooks read what other notebooks of the same run computed.

The cost model takes, for every notebook, the cold cost of its current report (the run's wall time plus the first
computation time of every cached result it read, as its cost line records) and schedules them longest first on N workers (LPT: the
greedy order within 4/3 of the optimum), for N = 1, 2, 4, 8, 16; the projection to the 56 notebooks of the full
catalog scales the total by 56 / the number of notebooks measured.
"""
import argparse, glob, json, os, re, sqlite3, statistics, subprocess, sys, tempfile, threading, time, heapq, datetime as dt
from pathlib import Path
from kdrepro.runner import cold_seconds, read_notebook, find_notebook, _FIRST as _HIT
from kdrepro.core import cache_dir, resolve_params

ROOT = Path(__file__).resolve().parent.parent

_COST = re.compile(r'Of its (\d+) cached computations \([^)]*\), (\d+) ran in this run \((\d+) s\)(?: and (\d+) were read from the cache)?')

def recorded_durations(reports:Path) -> dict:
    """slug -> (cold estimate, recorded wall) in seconds, from each paper's current report (reports/<slug>/results.json):
    the recorded wall time of the run plus the first computation time of everything it read from the cache (the cost
    line of the discussion says both), so a notebook whose report came from a warm cache is costed as if cold."""
    out = {}
    for f in glob.glob(str(reports/'*'/'results.json')):
        try: d = json.loads(Path(f).read_text())
        except (OSError, ValueError): continue
        cold = cold_seconds(d)
        if cold is None or d.get('scale') != 'cpu' or not d.get('duration'): continue
        slug, n, k = d.get('paper') or Path(f).parts[-2], len(d.get('seeds') or []), None
        if n:
            try: k = int(resolve_params(read_notebook(find_notebook(slug)).spec, 'cpu')['seeds'])
            except Exception: k = None                 # a notebook that no longer parses: its report as it is
        if k and n > k:                                # more seeds than `run --all` runs (`--until-decided`): its cost at k seeds
            SCALED[slug] = (n, k); cold, wall = cold*k/n, float(d['duration'])*k/n
        else: wall = float(d['duration'])
        out[slug] = (cold, wall)
    return out

SCALED = {}   # slug -> (seeds of its report, seeds of `kdrepro run --all --scale cpu`), filled by `recorded_durations`

def lpt(times:list, workers:int) -> float:
    "Makespan of the jobs `times` on `workers` machines, longest first to the least loaded."
    loads = [0.0]*workers
    for t in sorted(times, reverse=True): heapq.heappush(loads, heapq.heappop(loads) + t)
    return max(loads)

def cost_model(durs:dict, n_catalog:int=56) -> str:
    cold = [c for c, _ in durs.values()]; warm = [w for _, w in durs.values()]
    if not cold: return "no recorded cpu-scale runs\n"
    scale = n_catalog/len(cold)
    L = [f"Notebooks with a cpu-scale report: {len(cold)}. Sum of their cold costs {sum(cold)/60:.1f} min, of their recorded (warm-cache) "
         f"walls {sum(warm)/60:.1f} min, one thread each; the longest cold notebook {max(cold)/60:.1f} min. Cold costs include teacher and "
         "student trainings as first measured, some of them on a loaded machine." + (
         f" {len(SCALED)} reports ran more seeds than `kdrepro run --all --scale cpu` does (`--until-decided`): "
         + ', '.join(f"{s} {n}" for s, (n, k) in sorted(SCALED.items()))
         + "; their cost and wall are scaled to the default seed count (cost taken as proportional to the seeds, which overstates "
           "notebooks whose data or shared set-up does not grow with them)." if SCALED else ''), "",
         "| workers | cold, these notebooks (min) | cold, projected to 56 (min) | warm cache, these notebooks (min) | warm, projected to 56 (min) |",
         "|---:|---:|---:|---:|---:|"]
    for w in (1, 2, 4, 8, 16):
        L.append(f"| {w} | {lpt(cold, w)/60:.1f} | {max(lpt(cold, w)*scale, max(cold))/60:.1f} | {lpt(warm, w)/60:.1f} | {max(lpt(warm, w)*scale, max(warm))/60:.1f} |")
    L += ["", "Wall time against workers: about max(sum / workers, longest notebook) (LPT scheduling is within 4/3 of the optimum).", "",
          "Slowest notebooks when cold (the candidates for profiling):", "", "| notebook | cold cost (s) | recorded wall (s) |", "|---|---:|---:|"]
    for slug, (c, w) in sorted(durs.items(), key=lambda kv: -kv[1][0])[:8]: L.append(f"| {slug} | {c:.0f} | {w:.0f} |")
    return '\n'.join(L) + '\n'

def rerun_walls(store:Path, since:str) -> dict:
    """Wall seconds of the latest ok run of each notebook in the results store `store` that started at or after `since` (ISO
    time), leaving out warm re-runs (nothing computed, something read from the cache)."""
    con = sqlite3.connect(store)
    rows = con.execute("select paper, duration, started, run_dir from runs where status='ok' and started >= ? order by started", (since,)).fetchall(); con.close()
    return {paper: dur for paper, dur, _, run_dir in rows if dur and not _warm(run_dir)}

def warm_run(d:dict) -> bool:
    "A run (its results.json content) that computed nothing and read from the cache, by its cost line: a warm re-run, not a cold cost."
    made, _, hit, _ = cache_use((d.get('notes') or {}).get('discussion') or '')
    return bool(hit) and not made

def _warm(run_dir) -> bool:
    try: return warm_run(json.loads((Path(run_dir)/'results.json').read_text()))
    except (OSError, ValueError, TypeError): return False

def rerun_walls_all(pairs:list) -> dict:
    "`rerun_walls` over several (store, since) pairs; a later pair wins for a notebook in several."
    return {k: v for st, since in pairs for k, v in rerun_walls(Path(st), since).items()}

def measured_cost_model(r:dict, rerun:dict|None=None, note:str='') -> str:
    """The cost model of a run that started on an empty cache: its notebooks' measured walls (each computed what it needed
    and no other notebook of the run had computed before it, or waited on the build lock for it), scheduled longest first
    on N workers, beside the run's own wall time on its workers. With `rerun` (notebook -> wall of a later run of it, also
    from an empty cache, after a code change), a second column schedules the walls with those notebooks' replaced."""
    t = [x['seconds'] for x in r['per'].values() if x['status'] == 'ok']
    if not t: return "no notebook of the run ended ok\n"
    if rerun: return _with_rerun(r, rerun, note)
    L = [f"From the run **{r['label']}** ({r.get('jobs') or '?'} jobs): {len(t)} notebooks ended ok, their measured walls sum to "
         f"{sum(t)/60:.1f} min of one thread each, the longest {max(t)/60:.1f} min; the run took {r['wall']/60:.1f} min of wall time "
         f"(the longest-first schedule of these walls on {r.get('jobs') or '?'} workers predicts {lpt(t, r.get('jobs') or 1)/60:.1f} min). "
         "A notebook that reads a teacher or data set another notebook of the run computed first is costed without it: with "
         "another number of workers the order, and so which notebook pays for a shared entry, changes a little.", "",
         "| workers | cold cache, longest first (min) |", "|---:|---:|"]
    L += [f"| {w} | {lpt(t, w)/60:.1f} |" for w in (1, 2, 4, 8, 16)]
    return '\n'.join(L) + '\n'

def _with_rerun(r:dict, rerun:dict, note:str='') -> str:
    ok = {s: x['seconds'] for s, x in r['per'].items() if x['status'] == 'ok'}
    new = {**ok, **{s: v for s, v in rerun.items() if s in ok}}
    n = sum(s in ok for s in rerun)
    t, u = list(ok.values()), list(new.values())
    L = [f"From the run **{r['label']}** ({r.get('jobs') or '?'} jobs, {r['wall']/60:.1f} min of wall time): {len(t)} notebooks ended ok, their "
         f"walls sum to {sum(t)/60:.1f} min of one thread. {n} of them were run again later, also from an empty cache (after a change "
         f"of the code they share, or to measure them on a quieter machine); with their new walls the sum is {sum(u)/60:.1f} min. The second "
         "column schedules those walls: a projection from the measured walls of separate runs, not one measured run." + (f" {note}" if note else ''), "",
         "| workers | cold run, longest first (min) | with the re-run notebooks' walls (min) |", "|---:|---:|---:|"]
    L += [f"| {w} | {lpt(t, w)/60:.1f} | {lpt(u, w)/60:.1f} |" for w in (1, 2, 4, 8, 16)]
    L += ["", "| re-run notebook | cold run (s) | re-run (s) | ratio |", "|---|---:|---:|---:|"]
    L += [f"| {s} | {ok[s]:.0f} | {v:.0f} | {ok[s]/v:.2f}x |" for s, v in sorted(rerun.items(), key=lambda kv: -ok.get(kv[0], 0)) if s in ok]
    return '\n'.join(L) + '\n'

def metrics_of(path:Path, base:str|None=None) -> dict:
    "(method, metric, seed) -> value of a results.json; with `base` (a commit), of that file as committed there (`git show`)."
    try:
        if base:
            p = subprocess.run(['git', '-C', str(ROOT), 'show', f'{base}:{Path(path).resolve().relative_to(ROOT).as_posix()}'],
                               capture_output=True, text=True, timeout=30)
            if p.returncode: return {}
            d = json.loads(p.stdout)
        else: d = json.loads(path.read_text())
    except (OSError, ValueError, subprocess.SubprocessError): return {}
    return {(m['method'], m['metric'], m['seed']): m['value'] for m in d.get('metrics') or []}

BASE = None            # --base: compare with the reports of this commit instead of the checkout's

def cache_use(discussion:str) -> tuple:
    "(computed in the run, seconds, read from the cache, their first computation seconds) from a run's cost line; zeros if absent."
    m, h = _COST.search(discussion or ''), _HIT.search(discussion or '')
    if not m: return (0, 0.0, 0, 0.0)
    return (int(m.group(2)), float(m.group(3)), int(m.group(4) or 0), float(h.group(1)) if h else 0.0)

def collect(executor:str, scratch:Path, wall:float|None=None, rc=None, load:list|None=None) -> dict:
    "One executor's figures from its scratch folder: per notebook status, seconds, metrics equal to the committed report, cache use."
    rep = scratch/executor
    meta = {}
    if (rep/'suite_run.json').exists(): meta = json.loads((rep/'suite_run.json').read_text())
    if load is None and (rep/'load.json').exists(): load = json.loads((rep/'load.json').read_text())
    con = sqlite3.connect(rep/'results.sqlite')
    rows = con.execute("select paper, status, duration, run_dir, started, ended from runs").fetchall(); con.close()
    per, t = {}, []
    for paper, status, dur, run_dir, started, ended in rows:
        m_new = metrics_of(Path(run_dir)/'results.json'); m_old = metrics_of(ROOT/'reports'/paper/'results.json', BASE)
        shared = [k for k in m_new if k in m_old]
        off = [k for k in shared if abs(m_new[k] - m_old[k]) > 1e-6*max(1, abs(m_old[k]))]
        same, differ = len(shared) - len(off), sorted({k[1] for k in off})
        try: disc = (json.loads((Path(run_dir)/'results.json').read_text()).get('notes') or {}).get('discussion') or ''
        except (OSError, ValueError): disc = ''
        per[paper] = dict(status=status, seconds=dur or 0.0, metrics=len(m_new), same=same, committed=len(m_old), differ=differ,
                          cache=cache_use(disc))
        t += [dt.datetime.fromisoformat(x).timestamp() for x in (started, ended) if x]
    if wall is None: wall = meta.get('wall') or ((max(t) - min(t)) if t else 0.0)
    if rc is None: rc = meta.get('rc', 'n/a')
    c = [x['cache'] for x in per.values()]
    state = ('cold cache' if not sum(v[2] for v in c) or meta.get('cache_entries_at_start') == 0 else 'warm cache' if not sum(v[0] for v in c)
             else 'partly warm cache') if c else 'no runs'
    return dict(executor=executor, label=f"{executor}, {state}", empty_cache=meta.get('cache_entries_at_start') == 0, jobs=meta.get('jobs'), wall=wall, rc=rc, per=per, load=load or [],
                started=meta.get('started') or (time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(min(t))) if t else '?'))

def run_suite(executor:str, jobs:int, scratch:Path) -> dict:
    rep = scratch/executor; rep.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, KDREPRO_REPORTS=str(rep), KDREPRO_STORE=str(rep/'results.sqlite'), HF_HUB_OFFLINE='1',
               KDREPRO_SCHEDULE_FROM=str(ROOT/'reports'))      # longest first, by the repository's recorded wall times
    cmd = [str(ROOT/'.venv'/'bin'/'kdrepro'), 'run', '--all', '--scale', 'cpu', '--no-report', '--executor', executor, '--jobs', str(jobs)]
    print('$', ' '.join(cmd), f'(KDREPRO_REPORTS={rep})', flush=True)
    load, stop = [], threading.Event()
    def sample():                                    # the 1-minute load average every 15 s: was the machine shared?
        while not stop.wait(15): load.append(os.getloadavg()[0])
    th = threading.Thread(target=sample, daemon=True); th.start()
    cache = cache_dir()                               # the folder the run's notebooks will use ($KDREPRO_CACHE or the default)
    entries0 = sum(1 for _ in cache.rglob('*.json'))     # the cache's entries (sidecars) at the start
    started, t0 = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()), time.time()
    p = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.time() - t0
    stop.set(); th.join()
    (rep/'run.out').write_text(p.stdout)
    (rep/'load.json').write_text(json.dumps(load))
    (rep/'suite_run.json').write_text(json.dumps(dict(executor=executor, jobs=jobs, wall=wall, rc=p.returncode, started=started,
                                                      cache=str(cache), cache_entries_at_start=entries0)))
    return collect(executor, scratch, wall, p.returncode, load)

def run_summary(r:dict) -> str:
    "What the machine and the cache were like during one executor's run, measured."
    ld = r['load']
    load = (f"load average (1 min, sampled during the run) {min(ld):.1f} to {max(ld):.1f}, median {statistics.median(ld):.1f}, on "
            f"{os.cpu_count()} cores" if ld else "load average not sampled")
    c = [x['cache'] for x in r['per'].values()]
    ran, ran_s, hit, hit_s = (sum(v[i] for v in c) for i in range(4))
    return (f"- **{r['label']}** (started {r['started']}, {r.get('jobs') or '?'} jobs): {load}. Cached computations (trained models, "
            f"teacher outputs, data): {ran} computed in the run ({ran_s/60:.1f} min of notebook time), {hit} read from the cache "
            f"(their first computation took {hit_s/60:.1f} min): "
            + ("the cache was empty at the start, so every entry read from it was computed earlier in the same run (a teacher "
               "or data set that several notebooks share is computed once): the wall time below is that of a cold cache." if r.get('empty_cache')
               else "the wall time below is that of " + ("a cold cache." if hit == 0 else "a warm cache." if ran == 0 else "a partly warm cache.")))

def suite_table(runs:list) -> str:
    slugs = sorted({s for r in runs for s in r['per']})
    L = ["| notebook | " + " | ".join(f"{r['label']} (s) | metrics equal to the committed report" for r in runs) + " |",
         "|---|" + "---:|---|"*len(runs)]
    for s in slugs:
        cells = []
        for r in runs:
            x = r['per'].get(s)
            cells += ['–', '–'] if x is None else [f"{x['seconds']:.0f}" + ('' if x['status'] == 'ok' else f" ({x['status']})"),
                                                    f"{x['same']}/{x['committed']}" + (f" (differ: {', '.join(x.get('differ') or [])})" if x.get('differ') else '')
                                                    + (f" (the run's {x['metrics']} values are all among them: the report has more)"
                                                       if x['same'] == x['metrics'] < x['committed'] else '')]
        L.append(f"| {s} | " + " | ".join(cells) + " |")
    L.append("| **total wall** | " + " | ".join(f"**{r['wall']/60:.1f} min** (exit {r['rc']}) | {sum(x['status']=='ok' for x in r['per'].values())}/{len(r['per'])} ok"
                                                for r in runs) + " |")
    return '\n'.join(L) + '\n'

def _head() -> str:
    "The short commit of the repository's checkout, with '+ changes' when its reports/ differ from it."
    try:
        rev = subprocess.run(['git', '-C', str(ROOT), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(['git', '-C', str(ROOT), 'status', '--porcelain', '--', 'reports'], capture_output=True, text=True, timeout=10).stdout.strip()
        return (rev or '?') + (' + uncommitted changes' if dirty else '')
    except (OSError, subprocess.SubprocessError): return '?'

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--run', nargs='*', choices=('local', 'dask'), default=[], help='executors to time on the whole suite')
    ap.add_argument('--jobs', type=int, default=2)
    ap.add_argument('--scratch', default=None, help='scratch folder of the runs (default: a temporary one)')
    ap.add_argument('--out', default=None, help='also write the figures to this Markdown file')
    ap.add_argument('--collect', nargs='+', default=[], metavar='SCRATCH', help='also report the runs already in SCRATCH/local and SCRATCH/dask')
    ap.add_argument('--rerun', nargs=2, metavar=('STORE', 'SINCE'), action='append', default=[],
                    help="notebooks re-run from an empty cache after the cold run: their ok runs in the results store STORE that started "
                         "at or after SINCE (ISO time) replace their walls in a second column of the measured cost model (repeatable: "
                         "a later --rerun wins for a notebook in both)")
    ap.add_argument('--base', default=None, help="compare the runs' metrics with the reports of this commit (default: the checkout's reports/)")
    ap.add_argument('--rerun-note', default='', help='what the machine was like during the re-run (printed with its column)')
    a = ap.parse_args(argv)
    if a.jobs < 1: ap.error('--jobs must be >= 1')
    global BASE
    if a.base:
        if subprocess.run(['git', '-C', str(ROOT), 'cat-file', '-e', f'{a.base}^{{commit}}'], capture_output=True).returncode:
            ap.error(f"--base: no commit {a.base!r} in {ROOT}")
        BASE = a.base
    scratch = Path(a.scratch or tempfile.mkdtemp(prefix='kdrepro-suite-'))
    parts = ["# The suite's wall time", "",
             f"Written by `benchmarks/suite.py {' '.join(sys.argv[1:] if argv is None else argv)}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores.", ""]
    runs = [run_suite(e, a.jobs, scratch) for e in a.run]
    seen = {(Path(a.scratch).resolve()/e) for e in a.run} if a.scratch else set()
    for sc in a.collect:                              # a run folder reached twice (a symlink) is reported once
        for e in ('local', 'dask'):
            f = (Path(sc)/e).resolve()
            if (f/'results.sqlite').exists() and f not in seen: seen.add(f); runs.append(collect(e, Path(sc)))
    if runs:
        parts += [f"## `kdrepro run --all --scale cpu`", "",
                  "Each executor ran every notebook into its own scratch reports folder, with the machine's cache as it was:", "",
                  *[run_summary(r) for r in runs], "",
                  f"'metrics equal' counts the run's metric values within 1e-6 of the committed report's (the reports of commit {BASE or _head()}).", "", suite_table(runs)]
    for r in runs:
        if r.get('empty_cache'): parts += ["## Cost model of a cold run, measured", "", measured_cost_model(r, rerun_walls_all(a.rerun) or None, a.rerun_note)]
    parts += ["## Cost model from the committed reports' cold costs", "", cost_model(recorded_durations(ROOT/'reports'))]
    text = '\n'.join(parts)
    print(text)
    if a.out: Path(a.out).write_text(text); print(f"written: {a.out}")
    return 0 if all(r['rc'] in (0, 'n/a') for r in runs) else 1

if __name__ == '__main__': sys.exit(main())
