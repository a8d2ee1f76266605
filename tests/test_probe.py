"""The gpu-scale probe (`kdrepro probe`): a notebook's gpu configuration with its counts shrunk, run on this machine with
global hooks that record each stage's parameters, memory and step time. The fast tests use a small notebook written
here; the slow one probes every paper notebook with a gpu scale (`make test-slow`)."""
import os, json
from pathlib import Path
import nbformat, pytest
from conftest import cli, reports, ROOT

def _train_nb(d:Path, crash_shape=False) -> Path:
    "A paper notebook whose gpu configuration trains a Linear(10, width) -> Linear(width, 2) for `steps` Adam steps."
    spec = {'seeds': {'type': 'int', 'range': [1, 5], 'smoke': 1, 'cpu': 2, 'gpu': 5, 'help': 'seeds'},
            'steps': {'type': 'int', 'range': [1, 10000], 'smoke': 3, 'cpu': 50, 'gpu': 5000, 'help': 'training steps'},
            'width': {'type': 'int', 'range': [2, 4096], 'smoke': 4, 'cpu': 16, 'gpu': 64, 'help': 'hidden width'},
            'batch_size': {'type': 'int', 'range': [1, 4096], 'smoke': 8, 'cpu': 16, 'gpu': 32, 'help': 'batch size'}}
    body = f"""import torch
from kdrepro.core import params_from
from kdrepro.results import Run
p = params_from(globals(), PARAM_SPEC)
run = Run('fx_train', p)
for s in range(p['seeds']):
    torch.manual_seed(s)
    net = torch.nn.Sequential(torch.nn.Linear(10, p['width']), torch.nn.ReLU(), torch.nn.Linear({'p["width"] + 1' if crash_shape else 'p["width"]'}, 2))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(p['steps']):
        loss = net(torch.randn(p['batch_size'], 10)).pow(2).mean(); opt.zero_grad(); loss.backward(); opt.step()
    run.log('plain', 'loss', float(loss), s)
run.finish()"""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('scale = "auto"\n' + '\n'.join(f'{k} = None' for k in spec), metadata={'tags': ['parameters']}),
                nbformat.v4.new_code_cell(f'PARAM_SPEC = {spec!r}'), nbformat.v4.new_code_cell(body)]
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'python3', 'language': 'python'}
    d.mkdir(parents=True, exist_ok=True)
    p = d/'94_fx_train.ipynb'; nbformat.write(nb, p)
    return p

def test_probe_records_the_gpu_configuration(tmp_path, monkeypatch):
    _train_nb(tmp_path/'nbs')
    monkeypatch.setenv('KDREPRO_NBS', str(tmp_path/'nbs'))
    before = sorted(p.name for p in reports().iterdir()) if reports().exists() else []
    rc, out, err = cli('probe', 'fx_train', '--out', tmp_path/'probe.md')
    assert rc == 0, out + err
    row, = json.loads((tmp_path/'probe.json').read_text())
    assert row['status'] == 'ok'
    assert row['params'] == {'scale': 'gpu', 'seeds': 1, 'steps': 3}     # counts shrunk to smoke; width and batch stay gpu
    assert row['stages'] == 1 and row['steps'] == 3                       # one optimiser, three steps
    assert row['trainable'] == 10*64 + 64 + 64*2 + 2                      # the gpu width (64), not the smoke one (4)
    w = 4*(10*64 + 64 + 64*2 + 2)
    assert row['est_bytes'] >= 4*w + 4*32*(10 + 64)                       # weights, grads, two Adam moments, batch-32 activations
    assert '| fx_train | ok | 1 | 0.00 |' in (tmp_path/'probe.md').read_text()
    after = sorted(p.name for p in reports().iterdir()) if reports().exists() else []
    assert after == before                                                # the real reports folder is untouched

