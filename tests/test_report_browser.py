"""The comparison report in a real headless browser (Debian chromium): figures and tables must render."""
import os, io, re, json, base64, shutil, subprocess, tempfile
from pathlib import Path
import numpy as np, pytest

def _chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if p := shutil.which(name): return p
    return None

CHROME = _chromium()
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync']

def _needs_chromium():
    if CHROME: return
    if os.environ.get('CI') == 'true': pytest.fail('chromium is required in CI (the Makefile installs Debian chromium)')
    pytest.skip('chromium is not installed (apt-get install chromium); in CI this test fails instead of skipping')

def _make_report(root:Path) -> Path:
    "A store with two papers on one benchmark, a promoted report with a figure and a table, and the HTML built from it."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from kdrepro.results import ResultsStore, Run, Beats
    from kdrepro.runner import promote
    from kdrepro.compare import build_report, render_readme
    reports = root/'reports'; st = ResultsStore(reports/'results.sqlite')
    for slug, gain in (('fx_good', 0.03), ('fx_other', 0.01)):
        run = Run(slug, {'scale': 'cpu', 'seeds': 3}, store=st, run_dir=reports/slug/'runs'/f'r-{slug}', device='cpu')
        for s in range(3):
            run.log('ce', 'acc', 0.80 + 0.002*s, s); run.log('kd', 'acc', 0.80 + gain + 0.001*s, s)
        run.notes.update(benchmark='fashion_mnist/cnn-w8', main_metric='acc')
        run.check('kd>ce', 'KD beats CE', '+1.0 pt (Table 1)', Beats(scale=100, unit=' pt'), run.values('kd', 'acc'), run.values('ce', 'acc'))
        fig, ax = plt.subplots(figsize=(4, 3)); ax.bar(['ce', 'kd'], [80, 80 + 100*gain], color=['tab:blue', 'tab:orange'])
        ax.set_ylim(75, 85); ax.set_title(slug); fig.savefig(run.path('accuracy.png'), dpi=80); plt.close(fig)
        run.path('table.md').write_text(f"| method | acc |\n|---|---|\n| ce | 80.20 |\n| kd | {80.1 + 100*gain:.2f} |\n")
        run.finish()
        promote(run.dir, slug, reports, readme=render_readme(run.dir))
    md, html = build_report(st, reports)
    return html

def test_report_renders_in_chromium(tmp_path):
    _needs_chromium()
    html = _make_report(tmp_path)
    args = [CHROME, *FLAGS, f'--user-data-dir={tmp_path/"profile"}']
    url = html.resolve().as_uri()
    dom = subprocess.run(args + ['--dump-dom', url], capture_output=True, text=True, timeout=120).stdout
    # tables: the overview with a row per catalog paper, the benchmark table, each paper's own table
    assert dom.count('<table') >= 1 + 1 + 2*3
    assert 'fashion_mnist/cnn-w8' in dom and 'mst_distill' in dom
    assert re.search(r'<td>\s*80\.20\s*</td>', dom)                     # the notebook's Markdown table, rendered
    assert 'reproduced' in dom and 'gain +' in dom                        # verdicts with the measured value
    # the headline, the overview's verdict counts and each claim's interval in its paper's section
    assert 'Papers with a report: 0 of 55 (and 2 outside the catalog: fx_good, fx_other)' in dom
    assert re.search(r'<span class="v-reproduced" title="reproduced">✅ 1</span>', dom)
    assert re.search(r'\+2\.90 \[\+\d\.\d\d, \+\d\.\d\d\] pt', dom) and 'paired t interval, 95 % two-sided' in dom
    # figures: img tags whose data: URIs decode to PNG images: each paper's figure and the forest plot of every claim
    srcs = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', dom)
    assert len(srcs) == 3
    for s in srcs: assert base64.b64decode(s)[:8] == b'\x89PNG\r\n\x1a\n'
    forest = re.search(r'<figure class="forest"><img alt="forest plot of every claim" src="data:image/png;base64,([^"]+)"', dom)
    assert forest, 'the forest plot is not in the DOM'
    from PIL import Image
    im = Image.open(io.BytesIO(base64.b64decode(forest.group(1))))
    assert im.width > 500 and im.height > 150                            # a real figure: two papers, one claim each
    assert (html.parent/'forest.png').exists()                           # and saved beside index.md
    assert 'src="http' not in dom
    # the screenshot is a real page, not a blank one
    png = tmp_path/'shot.png'
    r = subprocess.run(args + [f'--screenshot={png}', '--window-size=1280,2000', url], capture_output=True, text=True, timeout=120)
    assert png.exists(), r.stderr[-2000:]
    from PIL import Image
    a = np.asarray(Image.open(png).convert('L'), dtype=float)
    assert a.shape == (2000, 1280)
    assert a.std() > 10 and (a < 128).mean() > 0.005                     # text and lines, not a blank page
