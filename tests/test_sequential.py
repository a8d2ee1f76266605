"""`kdrepro run SLUG --until-decided`: planned looks, each told its look, budget checked before any compute."""
import json
from conftest import cli, reports

def _runs(slug):
    d = reports()/slug/'runs'
    return sorted(p.name for p in d.iterdir()) if d.exists() else []

def test_until_decided_runs_the_planned_looks(fresh_env):
    # at the smoke scale every claim stays inconclusive (code path only), so every planned look runs: seeds 2, 4, 5
    rc, out, err = cli('run', 'fx_good', '--until-decided', '--max-seeds', '5', '--scale', 'smoke', '--no-report')
    assert rc == 0, err
    runs = _runs('fx_good')
    assert len(runs) == 3, out
    res = [json.loads((reports()/'fx_good'/'runs'/r/'results.json').read_text()) for r in runs]
    looks = sorted((d['notes']['sequential']['look'], len(d['seeds'])) for d in res)
    assert looks == [(1, 2), (2, 4), (3, 5)]
    assert all(d['notes']['sequential']['looks'] == 3 and abs(d['notes']['sequential']['alpha'] - 0.05/3) < 1e-12 for d in res)
    assert all('look' in c['procedure'] and 'Bonferroni' in c['procedure'] for d in res for c in d['claims'])
    assert 'look 3 of 3 with 5 seeds' in out

def test_until_decided_rejects_a_bad_budget_before_any_compute(fresh_env):
    rc, out, err = cli('run', 'fx_good', '--until-decided', '--max-seeds', '9', '--scale', 'smoke', '--no-report')
    assert rc == 2 and '--max-seeds must be an integer in [2, 5]' in err, (out, err)
    rc, out, err = cli('run', 'fx_good', 'fx_other', '--until-decided', '--no-report')
    assert rc == 2 and 'one paper at a time' in err, (out, err)
    assert _runs('fx_good') == [] and _runs('fx_other') == []
