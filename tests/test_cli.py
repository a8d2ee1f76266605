"""The command line without running notebooks: usage errors, every kind of bad parameter, list, params, show."""
import os, json
from pathlib import Path
import pytest
import nbformat
from conftest import cli, FIXTURES

BAD = [  # (argv after `run fx_good`, what the message must say)
    (['-p', 'epoch', '3'], "unknown parameter 'epoch'; this notebook accepts: scale, augment, crash, epochs"),
    (['-p', 'epochs', 'three'], "parameter 'epochs': value 'three' does not parse as int; expected int in [1, 50]"),
    (['-p', 'epochs', '2.5'], "value '2.5' does not parse as int"),
    (['-p', 'lr', 'fast'], "parameter 'lr': value 'fast' does not parse as float"),
    (['-p', 'augment', 'maybe'], "parameter 'augment': value 'maybe' does not parse as bool"),
    (['-p', 'epochs', '0'], "parameter 'epochs': value '0' is out of range; expected int in [1, 50]"),
    (['-p', 'temperature', '1e9'], "value '1e9' is out of range; expected float in [0.5, 20.0]"),
    (['-p', 'student', 'w32'], "parameter 'student': value 'w32' is not allowed (w32); expected str from {w8, w16}"),
    (['-p', 'methods', 'kd,dkd'], "value 'kd,dkd' is not allowed (dkd)"),
    (['-p', 'epochs', ''], "parameter 'epochs': value '' is empty"),
    (['-p', 'student', '  '], "is empty"),
    (['-p', 'methods', 'kd,,ce'], "does not parse as list[str]"),
    (['-p', 'epochs', "__import__('os').system('touch /tmp/kdrepro-pwned')"], "does not parse as int"),
    (['-p', 'lr', '(lambda: 0.1)()'], "does not parse as float"),
    (['-p', 'student', "w8'); import os; os.system('touch /tmp/kdrepro-pwned'); ('"], "is not allowed"),
    (['-p', 'epochs', '3', '-p', 'epochs', '4'], "parameter 'epochs' is given twice"),
    (['--scale', 'tiny'], "parameter 'scale': value 'tiny' is not allowed; expected one of smoke, cpu, gpu, auto"),
    (['--seeds', '0'], "parameter 'seeds': value '0' is out of range; expected int in [1, 5]"),
    (['--seeds', 'two'], "parameter 'seeds': value 'two' does not parse as int"),
]

@pytest.mark.parametrize('argv,msg', BAD, ids=[' '.join(a)[:40] for a, _ in BAD])
def test_bad_parameter_stops_before_anything(fresh_env, argv, msg):
    rc, out, err = cli('run', 'fx_good', *argv)
    assert rc == 2, (out, err)
    assert msg in err, err
    assert 'fx_good' in err                                   # names the notebook too
    assert not (fresh_env/'reports').exists()                 # nothing written: no run folder, no store, no report
    assert not Path('/tmp/kdrepro-pwned').exists()

def test_bad_parameter_in_one_of_several_notebooks_runs_none(fresh_env):
    rc, out, err = cli('run', 'fx_good', 'fx_slow', '-p', 'epochs', '3')
    assert rc == 2 and "fx_slow: unknown parameter 'epochs'" in err
    assert not (fresh_env/'reports').exists()

@pytest.mark.parametrize('argv,msg', [
    (['run', 'fx_goood'], "unknown paper 'fx_goood'; did you mean fx_good"),
    (['run', 'mst_distill'], "paper 'mst_distill' (01) has no notebook yet"),
    (['run'], "name at least one paper"),
    (['run', 'fx_good', '--jobs', '0'], "--jobs must be at least 1"),
    (['run', 'fx_good', '--all'], "not both"),
    (['sweep', 'fx_good', '-g', 'epochs', '1,x'], "value 'x' does not parse as int"),
    (['sweep', 'fx_good', '-g', 'epochs', '1,,2'], "empty value"),
    (['sweep', 'fx_good'], "a sweep needs at least one -g"),
    (['params', 'nope'], "unknown paper 'nope'"),
    (['show', 'nopaper'], "unknown paper 'nopaper'"),
])
def test_usage_errors(fresh_env, argv, msg):
    rc, out, err = cli(*argv)
    assert rc == 2 and msg in err, err
    assert not (fresh_env/'reports').exists()

def test_argparse_errors_exit_2(fresh_env, capsys):
    assert cli('frobnicate')[0] == 2
    assert cli('run', 'fx_good', '-p', 'epochs')[0] == 2      # -p needs NAME VALUE
    assert cli('--help')[0] == 0

def test_notebook_breaking_the_contract(fresh_env, monkeypatch, tmp_path):
    nbs = tmp_path/'nbs'; nbs.mkdir()
    nb = nbformat.read(FIXTURES/'90_fx_good.ipynb', 4)
    nb.cells[2].source = nb.cells[2].source.replace("'lr': {", "'lr': {'type': 'float', 'default': eval('1')}, 'lr2': {")
    nbformat.write(nb, nbs/'95_broken.ipynb')
    monkeypatch.setenv('KDREPRO_NBS', str(nbs))
    rc, out, err = cli('run', 'broken', '--scale', 'smoke')
    assert rc == 2 and 'breaks the contract' in err and 'not a literal' in err, err

def test_list(fresh_env):
    rc, out, err = cli('list')
    assert rc == 0
    lines = out.splitlines()
    assert any(l.startswith('00  kd_baselines') for l in lines)
    assert any(l.split()[:4] == ['51', 'taid', 'A', 'missing'] for l in lines)
    assert any(l.split()[:4] == ['90', 'fx_good', '–', 'present'] for l in lines)
    assert '4 of 60 notebooks present' in out and 'store: none yet' in out
    assert not (fresh_env/'reports').exists()                 # listing never creates a store
    rc, out, _ = cli('list', '--tier', 'D')
    assert rc == 0 and 'mixture_of_mamba' in out and 'taid' not in out

def test_params(fresh_env):
    rc, out, err = cli('params', 'fx_good')
    assert rc == 0
    row = next(l for l in out.splitlines() if l.startswith('epochs'))
    assert row.split()[:6] == ['epochs', 'int', 'in', '[1,', '50]', '2']      # type, range, smoke/cpu/gpu values
    assert row.split()[6:8] == ['5', '20']
    assert "from {ce, kd, fitnet}" in out and "'auto'" in out and 'learning rate' in out

def test_show_without_report(fresh_env):
    rc, out, err = cli('show', 'fx_good')
    assert rc == 1 and 'no current report yet' in err
