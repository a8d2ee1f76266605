"""The same KD job through torchdistill's own training driver and through kdrepro's `fit`, side by side.

Same teacher (SmallCNN width 16, trained once with CE), same student (SmallCNN width 8, same initial weights), same
data (5,000 Fashion-MNIST training images, batch 64, test on 2,000), same optimizer (SGD 0.05, momentum 0.9, weight
decay 5e-4, cosine schedule stepped every iteration), same loss (0.1 CE + 0.9 T^2 KL, T = 4), same epochs and seed.
torchdistill runs from its YAML configuration (benchmarks/torchdistill_kd.yaml) through `get_distillation_box` and its
pre-epoch / forward / post-forward / post-epoch process loop, the way its example drivers call it. Whole runs of the two
are interleaved so that machine noise hits both alike. It prints the median time per epoch of each, their ratio, and the
final test accuracy of both students,
and how far apart the two students' weights are after one step and at the end: both samplers draw the same order, so
both students see the same batches.

Also: kdrepro's KD step with the teacher's logits read from a cache (computed once, as the notebooks do) against the
plain CE step of the same student (target <= 1.1x), and FitNet-style feature KD with cached teacher features.

    .venv/bin/python benchmarks/vs_torchdistill.py [--epochs 3] [--repeats 3] [--threads 2]
"""
import argparse, statistics, time, copy, logging
from pathlib import Path
import torch
from torch.utils.data import TensorDataset
from kdrepro.core import set_seed, set_threads
from kdrepro.data import load
from kdrepro.models import SmallCNN, FeatureTap
from kdrepro.train import fit, evaluate, KD, FitNet, teacher_outputs

HERE = Path(__file__).parent

def teacher_model(data, epochs=4):
    set_seed(0); t = SmallCNN(width=16)
    fit(t, data.loader(64, shuffle=True, seed=0), epochs=epochs, lr=0.05, device='cpu', progress=False)
    return t.eval()

def student_init(seed=0):
    set_seed(seed); return SmallCNN(width=8)

def run_kdrepro(teacher, init, data, epochs, seed=0, cache=None, method='kd'):
    "kdrepro's fit with the KD distiller (teacher run live, or its outputs read from `cache`)."
    s = copy.deepcopy(init)
    if method == 'ce': d = s
    elif method == 'kd': d = KD(s, None if cache else teacher, teacher_cache=cache, T=4.0, ce_weight=0.1, kd_weight=0.9)
    else:
        ch = lambda m: FeatureTap(m, ['stage2'], detach=True)(data.x[:2])[1]['stage2'].shape[1]
        d = FitNet(s, None if cache else teacher, teacher_cache=cache, pairs=(('stage2', 'stage2'),), weight=1.0, s_channels=ch(s), t_channels=ch(teacher))
    fit(d, data.loader(64, shuffle=True, seed=seed), epochs=epochs, lr=0.05, device='cpu', progress=False)
    return s

