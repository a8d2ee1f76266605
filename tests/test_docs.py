"""`python -m kdrepro.docs`: the HTML site from notebooks, paper pages from their latest executed run."""
import json, shutil, subprocess, sys
from pathlib import Path
import nbformat
from conftest import FIXTURES, ROOT

def test_docs_site(tmp_path):
    from kdrepro.docs import build_docs
    nbs = tmp_path/'nbs'; (nbs/'papers').mkdir(parents=True)
    shutil.copy(ROOT/'nbs'/'09_catalog.ipynb', nbs)
    for n in ('90_fx_good', '93_fx_other'): shutil.copy(FIXTURES/f'{n}.ipynb', nbs/'papers')
    # fx_good has a current report whose executed notebook carries fresh outputs; fx_other was never run
    rep = tmp_path/'reports'/'fx_good'; rep.mkdir(parents=True)
    nb = nbformat.read(FIXTURES/'90_fx_good.ipynb', as_version=4)
    nb.cells[-1].outputs = [nbformat.v4.new_output('stream', name='stdout', text='EXECUTED-OUTPUT-7\n')]
    nbformat.write(nb, rep/'90_fx_good.ipynb')
    (rep/'results.json').write_text(json.dumps({'run_id': 'run-xyz', 'scale': 'smoke'}))
    (tmp_path/'reports'/'index.html').write_text('<html>comparison</html>')
    out = build_docs(nbs, tmp_path/'site', tmp_path/'reports', proc=tmp_path/'proc')
    assert 'EXECUTED-OUTPUT-7' in (out/'papers'/'90_fx_good.html').read_text()
    assert 'EXECUTED-OUTPUT-7' not in (out/'papers'/'93_fx_other.html').read_text()
    cat = (out/'09_catalog.html').read_text()
    assert 'fastcore.test import' not in cat            # the #| hide cell is dropped by nbdev's processors
    idx = (out/'index.html').read_text()
    assert 'outputs of run run-xyz (scale smoke)' in idx and 'not run yet' in idx and 'href="reports.html"' in idx
    assert (out/'reports.html').read_text() == '<html>comparison</html>'

def test_docs_command_line_help():
    r = subprocess.run([sys.executable, '-m', 'kdrepro.docs', '--help'], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and '--force' in r.stdout
