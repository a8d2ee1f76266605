"""Claim verdicts of the current reports against those of an earlier commit: which verdicts moved, and by how much.

For every paper whose current report (reports/<slug>/results.json) comes from another run than at commit BASE, each
claim's verdict, effect and interval are compared with BASE's. Prints a Markdown summary and table; with --out, writes it.
Use it after a change that should not change results (a memory layout, a refactor) to see how stable the verdicts are,
or after a change that should, to list what it changed.

    .venv/bin/python benchmarks/verdict_changes.py --base REV [--note TEXT] [--out reports/verdict_changes.md]
"""
import argparse, collections, json, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

def at(rev:str, path:str):
    "The JSON content of `path` at commit `rev`, or None where it did not exist."
    p = subprocess.run(['git', '-C', str(ROOT), 'show', f'{rev}:{path}'], capture_output=True, text=True)
    return json.loads(p.stdout) if p.returncode == 0 else None

def _ci(c):
    "Effect and interval; an unbounded end (stored as None: one seed, or equal values below `point_seeds`) prints as -inf / +inf."
    if c.get('effect') is None: return 'n/a'
    lo, hi = (f"{c[k]:+.3g}" if c.get(k) is not None else inf for k, inf in (('lo', '-inf'), ('hi', '+inf')))
    return f"{c['effect']:+.3g} [{lo}, {hi}]"

def changes(base:str) -> tuple:
    "(papers re-run since `base`, number of their claims, (paper, claim before, claim now) of every changed verdict)."
    rerun, n, rows = [], 0, []
    for f in sorted((ROOT/'reports').glob('*/results.json')):
        new, old = json.loads(f.read_text()), at(base, f'reports/{f.parent.name}/results.json')
        if old is None or old.get('run_id') == new.get('run_id'): continue
        rerun.append(f.parent.name)
        prev = {c['name']: c for c in old.get('claims') or []}
        for c in new.get('claims') or []:
            n += 1
            p = prev.get(c['name'])
            if p is not None and p['verdict'] != c['verdict']:
                rows.append((f.parent.name, p, c))
    return rerun, n, rows

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--base', required=True, help='the earlier commit (any git revision)')
    ap.add_argument('--note', default='', help='what changed between the two (printed under the title)')
    ap.add_argument('--out', default=None)
    a = ap.parse_args(argv)
    if subprocess.run(['git', '-C', str(ROOT), 'rev-parse', '--verify', '-q', a.base + '^{commit}'], capture_output=True).returncode:
        ap.error(f'--base {a.base!r} is not a commit of this repository')
    rerun, n, rows = changes(a.base)
    moves = collections.Counter((p['verdict'], c['verdict']) for _, p, c in rows)
    L = ["# Verdicts that moved", "",
         f"Written by `benchmarks/verdict_changes.py {' '.join(sys.argv[1:] if argv is None else argv)}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.", ""]
    if a.note: L += [a.note, ""]
    L += [f"{len(rerun)} papers have a current report from another run than at {a.base}; of their {n} claims, **{len(rows)} changed "
          f"verdict** ({', '.join(f'{k[0]} -> {k[1]}: {v}' for k, v in sorted(moves.items())) or 'none'}).", ""]
    if rows:
        L += ["| paper | claim | before: verdict, effect [95 % CI] | now |", "|---|---|---|---|"]
        L += [f"| {paper} | {c['name']} | {p['verdict']}: {_ci(p)} | {c['verdict']}: {_ci(c)} |" for paper, p, c in rows]
        L.append("")
    L += [f"Re-run: {', '.join(rerun) or 'none'}."]
    text = '\n'.join(L) + '\n'
    print(text)
    if a.out: Path(a.out).write_text(text); print(f"written: {a.out}")
    return 0

if __name__ == '__main__': sys.exit(main())
