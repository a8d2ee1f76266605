"""Overhead of kdrepro's `fit` against a minimal hand-written PyTorch loop doing the same work.

Same student (SmallCNN width 8), same data (5,000 Fashion-MNIST images, batch 64), same optimizer (SGD,
momentum 0.9, weight decay 5e-4, cosine schedule), same number of steps, same seed (both end with identical weights). Whole training runs of the two are
interleaved so that machine noise hits both alike; the figure is the ratio of median time per epoch.

    .venv/bin/python benchmarks/fit_overhead.py [--epochs 3] [--repeats 5] [--threads 2]
"""
import argparse, statistics, time
import torch
import torch.nn.functional as F
from kdrepro.core import set_seed, set_threads
from kdrepro.data import load
from kdrepro.models import SmallCNN
from kdrepro.train import fit

def hand_train(data, epochs, seed=0):
    "The plain loop: forward, CE, backward, SGD step, cosine step, losses summed as tensors: what `fit` does for CE."
    set_seed(seed); model = SmallCNN(width=8)
    dl = data.loader(64, shuffle=True, seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs*len(dl))
    for ep in range(epochs):
        model.train(); tot = 0.
        for x, y, _ in dl:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sched.step()
            tot += loss.detach()
        float(tot)
    return model

def fit_train(data, epochs, seed=0, progress=False):
    set_seed(seed); model = SmallCNN(width=8)
    fit(model, data.loader(64, shuffle=True, seed=seed), epochs=epochs, lr=0.05, device='cpu', progress=progress)
    return model

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--epochs', type=int, default=3, help='epochs per training run')
    ap.add_argument('--repeats', type=int, default=5, help='training runs of each, interleaved')
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--progress', action='store_true', help='time fit with its progress bar on')
    a = ap.parse_args()
    set_threads(a.threads)
    data = load('fashion_mnist', 'train', n=5000, seed=0)
    fit_train(data, 1); hand_train(data, 1)          # warm-up, not timed
    t_hand, t_fit = [], []
    for r in range(a.repeats):
        t0 = time.perf_counter(); mh = hand_train(data, a.epochs); t_hand.append((time.perf_counter() - t0)/a.epochs)
        t0 = time.perf_counter(); mf = fit_train(data, a.epochs, progress=a.progress); t_fit.append((time.perf_counter() - t0)/a.epochs)
    same = all(torch.equal(p, q) for p, q in zip(mh.state_dict().values(), mf.state_dict().values()))
    h, f = statistics.median(t_hand), statistics.median(t_fit)
    print(f"{len(data)} images, batch 64, {a.epochs} epochs per run, {a.repeats} runs each (interleaved), torch threads {torch.get_num_threads()}")
    print(f"same final weights from both loops: {same}")
    print(f"hand-written loop: median {h:.3f} s/epoch  (runs: {', '.join(f'{t:.3f}' for t in t_hand)})")
    print(f"kdrepro fit:       median {f:.3f} s/epoch  (runs: {', '.join(f'{t:.3f}' for t in t_fit)})")
    print(f"overhead ratio fit / hand: {f/h:.3f}")

if __name__ == '__main__':
    main()
