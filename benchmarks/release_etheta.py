"""Would the released code's E[θ] (its erfcx closed form, 11_explanations, “E[θ] and SNR”, evaluated in float32 as it trains) change the
test-time gates of our trained networks? For each checkpoint, the largest relative difference between that formula and
`NoiseGate.expected()` over the kept units. A large value would mean the release's numerics (11_explanations, “The release's numerics”: E[θ] = 0 for
small σ) could explain a lower test accuracy in the paper; a tiny one rules that out for these posteriors.

    python benchmarks/release_etheta.py 'runs/table1_cpu/*-bmrs_n_release-seed1000/*/model.pt'

`nbs/10c_ablations.ipynb` imports `etheta_release` (the formula) from here.
"""
import glob, math, sys
import torch

def etheta_release(mu, sig, a=-20., b=0., dtype=torch.float32):
    "The release's E[θ]: [erfcx((σ−β)/√2)·e^{b−β²/2} − erfcx((σ−α)/√2)·e^{a−α²/2}] / (2Z), in `dtype` (11_explanations, “E[θ] and SNR”)."
    mu, sig = mu.to(dtype), sig.to(dtype)
    al, be = (a - mu)/sig, (b - mu)/sig
    Z = torch.special.ndtr(be) - torch.special.ndtr(al)
    r2 = math.sqrt(2)
    return (torch.special.erfcx((sig - be)/r2)*torch.exp(b - be**2/2) - torch.special.erfcx((sig - al)/r2)*torch.exp(a - al**2/2))/(2*Z)

def worst_kept(model) -> float:
    "Largest relative difference of the release's E[θ] to `NoiseGate.expected()` over the kept units of `model`'s gates."
    from bmrs.layers import gates
    worst = 0.
    for g in gates(model):
        k = g.mask > 0
        ours = g.expected().detach()[k].double(); rel = etheta_release(g.mu.detach()[k], g.sigma.detach()[k]).double()
        worst = max(worst, float(((rel - ours).abs()/ours).max()))
    return worst

def main(patterns):
    from bmrs.train import load_run
    for f in sorted(p for pat in patterns for p in glob.glob(pat)):
        cfg = torch.load(f, map_location='cpu', weights_only=True)['config']   # the run's record config, saved with it
        m, _ = load_run(dict(config=cfg, files=dict(checkpoint=f)))
        print(f.split('/')[-2], 'max rel. diff of release E[θ] on kept units: %.2e' % worst_kept(m))

if __name__ == '__main__': main(sys.argv[1:])
