"""What the two levers left for the cold suite would buy on this CPU, per training step of the suite's typical models:
bfloat16 autocast (the CPU's AVX-512 BF16 instructions, where present) and `torch.compile` (inductor, fp32), against the
fp32 eager step that every notebook takes today. Neither is used by kdrepro: both change the numbers of every report, so
adopting one means re-running all 56 notebooks from an empty cache; this script measures whether that would pay.

    .venv/bin/python benchmarks/precision.py [--steps 10] [--rounds 5] [--threads 1] [--no-compile]

For each model the same weights take AdamW steps on the same batch in each mode, interleaved in rounds so that machine
noise hits all alike; printed: the median milliseconds per step, the speed-up over fp32 eager, the relative difference
of the loss at the start, in eval mode (the precision cost), and for `torch.compile` the seconds of its first step
(compilation, paid again for every new shape) and of the first step of a second, fresh model of the same class.
"""
import argparse, copy, statistics, time
import torch
import torch.nn.functional as F
from kdrepro.core import set_seed, set_threads
from kdrepro.models import SmallCNN, tiny_transformer
from kdrepro.lm import llama_lm

def cnn(w, c, s, b):
    def make(): return SmallCNN(10, c, w, 3, s)
    x, y = torch.randn(b, c, s, s), torch.randint(0, 10, (b,))
    return make, (lambda m: F.cross_entropy(m(x), y))

def llama(d, L, b, T):
    def make(): return llama_lm(257, d_model=d, n_layers=L, n_heads=2, max_len=T + 1)
    ids = torch.randint(0, 257, (b, T))
    return make, (lambda m: F.cross_entropy(m(input_ids=ids).logits[:, :-1].reshape(-1, 257), ids[:, 1:].reshape(-1)))

def bert(d, L, b, T):
    def make(): return tiny_transformer('bert', 1000, d_model=d, n_layers=L, n_heads=2, max_len=T)
    ids = torch.randint(1, 1000, (b, T)); am = torch.ones(b, T, dtype=torch.long)
    def loss(m):                                          # masked-LM-like: the hidden states read out through the word embeddings
        h = m(input_ids=ids, attention_mask=am).last_hidden_state
        return F.cross_entropy((h @ m.embeddings.word_embeddings.weight.T).reshape(-1, 1000), ids.reshape(-1))
    return make, loss

MODELS = [('SmallCNN w16, 1x28x28, batch 64', cnn(16, 1, 28, 64)), ('SmallCNN w32, 3x32x32, batch 128', cnn(32, 3, 32, 128)),
          ('Llama d64 x2, 16 x 128 bytes', llama(64, 2, 16, 128)), ('Llama d128 x2, 32 x 96 bytes', llama(128, 2, 32, 96)),
          ('BERT d64 x4, 64 x 32 tokens', bert(64, 4, 64, 32))]

def step(m, loss_fn, opt, autocast):
    with torch.autocast('cpu', dtype=torch.bfloat16, enabled=autocast):
        loss = loss_fn(m)
    opt.zero_grad(set_to_none=True); loss.float().backward(); opt.step()
    return loss.item()

def timed(m, loss_fn, opt, autocast, n):
    t = time.perf_counter()
    for _ in range(n): step(m, loss_fn, opt, autocast)
    return 1000*(time.perf_counter() - t)/n

def main(steps=10, rounds=5, threads=1, compile=True):
    set_threads(threads)
    bf16 = torch.backends.mkldnn.is_available() and 'avx512_bf16' in open('/proc/cpuinfo').read()
    print(f"training step (AdamW), median of {rounds} interleaved rounds of {steps} steps, {torch.get_num_threads()} thread(s), torch {torch.__version__}; "
          f"CPU has AVX-512 BF16: {bf16}")
    print("| model | fp32 eager ms/step | bf16 autocast ms/step | speed-up | loss rel. diff at start | compiled fp32 ms/step | speed-up | "
          "first compiled step (s) | a fresh model's first step (s) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, (make, loss_fn) in MODELS:
        set_seed(0); base = make().train()
        modes = {'fp32': (base, False), 'bf16': (copy.deepcopy(base), True)}
        first = again = None
        if compile:
            cm = copy.deepcopy(base); t = time.perf_counter(); cm.compile()
            o = torch.optim.AdamW(cm.parameters(), 1e-3); step(cm, loss_fn, o, False); first = time.perf_counter() - t
            set_seed(1); cm2 = make().train(); cm2.compile(); t = time.perf_counter()
            step(cm2, loss_fn, torch.optim.AdamW(cm2.parameters(), 1e-3), False); again = time.perf_counter() - t
            modes['compiled'] = (cm, False)
        with torch.no_grad():                                # in eval mode: dropout would hide the precision difference
            base.eval(); modes['bf16'][0].eval()
            l32 = loss_fn(base).item()
            with torch.autocast('cpu', dtype=torch.bfloat16): l16 = loss_fn(modes['bf16'][0]).float().item()
            base.train(); modes['bf16'][0].train()
        opts = {k: torch.optim.AdamW(m.parameters(), 1e-3) for k, (m, _) in modes.items()}
        for k, (m, ac) in modes.items(): timed(m, loss_fn, opts[k], ac, 2)          # warm-up
        ms = {k: [] for k in modes}
        for _ in range(rounds):
            for k, (m, ac) in modes.items(): ms[k].append(timed(m, loss_fn, opts[k], ac, steps))
        med = {k: statistics.median(v) for k, v in ms.items()}
        c = (f"{med['compiled']:.1f} | {med['fp32']/med['compiled']:.2f}x | {first:.1f} | {again:.1f}" if compile else "n/a | n/a | n/a | n/a")
        print(f"| {name} | {med['fp32']:.1f} | {med['bf16']:.1f} | {med['fp32']/med['bf16']:.2f}x | {abs(l16 - l32)/abs(l32):.1e} | {c} |", flush=True)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--steps', type=int, default=10); ap.add_argument('--rounds', type=int, default=5); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--no-compile', dest='compile', action='store_false')
    main(**vars(ap.parse_args()))