def test_probe_reports_a_shape_error(tmp_path, monkeypatch):
    _train_nb(tmp_path/'nbs', crash_shape=True)
    monkeypatch.setenv('KDREPRO_NBS', str(tmp_path/'nbs'))
    rc, out, err = cli('probe', 'fx_train')
    assert rc == 1
    assert '**failed**' in out and 'RuntimeError' in out and 'shapes cannot be multiplied' in out

def test_probe_bad_input_is_refused_before_any_run(tmp_path, monkeypatch):
    rc, out, err = cli('probe', 'no_such_paper')
    assert rc == 2 and "unknown paper 'no_such_paper'" in err
    rc, out, err = cli('probe')
    assert rc == 2 and 'name at least one paper' in err
    rc, out, err = cli('probe', 'fx_good', '--all')
    assert rc == 2 and 'not both' in err
    rc, out, err = cli('probe', 'fx_good', '--timeout', '0')
    assert rc == 2 and '--timeout must be positive' in err

def test_probe_table_from_rows(tmp_path):
    "`kdrepro probe --rows DIR` writes the table of rows a probe run left (make test-slow), in catalog order; bad rows are named."
    rows = tmp_path/'rows'; rows.mkdir()
    base = dict(stages=2, trainable=1000, est_bytes=2**20, step_seconds=0.5, rss=2**30, seconds=12.0, shrunk=['seeds'], error=None, top_stage='s')
    (rows/'fx_other.json').write_text(json.dumps(dict(base, slug='fx_other', status='ok')))
    (rows/'fx_good.json').write_text(json.dumps(dict(base, slug='fx_good', status='failed', error='ValueError: shape')))
    rc, out, err = cli('probe', '--rows', rows, '--out', tmp_path/'probe.md')
    assert rc == 1, err                                                   # a failed row: exit 1
    md = (tmp_path/'probe.md').read_text()
    assert 'kdrepro probe --rows (rows of 2 notebooks' in md and '1 of 2 notebooks ran' in md, md
    assert md.index('| fx_good |') < md.index('| fx_other |')             # catalog (file) order, not file-name order of the rows
    assert [r['slug'] for r in json.loads((tmp_path/'probe.json').read_text())] == ['fx_good', 'fx_other']
    (rows/'fx_good.json').write_text('{"slug": "fx_go')                   # a corrupt row is refused, naming the file
    rc, out, err = cli('probe', '--rows', rows)
    assert rc == 2 and 'fx_good.json is not a probe row' in err, err
    rc, out, err = cli('probe', '--rows', tmp_path/'nowhere')
    assert rc == 2 and 'no probe rows' in err, err
    rc, out, err = cli('probe', '--rows', rows, '--all')
    assert rc == 2 and 'give no paper slugs' in err, err

def _gpu_notebooks():
    from kdrepro.runner import read_notebook
    nbs = sorted((ROOT/'nbs'/'papers').glob('[0-9][0-9]_*.ipynb'))
    return [p for p in nbs if any('gpu' in s for s in read_notebook(p).spec.values())]

@pytest.mark.slow
@pytest.mark.parametrize('path', _gpu_notebooks(), ids=lambda p: p.stem)
def test_probe_every_gpu_notebook(path, monkeypatch):
    "Every paper notebook's gpu configuration runs a few steps per stage on this machine: no shape error, no missing file."
    from kdrepro.runner import read_notebook
    from kdrepro.probe import probe_paper
    monkeypatch.setenv('KDREPRO_NBS', str(ROOT/'nbs'/'papers'))
    row = probe_paper(read_notebook(path), timeout=900)
    if os.environ.get('KDREPRO_PROBE_ROWS'):                  # make test-slow writes reports/probe.md from these rows
        Path(os.environ['KDREPRO_PROBE_ROWS'], f"{row['slug']}.json").write_text(json.dumps(row, default=str))
    assert row['status'] == 'ok', row['error']
    assert row['stages'] >= 1 and row['trainable'] > 0 and row['est_bytes'] > 0
