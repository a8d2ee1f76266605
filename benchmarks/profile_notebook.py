"""Profile one notebook's cold cpu-scale run with py-spy (a sampling profiler; not a kdrepro dependency:
`pip install py-spy`, or `pip install --target DIR py-spy` and pass `--py-spy DIR/bin/py-spy`) and print where the
kernel's time goes: forward passes, backward passes, optimiser steps, and the rest, with the heaviest functions.

    .venv/bin/python benchmarks/profile_notebook.py SLUG [--py-spy PATH] [--keep DIR]   # runs SLUG on an empty cache, one thread
    .venv/bin/python benchmarks/profile_notebook.py --raw FILE [FILE ...] [--out F]      # summarise earlier py-spy raw files

The run goes into a scratch reports folder and store and an empty cache (the repository's reports/ and the machine's cache
are not touched), with `KDREPRO_THREADS=1` as in the suite runs. Only the samples of the kernel's main thread while it
runs a cell count (the kernel's idle I/O threads and the runner process are left out). A sample is put in the first
matching class, looked up from the innermost frame outwards: optimiser step, backward, forward (an nn.Module call),
else the rest (data, evaluation code outside modules, Python).
"""
import argparse, collections, os, re, shutil, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RATE = 20                                     # samples per second
CLASSES = [('optimiser step', re.compile(r'^(\w+\.)?(step|_single_tensor_\w+|_multi_tensor_\w+|_fused_\w+) \(torch/optim/')),
           ('backward', re.compile(r'^(\w+\.)?(backward|_engine_run_backward) \(torch/(autograd|_tensor)')),
           ('forward (nn.Module calls)', re.compile(r'^(\w+\.)?_call_impl \(torch/nn/modules/module\.py'))]
CELL = re.compile(r'^(\w+\.)?run_code \(IPython/')

def _name(frame:str) -> str: return re.sub(r':\d+\)$', ')', frame)

def classify(raw:Path) -> tuple:
    "(class -> samples, function -> self samples, total samples) of the kernel's cell-running samples in a py-spy raw file."
    cls, selfs, n = collections.Counter(), collections.Counter(), 0
    for line in raw.read_text().splitlines():
        stack, _, k = line.rpartition(' ')
        if not stack or not k.isdigit(): continue
        frames = [_name(f) for f in stack.split(';')]
        if not any(CELL.match(f) for f in frames): continue
        k = int(k); n += k
        c = next((name for f in reversed(frames) for name, pat in CLASSES if pat.match(f)), 'rest')
        cls[c] += k; selfs[frames[-1]] += k
    return cls, selfs, n

def overview(raws:list) -> str:
    "One row per profile: the kernel's seconds and each class's share."
    L = ["| profile | kernel seconds | " + ' | '.join(c for c, _ in CLASSES) + " | rest |", "|---|---:|" + "---:|"*(len(CLASSES) + 1)]
    for r in raws:
        cls, _, n = classify(r)
        if n: L.append(f"| {r.stem} | {n/RATE:.0f} | " + ' | '.join(f"{100*cls[c]/n:.1f} %" for c in [c for c, _ in CLASSES] + ['rest']) + " |")
    return '\n'.join(L) + '\n'

def summarise(raw:Path, top:int=12) -> str:
    "The class shares and the heaviest functions (self time) of one profile."
    cls, selfs, n = classify(raw)
    if not n: return f"{raw}: no kernel samples\n"
    L = [f"{raw.name}: {n/RATE:.0f} s in the kernel's cells ({n} samples at {RATE} Hz)", "",
         "| class | seconds | share |", "|---|---:|---:|"]
    for c in [c for c, _ in CLASSES] + ['rest']: L.append(f"| {c} | {cls[c]/RATE:.0f} | {100*cls[c]/n:.1f} % |")
    L += ["", "| heaviest functions (self time, including the native code they call) | seconds | share |", "|---|---:|---:|"]
    for f, k in selfs.most_common(top): L.append(f"| `{f[:110]}` | {k/RATE:.0f} | {100*k/n:.1f} % |")
    return '\n'.join(L) + '\n'

def profile(slug:str, py_spy:str, keep:Path|None, scale:str='cpu') -> Path:
    "Run `slug` cold under py-spy into a scratch clone of the reports; returns the raw profile."
    work = Path(keep or tempfile.mkdtemp(prefix=f'kdrepro-prof-{slug}-')); work.mkdir(parents=True, exist_ok=True)
    raw, cache, reports = work/f'{slug}.txt', work/'cache', work/'reports'
    for d in (cache, reports): shutil.rmtree(d, ignore_errors=True); d.mkdir()
    env = dict(os.environ, HF_HUB_OFFLINE='1', KDREPRO_CACHE=str(cache), KDREPRO_REPORTS=str(reports),
               KDREPRO_STORE=str(work/'results.sqlite'), KDREPRO_THREADS='1')
    cmd = [py_spy, 'record', '--subprocesses', '--rate', str(RATE), '--format', 'raw', '-o', str(raw), '--',
           str(ROOT/'.venv'/'bin'/'kdrepro'), 'run', slug, '--scale', scale, '--no-report', '--jobs', '1']
    print('$', ' '.join(cmd), flush=True)
    subprocess.run(cmd, env=env, cwd=ROOT, check=True)
    return raw

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('slug', nargs='?', help='notebook to run cold under py-spy')
    ap.add_argument('--raw', nargs='+', type=Path, help='summarise these py-spy raw files instead')
    ap.add_argument('--py-spy', default=shutil.which('py-spy') or 'py-spy', help='the py-spy executable')
    ap.add_argument('--scale', default='cpu', choices=['smoke', 'cpu'], help='the scale to run at (default cpu)')
    ap.add_argument('--keep', type=Path, help='work folder (kept): cache, reports and the raw profile')
    ap.add_argument('--out', type=Path, help='also write the summaries here (markdown)')
    ap.add_argument('--note', default='', help='a sentence on how the profiles were taken, written under the title')
    a = ap.parse_args(argv)
    if not a.raw and not a.slug: ap.error('give a SLUG to profile or --raw FILE ...')
    if a.raw:
        for f in a.raw:
            if not f.is_file(): ap.error(f"--raw: no file {f}")
        raws = a.raw
    else:
        if not (shutil.which(a.py_spy) or Path(a.py_spy).is_file()): ap.error(f"py-spy not found ({a.py_spy}): pip install py-spy, or pass --py-spy PATH")
        raws = [profile(a.slug, a.py_spy, a.keep, a.scale)]
    md = overview(raws) + '\n' + '\n'.join(summarise(r) for r in raws)
    print(md)
    if a.out:
        cmd = ('--raw ' + ' '.join(map(str, raws))) if a.raw else a.slug
        a.out.write_text("# Profiles of cold notebook runs\n\nWritten by `benchmarks/profile_notebook.py " + f"{cmd} --out {a.out}"
                         + "`: py-spy samples of the kernel's main thread while it runs a cell (see the script's docstring). " + a.note + "\n\n" + md)

if __name__ == '__main__': main()
