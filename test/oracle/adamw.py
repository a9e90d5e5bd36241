"""Outer optimizer of the oracle: global-norm clipping, AdamW and the warmup-cosine learning-rate schedule.

Written from /work/shared/spec/TTT_MODEL.md sections 4.1-4.2 and 3.3 only, in plain torch tensor math
(torch.optim is deliberately not used, so that this is an independent statement of the update):

  clip:      g <- g * min(1, clip / ||g||_2), the norm taken over ALL parameters' gradients together;
  AdamW:     k = 1-based update count
             m <- b1 m + (1 - b1) g,     v <- b2 v + (1 - b2) g^2,
             mhat = m / (1 - b1^k),      vhat = v / (1 - b2^k),
             p <- p - lr * ( mhat / (sqrt(vhat) + eps) + wd * p )      (decoupled decay, every parameter);
  schedule:  lr(c) = peak * c / W                                           for 0 <= c < W,
             lr(c) = end + (peak - end) * 1/2 (1 + cos(pi * min(c - W, D - W) / (D - W)))   for c >= W,
             c = the optimizer's own 0-based counter, so the first update uses lr(0) = 0 when W > 0.

All arithmetic is done in the dtype of the parameters (float64 or float32); the schedule in Python floats.
"""

import math

import torch


def warmup_cosine_lr(count, peak, end, warmup, total):
    """lr(count) of spec 4.2 (optax warmup_cosine_decay_schedule with init_value 0).

    count: the 0-based optimizer step; peak: the peak lr; end: the final lr; warmup: W; total: D (> W)."""
    if warmup < 0 or total <= warmup:
        raise ValueError(f"schedule needs 0 <= warmup ({warmup}) < total steps ({total})")
    if count < 0:
        raise ValueError("count must be >= 0")
    if count < warmup:
        return peak * count / warmup
    decay_steps = total - warmup
    progress = min(count - warmup, decay_steps) / decay_steps
    return end + (peak - end) * 0.5 * (1.0 + math.cos(math.pi * progress))


def global_norm(grads):
    """sqrt of the sum of squares of every entry of every gradient (a dict name -> tensor), as a tensor."""
    total = None
    for g in grads.values():
        s = (g * g).sum()
        total = s if total is None else total + s
    return torch.sqrt(total)


def clip_by_global_norm(grads, max_norm):
    """Returns (clipped grads, the unclipped global norm as a float, the scale applied).

    scale = min(1, max_norm / norm): gradients whose global norm exceeds max_norm are scaled onto the sphere
    of radius max_norm, smaller ones are left untouched (bitwise)."""
    norm = global_norm(grads)
    norm_value = float(norm)
    if norm_value > max_norm:
        scale = max_norm / norm_value
        return {n: g * scale for n, g in grads.items()}, norm_value, scale
    return dict(grads), norm_value, 1.0


class AdamW:
    """AdamW with decoupled weight decay on every parameter (spec 3.3, 4.1). State: the first and second
    moments (zeros initially, same dtype as the parameters) and the update count."""

    def __init__(self, params, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1):
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.m = {n: torch.zeros_like(p) for n, p in params.items()}
        self.v = {n: torch.zeros_like(p) for n, p in params.items()}
        self.count = 0  # updates applied so far

    def step(self, params, grads, lr):
        """One update with learning rate `lr`; returns the new parameters (a new dict, inputs untouched)."""
        self.count += 1
        k = self.count
        correction1 = 1.0 - self.beta1 ** k
        correction2 = 1.0 - self.beta2 ** k
        updated = {}
        for name, p in params.items():
            g = grads[name]
            self.m[name] = self.beta1 * self.m[name] + (1.0 - self.beta1) * g
            self.v[name] = self.beta2 * self.v[name] + (1.0 - self.beta2) * (g * g)
            m_hat = self.m[name] / correction1
            v_hat = self.v[name] / correction2
            direction = m_hat / (torch.sqrt(v_hat) + self.eps) + self.weight_decay * p
            updated[name] = p - lr * direction
        return updated
