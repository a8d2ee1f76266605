"""What glibc's malloc settings cost a training kernel: the same CPU training steps with glibc's defaults and with the
settings that kdrepro gives every notebook kernel (`kdrepro.runner.MALLOC_ENV`: a fixed 32 MiB mmap threshold, no trimming).

With the defaults, glibc hands a freed tensor buffer above its dynamic mmap threshold back to the operating system and
the next step page-faults it in again (zeroed): system time and minor page faults. Each configuration runs in its own
process (glibc reads the settings at start), one torch thread, alternately `--repeats` times so that machine noise hits
both alike; printed: median wall, user and system seconds, minor page faults, and the ratio of the medians. The weights
after training are compared too: allocation does not change the arithmetic.

    .venv/bin/python benchmarks/malloc.py [--steps 40] [--batch 128] [--repeats 3]
"""
import argparse, json, os, statistics, subprocess, sys

CHILD = r'''
import json, resource, sys, time, torch, torch.nn as nn
steps, batch = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(1); torch.manual_seed(0)
net = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64),
                    nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
opt = torch.optim.Adam(net.parameters(), 1e-3)
x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))
r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
for _ in range(steps):
    loss = nn.functional.cross_entropy(net(x), y); opt.zero_grad(); loss.backward(); opt.step()
r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
print(json.dumps(dict(wall=t1 - t0, user=r1.ru_utime - r0.ru_utime, sys=r1.ru_stime - r0.ru_stime, minflt=r1.ru_minflt - r0.ru_minflt,
                      checksum=float(sum(p.double().sum() for p in net.parameters())))))
'''

def run(settings:dict, steps:int, batch:int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith('MALLOC_')}
    env.update(settings, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    out = subprocess.run([sys.executable, '-c', CHILD, str(steps), str(batch)], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--steps', type=int, default=40); ap.add_argument('--batch', type=int, default=128)
    ap.add_argument('--repeats', type=int, default=3)
    a = ap.parse_args(argv)
    from kdrepro.runner import MALLOC_ENV
    configs = {'glibc defaults': {}, 'kdrepro (MALLOC_ENV)': dict(MALLOC_ENV)}
    res = {k: [] for k in configs}
    for _ in range(a.repeats):
        for k, s in configs.items(): res[k].append(run(s, a.steps, a.batch))
    print(f"{a.steps} Adam steps of a 3-conv CNN, batch {a.batch} of 3x32x32, 1 thread, {a.repeats} alternating repeats, "
          f"load average before the last: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    med = {k: {m: statistics.median(r[m] for r in rs) for m in ('wall', 'user', 'sys', 'minflt')} for k, rs in res.items()}
    print(f"{'':24s} {'wall (s)':>9s} {'user (s)':>9s} {'sys (s)':>8s} {'minor faults':>13s}")
    for k, m in med.items(): print(f"{k:24s} {m['wall']:9.2f} {m['user']:9.2f} {m['sys']:8.2f} {m['minflt']:13,.0f}")
    a0, b0 = med['glibc defaults'], med['kdrepro (MALLOC_ENV)']
    print(f"wall ratio kdrepro / defaults: {b0['wall']/a0['wall']:.2f}; system time ratio: {b0['sys']/max(a0['sys'], 1e-9):.2f}")
    same = len({round(r['checksum'], 9) for rs in res.values() for r in rs}) == 1
    print(f"weights after training identical in every run: {same}")
    return 0 if same else 1

if __name__ == '__main__': sys.exit(main())
