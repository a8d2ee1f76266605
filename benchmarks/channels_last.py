"""Training-step time of `SmallCNN` in the channels-last (NHWC) layout it uses against the NCHW layout it used before.

For each size the suite trains (width, input, batch), the same model (same weights) takes SGD steps on the same batch in
both layouts; steps of the two are interleaved in rounds so that machine noise hits both alike. Prints the median
milliseconds per step of each, their ratio, and the largest difference of the logits at the start (float rounding).

    .venv/bin/python benchmarks/channels_last.py [--steps 10] [--rounds 5] [--threads 1]
"""
import argparse, copy, statistics, time
import torch
import torch.nn.functional as F
from kdrepro.core import set_seed, set_threads
from kdrepro.models import SmallCNN

SIZES = [  # width, in_ch, side, batch: the students and teachers of the cpu scale
    (8, 1, 28, 64), (16, 1, 28, 64), (32, 1, 28, 128), (64, 1, 28, 128), (8, 3, 32, 64), (16, 3, 32, 64), (32, 3, 32, 128)]

def nchw_logits(m, x):
    "The model's function with every tensor in NCHW: the stages called on a contiguous input (no conversion)."
    for i in range(len(m.channels)): x = getattr(m, f'stage{i+1}')(x)
    return m.fc(m.embed(m.pool(x).flatten(1)))

def step_ms(m, fwd, x, y, opt, n):
    t = time.perf_counter()
    for _ in range(n):
        loss = F.cross_entropy(fwd(m, x), y)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
    return 1000*(time.perf_counter() - t)/n

def main(steps=10, rounds=5, threads=1):
    set_threads(threads)
    print(f"SmallCNN training step (SGD), median of {rounds} interleaved rounds of {steps} steps, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    print("| width | input | batch | NCHW ms/step | NHWC ms/step | NCHW / NHWC | max |logit diff| at start |\n|---:|---|---:|---:|---:|---:|---:|")
    for w, c, s, b in SIZES:
        set_seed(0); cl = SmallCNN(10, c, w, 3, s); x = torch.randn(b, c, s, s); y = torch.randint(0, 10, (b,))
        nc = copy.deepcopy(cl).to(memory_format=torch.contiguous_format)
        assert not nc.stage2[0].weight.is_contiguous(memory_format=torch.channels_last) and cl.stage2[0].weight.is_contiguous(memory_format=torch.channels_last)
        with torch.no_grad(): diff = (cl.eval()(x) - nchw_logits(nc.eval(), x)).abs().max().item()
        cl.train(); nc.train()
        runs = {'nchw': (nc, nchw_logits), 'nhwc': (cl, lambda m, x: m(x))}
        opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, (m, _) in runs.items()}
        for k, (m, f) in runs.items(): step_ms(m, f, x, y, opts[k], 2)          # warm-up
        ms = {k: [] for k in runs}
        for _ in range(rounds):
            for k, (m, f) in runs.items(): ms[k].append(step_ms(m, f, x, y, opts[k], steps))
        a, b_ = statistics.median(ms['nchw']), statistics.median(ms['nhwc'])
        print(f"| {w} | {c}x{s}x{s} | {b} | {a:.1f} | {b_:.1f} | {a/b_:.2f}x | {diff:.1e} |")

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=10); ap.add_argument('--rounds', type=int, default=5); ap.add_argument('--threads', type=int, default=1)
    main(**vars(ap.parse_args()))
