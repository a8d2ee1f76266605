"""Where a cold suite's time goes: per notebook, the cells before the parameters (the method and its tests, which every
run executes), the cached computations the run made (trainings, teacher outputs, data), and of those an estimate of
the share spent on the tuning grid beyond the chosen configuration; then the two-worker makespan with and without them.

    .venv/bin/python benchmarks/cold_breakdown.py --runs SCRATCH/local [SCRATCH2/reports ...] --since 2026-12-06T05:24 [--out F]

Each `--runs` folder holds `<slug>/runs/<run-id>/` folders of `kdrepro run` (a scratch reports folder of
`benchmarks/suite.py --run`, or a clone's reports/); for every notebook the latest ok cpu-scale run that started at or
after `--since` is read (a run on an empty cache, so that its cost line counts everything it needed as computed in the
run). Measured: the wall time (results.json), the cell times (the executed notebook's papermill metadata), the seconds
of the computations made in the run (its cost line). Estimated: the tuning share, from the run's protocol: every trained
method (one compute entry) runs once per seed; a method tuned on a grid of b configurations runs b - 1 more times (the
chosen one is reused as the seed-0 run), and every run of a notebook is taken to cost the same (teachers and data
computations are spread over all runs, which understates the tuning share where a teacher is expensive and overstates it
where the tuned runs are the cheap ones).
"""
import argparse, glob, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import lpt, cache_use, warm_run                      # noqa: E402  (the suite benchmark's scheduler and cost-line parser)

def latest_runs(folders:list, since:str) -> dict:
    "slug -> run folder: the latest ok cpu-scale run started at or after `since`, over all `folders`, skipping warm re-runs."
    best = {}
    for f in folders:
        for rj in glob.glob(str(Path(f)/'*'/'runs'/'*'/'results.json')):
            try: d = json.loads(Path(rj).read_text())
            except (OSError, ValueError): continue
            if d.get('status') != 'ok' or d.get('scale') != 'cpu' or (d.get('started') or '') < since: continue
            if warm_run(d): continue                     # a warm re-run (everything read from the cache): not a cold cost
            slug = d.get('paper') or Path(rj).parts[-4]
            if slug not in best or d['started'] > best[slug][0]: best[slug] = (d['started'], Path(rj).parent, d)
    return {s: (p, d) for s, (_, p, d) in best.items()}

def cell_split(run:Path) -> tuple:
    "(seconds in the code cells before the parameters cell, seconds in the rest) from the executed notebook."
    nbs = [p for p in run.glob('*.ipynb')]
    if not nbs: return 0.0, 0.0
    pre = post = 0.0; seen = False
    for c in json.loads(nbs[0].read_text())['cells']:
        if c['cell_type'] != 'code': continue
        tags = c.get('metadata', {}).get('tags', [])
        if 'parameters' in tags or 'injected-parameters' in tags: seen = True
        d = c.get('metadata', {}).get('papermill', {}).get('duration') or 0.0
        if seen: post += d
        else: pre += d
    return pre, post

def tuning_runs(d:dict) -> tuple:
    "(final runs, extra tuning runs) from a run's protocol: trained methods x seeds, and sum of (grid size - 1) over them."
    p = (d.get('notes') or {}).get('protocol') or {}
    trained = set(p.get('compute') or {})
    seeds = len(d.get('seeds') or []) or 1
    extra = sum(max(int(t.get('budget') or 1) - 1, 0) for m, t in (p.get('tuning') or {}).items() if m in trained)
    return len(trained)*seeds, extra

def breakdown(runs:dict) -> list:
    rows = []
    for slug, (path, d) in sorted(runs.items()):
        pre, _ = cell_split(path)
        made, made_s, hit, _ = cache_use((d.get('notes') or {}).get('discussion') or '')
        final, extra = tuning_runs(d)
        tune = made_s*extra/(extra + final) if final + extra else 0.0
        rows.append(dict(slug=slug, wall=float(d['duration']), pre=pre, made=made, made_s=float(made_s), hit=hit,
                         final=final, extra=extra, tune=tune))
    return sorted(rows, key=lambda r: -r['wall'])

def report(rows:list, since:str, folders:list, note:str='') -> str:
    W = [r['wall'] for r in rows]; n = len(rows)
    tot = lambda k: sum(r[k] for r in rows)
    L = [f"# Where a cold suite's time goes\n",
         f"Written by `benchmarks/cold_breakdown.py --runs {' '.join(folders)} --since {since}`: {n} notebooks, each the latest ok "
         f"cpu-scale run started at or after {since}. 'method and tests' is the time of the cells before the parameters cell (the "
         "method's code and its tests, which every run executes); 'computed' is the time of the cached computations made in the run (its "
         "cost line); 'tuning (est.)' is the share of that spent on the tuning grid beyond the chosen configurations, estimated "
         "from the run counts (see the script's docstring). Runs that read entries from the cache (a teacher another notebook "
         "of the same run trained first) have them in neither column." + (f" {note}" if note else '') + "\n",
         "| notebook | wall (s) | method and tests (s) | computed (s) | runs: seeds x methods | runs: extra tuning | tuning (est., s) |",
         "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        L.append(f"| {r['slug']} | {r['wall']:.0f} | {r['pre']:.0f} | {r['made_s']:.0f} ({r['made']}) | {r['final']} | {r['extra']} | {r['tune']:.0f} |")
    L.append(f"| **total** | **{tot('wall')/60:.1f} min** | **{tot('pre')/60:.1f} min** | **{tot('made_s')/60:.1f} min** | "
             f"{tot('final')} | {tot('extra')} | **{tot('tune')/60:.1f} min** |")
    scen = [('as measured', W),
            ('without the method and tests cells', [r['wall'] - r['pre'] for r in rows]),
            ('without the extra tuning runs (est.)', [r['wall'] - r['tune'] for r in rows]),
            ('without both (est.)', [r['wall'] - r['pre'] - r['tune'] for r in rows])]
    L += ["", "Makespan of these walls scheduled longest first (LPT) on 1, 2 and 4 workers:", "",
          "| scenario | sum (min) | 1 worker (min) | 2 workers (min) | 4 workers (min) |", "|---|---:|---:|---:|---:|"]
    for name, w in scen:
        L.append(f"| {name} | {sum(w)/60:.1f} | {lpt(w, 1)/60:.1f} | {lpt(w, 2)/60:.1f} | {lpt(w, 4)/60:.1f} |")
    need = 90*60*2
    L += ["", f"Two workers finish in 90 min only if the walls sum to at most about {need/60:.0f} min (less the scheduling "
          f"loss); measured: {tot('wall')/60:.1f} min, so {max(tot('wall') - need, 0)/60:.1f} min of one thread would have to go."]
    return '\n'.join(L) + '\n'

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--runs', nargs='+', required=True, help='folders holding <slug>/runs/<run-id>/')
    ap.add_argument('--since', required=True, help='ISO time: only runs started at or after it')
    ap.add_argument('--out', help='also write the markdown here')
    ap.add_argument('--note', default='', help='a sentence on what the runs were, written under the title')
    a = ap.parse_args(argv)
    for f in a.runs:
        if not Path(f).is_dir(): ap.error(f"--runs: no folder {f}")
    runs = latest_runs(a.runs, a.since)
    if not runs: ap.error(f"no ok cpu-scale run started at or after {a.since} in {a.runs}")
    md = report(breakdown(runs), a.since, a.runs, a.note)
    print(md)
    if a.out: Path(a.out).write_text(md)

if __name__ == '__main__': main()