def run_torchdistill(teacher, init, data, epochs, seed=0):
    "torchdistill's DistillationBox from the YAML, driven by its documented epoch loop."
    from torchdistill.common.yaml_util import load_yaml_file
    from torchdistill.core.distillation import get_distillation_box
    logging.getLogger('torchdistill').setLevel(logging.WARNING)
    cfg = load_yaml_file(str(HERE/'torchdistill_kd.yaml'))['train']
    cfg['num_epochs'] = epochs
    cfg['scheduler']['kwargs']['T_max'] = epochs*((len(data) + 63)//64)
    # the same shuffling as kdrepro's loader (a RandomSampler drawing from a generator seeded by `seed`): both students see the same batches
    cfg['train_data_loader']['sampler']['kwargs'] = {'generator': torch.Generator().manual_seed(seed)}
    s = copy.deepcopy(init)
    box = get_distillation_box(copy.deepcopy(teacher), s, {'fmnist/train': TensorDataset(data.x, data.y)}, cfg,
                               torch.device('cpu'), None, False, 1.0)
    for ep in range(epochs):
        box.pre_epoch_process(epoch=ep)
        for sample_batch, targets, supp_dict in box.train_data_loader:
            loss = box.forward_process(sample_batch, targets, supp_dict)
            box.post_forward_process(loss)
        box.post_epoch_process()
    return s

def timed(fn, epochs):
    t0 = time.perf_counter(); m = fn(); return m, (time.perf_counter() - t0)/epochs

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--epochs', type=int, default=3, help='epochs per training run')
    ap.add_argument('--repeats', type=int, default=3, help='training runs of each, interleaved')
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    set_threads(a.threads)
    train, test = load('fashion_mnist', 'train', n=5000, seed=0), load('fashion_mnist', 'test', n=2000, seed=0)
    t0 = time.perf_counter(); teacher = teacher_model(train); t_teacher = time.perf_counter() - t0
    acc_t = evaluate(teacher, test.loader(512), device='cpu')['acc']
    init = student_init(0)
    run_kdrepro(teacher, init, train, 1); run_torchdistill(teacher, init, train, 1)      # warm-up, not timed
    times = {'torchdistill': [], 'kdrepro': []}; models = {}
    for r in range(a.repeats):
        models['torchdistill'], t = timed(lambda: run_torchdistill(teacher, init, train, a.epochs), a.epochs); times['torchdistill'].append(t)
        models['kdrepro'], t = timed(lambda: run_kdrepro(teacher, init, train, a.epochs), a.epochs); times['kdrepro'].append(t)
    acc = {k: evaluate(m, test.loader(512), device='cpu')['acc'] for k, m in models.items()}
    gap = max(float((p - q).abs().max()) for p, q in zip(models['kdrepro'].state_dict().values(), models['torchdistill'].state_dict().values()))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{len(train)} Fashion-MNIST images, batch 64, {a.epochs} epochs per run, {a.repeats} runs each (interleaved), torch threads {torch.get_num_threads()}")
    print(f"teacher SmallCNN-16: test accuracy {acc_t:.4f} (trained in {t_teacher:.1f} s); student SmallCNN-8, KD T=4, 0.1 CE + 0.9 KL")
    for k in ('torchdistill', 'kdrepro'):
        print(f"{k:13s} median {med[k]:.3f} s/epoch (runs: {', '.join(f'{t:.3f}' for t in times[k])}); student test accuracy {acc[k]:.4f}")
    one = train.subset(list(range(64)))                    # one step of each: the same update up to float rounding
    gap1 = max(float((p - q).abs().max()) for p, q in zip(run_kdrepro(teacher, init, one, 1).state_dict().values(),
                                                         run_torchdistill(teacher, init, one, 1).state_dict().values()))
    print(f"largest weight difference after one step: {gap1:.1e}; after the whole runs: {gap:.1e} (rounding differences grow over training)")
    print(f"time ratio kdrepro / torchdistill: {med['kdrepro']/med['torchdistill']:.3f}  (target <= 1.0 at equal accuracy; accuracy gap {acc['kdrepro'] - acc['torchdistill']:+.4f})")
    # the KD step with cached teacher outputs against the plain CE step of the same student
    cache = teacher_outputs(teacher, train, features=('stage2',), device='cpu')
    step = {'ce': [], 'kd_cached': [], 'fitnet_cached': []}
    for r in range(a.repeats):
        for k, m in (('ce', 'ce'), ('kd_cached', 'kd'), ('fitnet_cached', 'fitnet')):
            _, t = timed(lambda: run_kdrepro(teacher, init, train, a.epochs, cache=cache, method=m), a.epochs); step[k].append(t)
    sm = {k: statistics.median(v) for k, v in step.items()}
    print(f"plain CE step (kdrepro fit):           median {sm['ce']:.3f} s/epoch")
    print(f"KD step, cached teacher logits:         median {sm['kd_cached']:.3f} s/epoch  ratio to CE {sm['kd_cached']/sm['ce']:.3f} (target <= 1.1)")
    print(f"FitNet step, cached teacher features:   median {sm['fitnet_cached']:.3f} s/epoch  ratio to CE {sm['fitnet_cached']/sm['ce']:.3f}")

if __name__ == '__main__':
    main()
