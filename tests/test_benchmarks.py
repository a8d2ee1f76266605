"""The benchmark scripts' arithmetic, on made-up run folders: which run stands for a notebook, the tuning estimate, the
makespans (the figures in reports/cold_breakdown.md and reports/suite_benchmark.md come from these functions)."""
import json, sys
from conftest import ROOT
sys.path.insert(0, str(ROOT/'benchmarks'))
import cold_breakdown as cb
import suite

def _cost(made, secs, hit=0):
    return (f"Of its {made + hit} cached computations (trained models, teacher outputs, data), {made} ran in this run ({secs} s)"
            + (f" and {hit} were read from the cache (their first computation took 9 s: a cold run costs about that much more)" if hit else '') + '.')

def _run(root, slug, rid, started, wall, cost, seeds=(0, 1, 2), tuning=None, compute=('a', 'b'), status='ok', cells=((1.5, False), (2.0, True), (7.0, False))):
    d = root/slug/'runs'/rid; d.mkdir(parents=True)
    prot = {'tuning': tuning or {}, 'compute': {m: {'steps': 10, 'note': ''} for m in compute}}
    (d/'results.json').write_text(json.dumps(dict(paper=slug, status=status, scale='cpu', started=started, duration=wall, seeds=list(seeds),
                                                  notes={'protocol': prot, 'discussion': 'Measured things.' + cost})))
    nb = {'cells': [{'cell_type': 'code', 'source': '', 'metadata': {'tags': ['parameters'] if p else [], 'papermill': {'duration': t}}}
                    for t, p in cells] + [{'cell_type': 'markdown', 'source': 'x', 'metadata': {}}]}
    (d/f'{slug}.ipynb').write_text(json.dumps(nb))
    return d

def test_cold_breakdown_picks_the_latest_cold_run_and_estimates_tuning(tmp_path):
    a, b = tmp_path/'a', tmp_path/'b'
    _run(a, 'p', 'r1', '2026-12-06T05:30:00', 300.0, _cost(4, 280))
    _run(b, 'p', 'r2', '2026-12-06T08:50:00', 200.0, _cost(4, 190),                      # the later cold run stands for p
         tuning={'a': {'budget': 3}, 'b': {'budget': 1}, 'a@exit1': {'budget': 3}})  # a derived entry (not trained) is no run
    _run(b, 'p', 'r3', '2026-12-06T09:30:00', 20.0, _cost(0, 0, hit=4))              # a warm re-run: skipped
    _run(b, 'p', 'r4', '2026-12-06T10:00:00', 5.0, _cost(4, 4), status='failed')      # failed: skipped
    _run(a, 'q', 'r5', '2026-12-06T04:00:00', 99.0, _cost(1, 90))                     # before --since: skipped
    runs = cb.latest_runs([a, b], '2026-12-06T05:24')
    assert sorted(runs) == ['p'] and runs['p'][0].name == 'r2'
    (row,) = cb.breakdown(runs)
    # 2 trained methods x 3 seeds = 6 runs; a's grid of 3 adds 2 runs: tuning = 190 s * 2 / 8
    assert (row['final'], row['extra']) == (6, 2) and abs(row['tune'] - 190*2/8) < 1e-9
    assert row['pre'] == 1.5 and row['made_s'] == 190 and row['wall'] == 200   # only the cells before the parameters cell
    md = cb.report([row], '2026-12-06T05:24', [str(a), str(b)])
    assert '| p | 200 | 2 | 190 (4) | 6 | 2 | 48 |' in md

def test_lpt_makespan():
    assert suite.lpt([3, 5, 3, 4, 3], 2) == 10      # longest first to the least loaded: 5|0, 5|4, 5|7, 8|7, 8|10
    assert suite.lpt([6, 1, 1], 4) == 6 and suite.lpt([2, 2, 2], 1) == 6

def test_suite_rerun_is_repeatable_and_a_later_one_wins(tmp_path):
    import sqlite3
    warm = _run(tmp_path/'r', 'y', 'w1', '2026-12-06T09:30:00', 5.0, _cost(0, 0, hit=3))     # a warm re-run: not a cold wall
    st = []
    for i, rows in enumerate([[('x', 100.0, None), ('y', 50.0, None)], [('y', 70.0, None), ('y', 5.0, str(warm))]]):
        f = tmp_path/f's{i}.sqlite'; con = sqlite3.connect(f)
        con.execute('create table runs (paper text, duration real, started text, status text, run_dir text)')
        con.executemany('insert into runs values (?, ?, ?, ?, ?)', [(p, d, f'2026-12-06T09:0{j}:00', 'ok', r) for j, (p, d, r) in enumerate(rows)])
        con.commit(); con.close(); st.append(f)
    assert suite.rerun_walls_all([(st[0], '2026-12-06T08:00'), (st[1], '2026-12-06T08:00')]) == {'x': 100.0, 'y': 70.0}
    assert suite.rerun_walls_all([(st[1], '2026-12-06T08:00'), (st[0], '2026-12-06T08:00')]) == {'x': 100.0, 'y': 50.0}
    assert suite.rerun_walls_all([(st[0], '2026-12-06T10:00')]) == {}             # runs before SINCE do not count
