#!/usr/bin/python3
"""Self-tests of the TTT-Linear (M) oracle (ttt_primal.py), its safetensors I/O and the case generator.

Run all:  /usr/bin/python3 test/oracle/test_oracle.py
Run one:  /usr/bin/python3 test/oracle/test_oracle.py OracleTest.test_causality
Each test prints its measured figure (max difference, relative error, ...) on stderr.
"""

import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import adamw  # noqa: E402
import make_case  # noqa: E402
import safetensors_io  # noqa: E402
import ttt_primal as tp  # noqa: E402

torch.set_num_threads(2)

# A tiny model: d = 32, 2 heads of f = 16, 2 layers, 48 tokens = 3 mini-batches, 2 sequences.
TINY = dict(vocab=128, hidden=32, intermediate=64, layers=2, heads=2, batch=2, seq=48)


def report(what, value):
    sys.stderr.write(f"  [{what}] {value}\n")


def tiny_case(tmp, seed=5, dtype="fp64", **overrides):
    sizes = dict(TINY, **overrides)
    out = os.path.join(tmp, f"case{seed}_{dtype}")
    make_case.write_case(out, seed, dtype=dtype, **sizes)
    return out


def load_case(case, dtype=torch.float64):
    cfg = tp.Config.load(os.path.join(case, "config.json"))
    P = tp.load_parameters(cfg, os.path.join(case, "model.safetensors"), dtype)
    inputs, targets = tp.load_batch(os.path.join(case, "batch.txt"))
    return cfg, P, inputs, targets


def run_cli(case, *extra):
    cmd = [sys.executable, os.path.join(HERE, "ttt_primal.py"),
           "--config", os.path.join(case, "config.json"),
           "--weights", os.path.join(case, "model.safetensors"),
           "--batch", os.path.join(case, "batch.txt"), *extra]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = out.strip().splitlines()
    assert len(lines) == 1, out
    return json.loads(lines[0])


# --------------------------------------------------------------------------------------------------
# Token-by-token decode formulation (spec 2.10), used only to check the per-token primal inner loop.
# Gradient in the closed form of spec 2.4, so this also cross-checks the oracle's autograd gradient.
# --------------------------------------------------------------------------------------------------

def closed_form_grad_z(z, target, gamma, lam, eps=tp.LN_EPS):
    """d/dz of 1/2 || LN(z) - target ||^2 (spec 2.4), rows of length f."""
    f = z.shape[-1]
    mu = z.mean(dim=-1, keepdim=True)
    sigma = torch.sqrt(((z - mu) ** 2).mean(dim=-1, keepdim=True) + eps)
    zhat = (z - mu) / sigma
    g = (gamma * zhat + lam - target) * gamma
    return (f * g - g.sum(dim=-1, keepdim=True) - zhat * (g * zhat).sum(dim=-1, keepdim=True)) / (f * sigma)


def ttt_decode(XQ, XK, XV, eta, tau, W1, b1, gamma, lam, mini_batch_size):
    """Same signature as tp.ttt_primal; one token at a time with accumulators reset at each mini-batch."""
    B, H, T, f = XQ.shape
    W = W1.unsqueeze(0).expand(B, H, f, f).clone()
    beta = b1[:, 0, :].unsqueeze(0).expand(B, H, f).clone()
    acc_W = torch.zeros_like(W)
    acc_b = torch.zeros_like(beta)
    outputs = []
    for t in range(T):
        i = t % mini_batch_size + 1
        q, k, v = XQ[:, :, t], XK[:, :, t], XV[:, :, t]       # [B, H, f]
        z = torch.einsum("bhe,bhef->bhf", k, W) + beta      # gradient at the mini-batch start state
        G = closed_form_grad_z(z, v - k, gamma, lam)
        e = eta[:, :, t][..., None]
        acc_W = acc_W + e[..., None] * torch.einsum("bhe,bhf->bhef", k, G)
        acc_b = acc_b + e * G
        W_bar = W - tau[i - 1] * acc_W
        b_bar = beta - tau[i - 1] * acc_b
        outputs.append(q + tp.layer_norm(torch.einsum("bhe,bhef->bhf", q, W_bar) + b_bar, gamma, lam))
        if i == mini_batch_size:
            W, beta = W_bar, b_bar
            acc_W = torch.zeros_like(W)
            acc_b = torch.zeros_like(beta)
    return torch.stack(outputs, dim=2)


class SafetensorsTest(unittest.TestCase):
    def test_round_trip_every_dtype(self):
        gen = torch.Generator().manual_seed(0)
        tensors = {
            "f64": torch.randn(3, 4, generator=gen, dtype=torch.float64),
            "f32": torch.randn(2, 3, 5, generator=gen, dtype=torch.float32),
            "bf16": torch.randn(7, generator=gen).to(torch.bfloat16),
            "i32": torch.randint(-2**31, 2**31 - 1, (4, 2), generator=gen, dtype=torch.int64).to(torch.int32),
            "scalar": torch.tensor(3.5, dtype=torch.float64),
            "empty": torch.zeros(0, 3, dtype=torch.float32),
        }
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "t.safetensors")
            safetensors_io.save_file(path, tensors, {"k": "v"})
            back, meta = safetensors_io.load_file(path)
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
            self.assertEqual((8 + n) % 8, 0, "data must start 8-byte aligned")
        self.assertEqual(meta, {"k": "v"})
        self.assertEqual(sorted(back), sorted(tensors))
        for name, t in tensors.items():
            self.assertEqual(back[name].dtype, t.dtype, name)
            self.assertEqual(list(back[name].shape), list(t.shape), name)
            self.assertTrue(torch.equal(back[name], t), name)

    def test_hand_computed_layout(self):
        # Writer: exact bytes for two small tensors (compact JSON, sorted names, space padding).
        blob = safetensors_io.encode({"b": torch.tensor([7], dtype=torch.int32),
                                      "a": torch.tensor([1.0, -2.0], dtype=torch.float32)})
        header = (b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                  b'"b":{"dtype":"I32","shape":[1],"data_offsets":[8,12]}}')
        header += b" " * ((-(8 + len(header))) % 8)
        data = bytes([0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0,  # 1.0f, -2.0f little-endian
                      0x07, 0x00, 0x00, 0x00])                          # int32 7
        self.assertEqual(blob, struct.pack("<Q", len(header)) + header + data)

        # Reader: a hand-built file with an unpadded header, metadata, BF16 and F64, out-of-order offsets.
        header = (b'{"__metadata__":{"format":"pt"},'
                  b'"x":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]},'
                  b'"y":{"dtype":"F64","shape":[1,1],"data_offsets":[0,8]}}')
        data = struct.pack("<d", -0.375) + bytes([0x80, 0x3F, 0x40, 0xC0])  # bf16 1.0 = 0x3F80, -3.0 = 0xC040
        tensors, meta = safetensors_io.decode(struct.pack("<Q", len(header)) + header + data)
        self.assertEqual(meta, {"format": "pt"})
        self.assertEqual(tensors["x"].dtype, torch.bfloat16)
        self.assertEqual(tensors["x"].float().tolist(), [1.0, -3.0])
        self.assertEqual(tensors["y"].dtype, torch.float64)
        self.assertEqual(tensors["y"].tolist(), [[-0.375]])

        # Inconsistent sizes are rejected.
        bad = b'{"y":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}'
        with self.assertRaises(ValueError):
            safetensors_io.decode(struct.pack("<Q", len(bad)) + bad + bytes(8))


class BuildingBlocksTest(unittest.TestCase):
    """Hand-computed values for the conventions the self-consistency tests cannot see (spec 2.1-2.3)."""

    def test_conventions(self):
        cfg = tp.Config(make_case.make_config(vocab=8, hidden=8, intermediate=8, layers=1, heads=2))  # f = 4
        # RoPE: interleaved pairs, angle p * theta^(-2i/f), position p = t mod 16.
        cos, sin = tp.rope_tables(cfg, 18, torch.float64)
        self.assertTrue(torch.equal(cos[17], cos[1]) and torch.equal(sin[16], sin[0]))
        x = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64).view(1, 1, 1, 4)
        got = tp.apply_rope(x.expand(1, 1, 18, 4), cos, sin)[0, 0, 17]  # p = 1: angles 1 and 0.01
        want = torch.tensor([math.cos(1.0), math.sin(1.0), -math.sin(0.01), math.cos(0.01)], dtype=torch.float64)
        self.assertLess((got - want).abs().max().item(), 1e-15)
        # Causal depthwise conv: weight[c, 0, K-1] multiplies the current token, weight[c, 0, 0] the one K-1 back.
        impulse = torch.zeros(1, 6, 2, dtype=torch.float64)
        impulse[0, 1, :] = 1.0
        weight = torch.tensor([[[1.0, 2.0, 3.0, 4.0]], [[5.0, 6.0, 7.0, 8.0]]], dtype=torch.float64)
        out = tp.causal_depthwise_conv(impulse, weight, torch.tensor([0.5, -0.5], dtype=torch.float64))
        self.assertEqual(out[0, :, 0].tolist(), [0.5, 4.5, 3.5, 2.5, 1.5, 0.5])
        self.assertEqual(out[0, :, 1].tolist(), [-0.5, 7.5, 6.5, 5.5, 4.5, -0.5])
        # Inner loss gradient by autograd equals the closed form of spec 2.4.
        gen = torch.Generator().manual_seed(2)
        W0, b0 = 0.3 * torch.randn(1, 2, 4, 4, generator=gen, dtype=torch.float64), \
            0.1 * torch.randn(1, 2, 4, generator=gen, dtype=torch.float64)
        k, v = torch.randn(2, 1, 2, 3, 4, generator=gen, dtype=torch.float64)
        gamma, lam = 1 + 0.1 * torch.randn(2, 2, 4, generator=gen, dtype=torch.float64)
        gradW, gradb = tp.per_token_gradients(W0, b0, k, v, gamma, lam)
        z = torch.einsum("bhje,bhef->bhjf", k, W0) + b0[:, :, None, :]
        G = closed_form_grad_z(z, v - k, gamma[None, :, None, :], lam[None, :, None, :])
        self.assertLess((gradb - G).abs().max().item(), 1e-13)
        self.assertLess((gradW - k[..., :, None] * G[..., None, :]).abs().max().item(), 1e-13)


class OracleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.case = tiny_case(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_make_case_deterministic_and_nonzero(self):
        again = tiny_case(self.tmp.name + "/again")
        for name in ("config.json", "model.safetensors", "batch.txt"):
            with open(os.path.join(self.case, name), "rb") as a, open(os.path.join(again, name), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)
        other = tiny_case(self.tmp.name, seed=6)
        with open(os.path.join(self.case, "model.safetensors"), "rb") as a, \
                open(os.path.join(other, "model.safetensors"), "rb") as b:
            self.assertNotEqual(a.read(), b.read())
        cfg, P, inputs, targets = load_case(self.case)
        self.assertEqual(sorted(P), sorted(tp.parameter_shapes(cfg)))
        self.assertNotIn("lm_head.weight", P)
        for name, t in P.items():
            self.assertFalse(bool((t == 0).any()), f"{name} has a zero entry")
        self.assertEqual(list(inputs.shape), [TINY["batch"], TINY["seq"]])
        self.assertTrue(bool((targets == tp.BOS_ID).any()), "some targets must be BOS")
        self.assertTrue(torch.equal(inputs[:, 1:], targets[:, :-1]))

    def test_loss_finite_and_reasonable(self):
        result = run_cli(self.case)
        cfg, P, inputs, targets = load_case(self.case)
        report("loss", f"{result['loss']!r} vs log(vocab) {math.log(cfg.vocab_size)!r}, tokens {result['tokens']}")
        self.assertTrue(math.isfinite(result["loss"]))
        self.assertLess(abs(result["loss"] - math.log(cfg.vocab_size)), 0.1)
        self.assertEqual(result["tokens"], int((targets != 1).sum()))
        self.assertLess(result["tokens"], targets.numel())
        # The loss is the per-sequence masked mean, then the batch mean (spec 4.5), written out by hand.
        with torch.no_grad():
            nll = tp.token_losses(cfg, P, inputs, targets)
        per_seq = []
        for s in range(targets.shape[0]):
            kept = [nll[s, t].item() for t in range(targets.shape[1]) if targets[s, t].item() != 1]
            per_seq.append(sum(kept) / len(kept))
        self.assertAlmostEqual(result["loss"], sum(per_seq) / len(per_seq), delta=1e-12)
        self.assertNotAlmostEqual(result["loss"], nll.mean().item(), delta=1e-9)  # the mask matters

    def test_primal_equals_decode(self):
        # Inner loop alone, random inputs of a realistic scale, a trailing partial mini-batch included.
        gen = torch.Generator().manual_seed(3)
        B, H, T, f = 2, 3, 40, 8
        rnd = lambda *shape, s=1.0: s * torch.randn(*shape, generator=gen, dtype=torch.float64)  # noqa: E731
        args = (rnd(B, H, T, f), rnd(B, H, T, f), rnd(B, H, T, f),
                torch.sigmoid(rnd(B, H, T)) / f, 1.0 / torch.arange(1, 17, dtype=torch.float64) + rnd(16, s=0.05),
                rnd(H, f, f, s=0.3), rnd(H, 1, f, s=0.1), 1 + rnd(H, f, s=0.1), rnd(H, f, s=0.1), 16)
        with torch.no_grad():
            primal = tp.ttt_primal(*args)
            decode = ttt_decode(*args)
        diff = (primal - decode).abs().max().item()
        report("inner loop primal vs decode, max abs diff", diff)
        self.assertLess(diff, 1e-12)
        # Whole tiny model: per-token losses with either inner loop.
        cfg, P, inputs, targets = load_case(self.case)
        with torch.no_grad():
            a = tp.token_losses(cfg, P, inputs, targets)
            b = tp.token_losses(cfg, P, inputs, targets, inner_loop=ttt_decode)
        diff = (a - b).abs().max().item()
        report("model per-token losses primal vs decode, max abs diff", diff)
        self.assertLess(diff, 1e-12)
        # The test is not vacuous: the inner loop changes the output relative to a frozen W1/b1.
        with torch.no_grad():
            frozen = tp.ttt_primal(*args[:3], args[3] * 0, *args[4:])
        self.assertGreater((primal - frozen).abs().max().item(), 1e-2)

    def test_causality(self):
        cfg, P, inputs, targets = load_case(self.case)
        p = 21  # inside the second mini-batch
        changed = inputs.clone()
        changed[0, p] = (inputs[0, p] + 5) % cfg.vocab_size
        with torch.no_grad():
            a = tp.token_losses(cfg, P, inputs, targets)
            b = tp.token_losses(cfg, P, changed, targets)
        before = (a[0, :p] - b[0, :p]).abs().max().item()
        other = (a[1] - b[1]).abs().max().item()
        report("causality: max change before p / in other sequence", f"{before} / {other}")
        self.assertLess(before, 1e-13)
        self.assertLess(other, 1e-13)
        at_and_after = (a[0, p:] - b[0, p:]).abs()
        report("causality: change at p / min change after p", f"{at_and_after[0].item()} / "
               f"{at_and_after[1:].min().item()}")
        self.assertGreater(at_and_after[0].item(), 1e-8)
        self.assertGreater(at_and_after[-1].item(), 1e-8)  # the state carries into later mini-batches

    def test_fp32_matches_fp64(self):
        r64 = run_cli(self.case, "--dtype", "fp64")
        r32 = run_cli(self.case, "--dtype", "fp32")
        case32 = tiny_case(self.tmp.name, dtype="fp32")  # F32 weights file, computed in fp32
        r32f = run_cli(case32, "--dtype", "fp32")
        rel = abs(r32["loss"] - r64["loss"]) / abs(r64["loss"])
        rel_f = abs(r32f["loss"] - r64["loss"]) / abs(r64["loss"])
        report("fp32 vs fp64 loss, relative", f"{rel:.3e} (F32 weights file: {rel_f:.3e})")
        self.assertLess(rel, 1e-5)
        self.assertLess(rel_f, 1e-5)
        self.assertNotEqual(r32["loss"], r64["loss"])  # really computed in another precision
        # per-token losses too
        cfg, P64, inputs, targets = load_case(self.case)
        _, P32, _, _ = load_case(self.case, torch.float32)
        with torch.no_grad():
            a = tp.token_losses(cfg, P64, inputs, targets)
            b = tp.token_losses(cfg, P32, inputs, targets).double()
        rel_tok = ((a - b).abs() / a.abs()).max().item()
        report("fp32 vs fp64 per-token losses, max relative", f"{rel_tok:.3e}")
        self.assertLess(rel_tok, 1e-4)

    def test_grads_match_finite_differences(self):
        grads_path = os.path.join(self.tmp.name, "grads.safetensors")
        result = run_cli(self.case, "--grads", grads_path)
        grads, meta = safetensors_io.load_file(grads_path)
        cfg, P, inputs, targets = load_case(self.case)
        self.assertEqual(float(meta["loss"]), result["loss"])
        self.assertEqual(sorted(grads), sorted(P))
        for name in P:
            self.assertEqual(grads[name].dtype, torch.float64, name)
            self.assertEqual(grads[name].shape, P[name].shape, name)
            self.assertTrue(bool((grads[name] != 0).any()), f"{name}: gradient is identically zero")

        # One scalar of each kind, chosen at random among the entries of its tensor whose gradient is at least
        # the tensor's median |gradient| (a relative error of a near-zero derivative measures only FD noise).
        # Derivative by the 4th-order central stencil (-L(2h) + 8 L(h) - 8 L(-h) + L(-2h)) / 12h.
        gen = torch.Generator().manual_seed(11)
        layer = lambda: int(torch.randint(0, cfg.num_hidden_layers, (1,), generator=gen))  # noqa: E731
        kinds = ["seq_modeling_block.W1", "seq_modeling_block.b1", "seq_modeling_block.learnable_token_idx",
                 "seq_modeling_block.conv_q.weight", "seq_modeling_block.conv_k.bias", "conv.conv.weight",
                 "seq_modeling_block.learnable_ttt_lr_bias", "seq_modeling_block.learnable_ttt_lr_weight",
                 "seq_modeling_block.ttt_norm_weight", "seq_modeling_block.post_norm.bias",
                 "seq_modeling_block.q_proj.weight", "mlp.down_proj.weight", "seq_norm.weight"]
        names = [f"model.layers.{layer()}.{k}" for k in kinds]
        names += ["model.embed_tokens.weight", "model.norm.weight"]

        def loss_with(name, flat_index, delta):
            Q = dict(P)
            Q[name] = P[name].clone()
            Q[name].view(-1)[flat_index] += delta
            with torch.no_grad():
                return tp.loss_of(cfg, Q, inputs, targets).item()

        h = 5e-4
        worst = 0.0
        for name in names:
            magnitude = grads[name].abs().view(-1)
            candidates = torch.nonzero(magnitude >= magnitude.median()).view(-1)
            flat_index = int(candidates[int(torch.randint(0, len(candidates), (1,), generator=gen))])
            L = {k: loss_with(name, flat_index, k * h) for k in (-2, -1, 1, 2)}
            fd = (-L[2] + 8 * L[1] - 8 * L[-1] + L[-2]) / (12 * h)
            g = grads[name].view(-1)[flat_index].item()
            rel = abs(g - fd) / abs(fd)
            worst = max(worst, rel)
            report(f"grad {name}[{flat_index}]", f"autograd {g:.12e} fd {fd:.12e} rel {rel:.2e}")
            self.assertLess(rel, 1e-6, name)
        report("grads vs central differences, worst relative", f"{worst:.2e}")


# --------------------------------------------------------------------------------------------------
# Outer optimizer (adamw.py) and the training mode (spec 4.1, 4.2, 3.3)
# --------------------------------------------------------------------------------------------------

class OptimizerTest(unittest.TestCase):
    def test_schedule_hand_values(self):
        peak, end, W, D = 3e-3, 1e-5, 10, 50
        lr = lambda c: adamw.warmup_cosine_lr(c, peak, end, W, D)  # noqa: E731
        # Hand-computed: warmup is linear from 0; the cosine starts at the peak at c = W and reaches `end`
        # at c = D. cos(pi/4) = 0.7071067811865476, cos(pi * 39/40) = -cos(pi/40) = -0.996917333733128.
        want = {0: 0.0,                       # the first update uses lr 0
                9: 2.7e-3,                    # peak * 9/10
                10: 3e-3,                     # peak
                20: 2.562124637873889e-3,     # end + 2.99e-3 * (1 + cos(pi/4)) / 2
                30: 1.505e-3,                 # mid-decay: (peak + end) / 2
                49: 1.460858606897364e-5,     # end + 2.99e-3 * (1 - cos(pi/40)) / 2
                50: 1e-5,                     # end
                55: 1e-5}                     # stays at end after D
        worst = 0.0
        for c, value in want.items():
            got = lr(c)
            err = abs(got - value) / max(value, 1e-300)
            worst = max(worst, err)
            self.assertLess(abs(got - value), 1e-17, f"lr({c}) = {got!r}, want {value!r}")
        self.assertEqual(lr(0), 0.0)
        report("schedule vs hand values, worst relative", f"{worst:.1e}")
        # No warmup: lr(0) is the peak; constant schedule when end = peak.
        self.assertEqual(adamw.warmup_cosine_lr(0, peak, end, 0, D), peak)
        self.assertEqual([adamw.warmup_cosine_lr(c, 1e-2, 1e-2, 0, 5) for c in range(7)], [1e-2] * 7)
        with self.assertRaises(ValueError):
            adamw.warmup_cosine_lr(0, peak, end, 10, 10)  # needs D > W

    def test_adamw_steps(self):
        # First step from zero moments: mhat = g, vhat = g^2, so p moves by lr * (g / (|g| + eps) + wd * p), i.e.
        # lr * sign(g) up to eps / |g|, whatever |g| is, plus the decoupled decay on every parameter.
        gen = torch.Generator().manual_seed(4)
        P = {"a": torch.randn(5, 7, generator=gen, dtype=torch.float64),
             "b": torch.randn(11, generator=gen, dtype=torch.float64)}
        magnitudes = 10.0 ** torch.randint(-3, 3, (5, 7), generator=gen).to(torch.float64)
        G = {"a": torch.randn(5, 7, generator=gen, dtype=torch.float64) * magnitudes,
             "b": torch.randn(11, generator=gen, dtype=torch.float64)}
        G = {n: torch.where(g.abs() < 1e-3, torch.full_like(g, 1e-3), g) for n, g in G.items()}
        lr, wd, eps = 1e-3, 0.1, 1e-8
        opt = adamw.AdamW(P, beta1=0.9, beta2=0.95, eps=eps, weight_decay=wd)
        Q = opt.step(P, G, lr)
        exact_worst, sign_worst, sign_bound = 0.0, 0.0, 0.0
        for n in P:
            delta = Q[n] - P[n]
            exact = -lr * (G[n] / (G[n].abs() + eps) + wd * P[n])
            exact_worst = max(exact_worst, (delta - exact).abs().max().item())
            sign = -lr * (torch.sign(G[n]) + wd * P[n])
            sign_worst = max(sign_worst, (delta - sign).abs().max().item())
            sign_bound = max(sign_bound, (lr * eps / G[n].abs()).max().item())
        report("AdamW step 1: |delta - lr (g/(|g|+eps) + wd p)| / |delta - lr (sign g + wd p)| (eps bound)",
               f"{exact_worst:.1e} / {sign_worst:.1e} ({sign_bound:.1e})")
        self.assertLess(exact_worst, 1e-15)  # a few ulps of |p| <= 4 (delta is a difference of O(1) numbers)
        self.assertLess(sign_worst, sign_bound + 1e-18)
        self.assertEqual(opt.count, 1)
        self.assertTrue(torch.equal(P["b"], Q["b"] - (Q["b"] - P["b"])))  # inputs untouched

        # Two steps on one scalar, moments written out by hand (b1 0.9, b2 0.95, 1-based bias corrections).
        p0, g1, g2, lr1, lr2 = 0.5, 0.2, -0.1, 1e-3, 2e-3
        opt = adamw.AdamW({"p": torch.tensor(p0, dtype=torch.float64)}, eps=eps, weight_decay=wd)
        p1 = opt.step({"p": torch.tensor(p0, dtype=torch.float64)}, {"p": torch.tensor(g1, dtype=torch.float64)},
                      lr1)
        p2 = opt.step(p1, {"p": torch.tensor(g2, dtype=torch.float64)}, lr2)["p"].item()
        # step 1: m = 0.02, v = 0.002, mhat = 0.02 / 0.1 = 0.2, vhat = 0.002 / 0.05 = 0.04
        hand1 = p0 - lr1 * (0.2 / (0.2 + eps) + wd * p0)
        # step 2: m = 0.018 - 0.01 = 0.008, v = 0.0019 + 0.0005 = 0.0024, corrections 1 - 0.81, 1 - 0.9025
        hand2 = hand1 - lr2 * ((0.008 / 0.19) / (math.sqrt(0.0024 / 0.0975) + eps) + wd * hand1)
        report("AdamW two scalar steps vs hand", f"{p1['p'].item()!r} / {hand1!r}, {p2!r} / {hand2!r}")
        self.assertLess(abs(p1["p"].item() - hand1), 1e-16)
        self.assertLess(abs(p2 - hand2), 1e-16)
        self.assertLess(abs(opt.m["p"].item() - 0.008), 1e-17)
        self.assertLess(abs(opt.v["p"].item() - 0.0024), 1e-17)

    def test_clip_by_global_norm(self):
        # Hand values: norm of {[3, 4], [[12]]} = sqrt(9 + 16 + 144) = 13.
        G = {"x": torch.tensor([3.0, 4.0], dtype=torch.float64), "y": torch.tensor([[12.0]], dtype=torch.float64)}
        clipped, norm, scale = adamw.clip_by_global_norm(G, 1.0)
        self.assertEqual(norm, 13.0)
        self.assertEqual(scale, 1.0 / 13.0)
        self.assertLess(abs(adamw.global_norm(clipped).item() - 1.0), 1e-15)
        self.assertLess((clipped["x"] - torch.tensor([3 / 13, 4 / 13], dtype=torch.float64)).abs().max().item(),
                        1e-16)
        # Random gradients of every magnitude: the clipped global norm is 1 (up to rounding), directions kept.
        gen = torch.Generator().manual_seed(8)
        worst = 0.0
        for size in (1.5, 7.0, 3e4):
            R = {n: torch.randn(*shape, generator=gen, dtype=torch.float64) for n, shape in
                 (("a", (13, 5)), ("b", (40,)), ("c", (2, 3, 4)))}
            total = adamw.global_norm(R).item()
            R = {n: g * (size / total) for n, g in R.items()}
            clipped, norm, scale = adamw.clip_by_global_norm(R, 1.0)
            self.assertLess(abs(norm - size) / size, 1e-15)
            worst = max(worst, abs(adamw.global_norm(clipped).item() - 1.0))
            for n in R:
                self.assertLess((clipped[n] - R[n] / norm).abs().max().item(), 1e-16)
        report("clipped global norm - 1, worst", f"{worst:.1e}")
        self.assertLess(worst, 1e-15)
        # Below the threshold: untouched, bitwise.
        half = {n: g / 26.0 for n, g in G.items()}
        same, norm, scale = adamw.clip_by_global_norm(half, 1.0)
        self.assertEqual(scale, 1.0)
        self.assertLess(abs(norm - 0.5), 1e-16)
        for n in G:
            self.assertTrue(torch.equal(same[n], half[n]))


def run_train_cli(case, batch_file, steps, out, *extra, lr=3e-3, lr_end=1e-5, warmup=2, total=10, global_batch=2):
    cmd = [sys.executable, os.path.join(HERE, "ttt_primal.py"),
           "--config", os.path.join(case, "config.json"),
           "--weights", os.path.join(case, "model.safetensors"),
           "--train-batches", batch_file, "--steps", str(steps), "--global-batch", str(global_batch),
           "--lr", repr(lr), "--lr-end", repr(lr_end), "--warmup-steps", str(warmup), "--total-steps", str(total),
           "--out-weights", out, *extra]
    stdout = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in stdout.strip().splitlines()]


def write_batch(path, inputs, targets):
    rows = torch.cat([inputs, targets[:, -1:]], dim=1)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows.tolist():
            f.write(" ".join(str(t) for t in row) + "\n")


class TrainingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.case = tiny_case(cls.tmp.name, seed=7, steps=3)  # 3 steps x 2 sequences

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_train_three_steps(self):
        cfg, P0, inputs, targets = load_case(self.case)
        self.assertEqual(inputs.shape[0], 6)
        first = os.path.join(self.tmp.name, "first.txt")
        write_batch(first, inputs[:4], targets[:4])
        out = {n: os.path.join(self.tmp.name, f"out{n}.safetensors") for n in (1, 2, 3)}
        log3 = run_train_cli(self.case, os.path.join(self.case, "batch.txt"), 3, out[3])
        log2 = run_train_cli(self.case, first, 2, out[2])
        log1 = run_train_cli(self.case, first, 1, out[1], global_batch=4)  # one step on 4 sequences
        report("3 steps (lr 3e-3, warmup 2, D 10)", json.dumps(log3))
        self.assertEqual([r["step"] for r in log3], [1, 2, 3])
        self.assertEqual([r["lr"] for r in log3], [0.0, 1.5e-3, 3e-3])
        for r in log3:
            self.assertTrue(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0)
            self.assertLess(abs(r["loss"] - math.log(cfg.vocab_size)), 0.2)
        self.assertEqual(log2, log3[:2])  # deterministic; step s depends only on sequences s*G .. s*G+G-1

        # Step 1 has lr(0) = 0: the weights after it are the initial weights, bitwise (decay is scaled by lr too).
        W1, meta = safetensors_io.load_file(out[1])
        self.assertEqual(meta["steps"], "1")
        self.assertEqual(sorted(W1), sorted(P0))
        for n in P0:
            self.assertEqual(W1[n].dtype, torch.float64, n)
            self.assertTrue(torch.equal(W1[n], P0[n]), f"{n} changed in the lr-0 step")
        # The step-1 loss is the loss of the first global batch (spec 4.5).
        with torch.no_grad():
            want = tp.loss_of(cfg, P0, inputs[:2], targets[:2]).item()
        self.assertLess(abs(log3[0]["loss"] - want) / want, 1e-14)
        self.assertLess(abs(log1[0]["loss"] - tp.loss_of(cfg, P0, inputs[:4], targets[:4]).item()) / want, 1e-14)

        # After 3 steps every parameter has moved, by at most ~ (1.5e-3 + 3e-3) * (1 + wd |p|) per entry (times
        # 1.0004: with changing gradients |mhat| / sqrt(vhat) can exceed 1 a little from the 2nd update on).
        W3, _ = safetensors_io.load_file(out[3])
        moved = []
        for n in P0:
            step = (W3[n] - P0[n]).abs()
            self.assertTrue(bool((step > 0).all()), f"{n}: not every entry moved")
            moved.append(step.max().item())
            self.assertLess(step.max().item(), 4.5e-3 * 1.0004 * (1 + 0.1 * P0[n].abs().max().item()), n)
        report("3 steps: largest / smallest per-tensor max |change|", f"{max(moved):.3e} / {min(moved):.3e}")
        # The step-3 loss is the loss of the 2-step weights (as written) on the third global batch.
        W2, _ = safetensors_io.load_file(out[2])
        with torch.no_grad():
            third = tp.loss_of(cfg, W2, inputs[4:6], targets[4:6]).item()
        self.assertLess(abs(log3[2]["loss"] - third) / third, 1e-14)

        # fp32 mode: F32 weights out, the same run to fp32 accuracy.
        out32 = os.path.join(self.tmp.name, "out32.safetensors")
        log32 = run_train_cli(self.case, os.path.join(self.case, "batch.txt"), 3, out32, "--dtype", "fp32")
        W32, _ = safetensors_io.load_file(out32)
        rel_loss = max(abs(a["loss"] - b["loss"]) / a["loss"] for a, b in zip(log3, log32))
        num = sum(((W32[n].double() - W3[n]) ** 2).sum().item() for n in W3)
        den = sum(((W3[n] - P0[n]) ** 2).sum().item() for n in W3)
        report("fp32 vs fp64 training: losses rel / weight change rel by norm", f"{rel_loss:.1e} / "
               f"{math.sqrt(num / den):.1e}")
        self.assertTrue(all(t.dtype == torch.float32 for t in W32.values()))
        self.assertLess(rel_loss, 1e-5)

    def test_clip_inside_training(self):
        # The tiny case's gradient norm is ~0.85, so clip at 0.5 to make train() clip. Replayed by hand with a
        # manual scale 0.5 / norm; without clipping the weights differ (AdamW is scale-invariant only up to eps).
        cfg, P, inputs, targets = load_case(self.case)
        schedule = lambda s: 1e-3  # noqa: E731
        trained, log = tp.train(cfg, P, inputs[:4], targets[:4], 2, 2, schedule, adamw.AdamW(P), grad_clip=0.5)
        Q, opt = dict(P), adamw.AdamW(P)
        for s in range(2):
            loss, grads = tp.loss_and_grads(cfg, Q, inputs[2 * s:2 * s + 2], targets[2 * s:2 * s + 2])
            norm = math.sqrt(sum((g * g).sum().item() for g in grads.values()))
            self.assertGreater(norm, 0.5)
            self.assertLess(abs(log[s]["grad_norm"] - norm) / norm, 1e-14)  # the logged norm is unclipped
            Q = opt.step(Q, {n: g * (0.5 / norm) for n, g in grads.items()}, 1e-3)
        diff = max((trained[n] - Q[n]).abs().max().item() for n in P)
        unclipped, _ = tp.train(cfg, P, inputs[:4], targets[:4], 2, 2, schedule, adamw.AdamW(P), grad_clip=1e9)
        effect = max((trained[n] - unclipped[n]).abs().max().item() for n in P)
        report("clip 0.5 in train(): vs hand replay / vs no clipping, max abs weight diff",
               f"{diff:.1e} / {effect:.1e}")
        self.assertLess(diff, 1e-15)
        self.assertGreater(effect, 1e-10)

    def test_constant_lr_decreases_loss(self):
        cfg, P, inputs, targets = load_case(self.case)
        steps = 5
        reps = torch.arange(2).repeat(steps)  # the first global batch, 5 times
        schedule = lambda s: adamw.warmup_cosine_lr(s, 1e-2, 1e-2, 0, steps)  # noqa: E731 - constant 1e-2
        optimizer = adamw.AdamW(P)
        _, log = tp.train(cfg, P, inputs[reps], targets[reps], steps, 2, schedule, optimizer)
        losses = [r["loss"] for r in log]
        report("constant lr 1e-2, repeated batch: losses", [f"{x:.4f}" for x in losses])
        self.assertEqual([r["lr"] for r in log], [1e-2] * steps)
        for a, b in zip(losses, losses[1:]):
            self.assertLess(b, a)
        self.assertLess(losses[-1], losses[0] - 0.1)
        with self.assertRaises(ValueError):  # the file must hold exactly steps * G sequences
            tp.train(cfg, P, inputs, targets, 2, 2, schedule, adamw.AdamW(P))


# --------------------------------------------------------------------------------------------------
# Multi-step loss mode and state passing (truncated BPTT across steps, issue 6 item 3)
# --------------------------------------------------------------------------------------------------

def run_steps_cli(case, steps, global_batch, *extra, batch_file=None):
    cmd = [sys.executable, os.path.join(HERE, "ttt_primal.py"),
           "--config", os.path.join(case, "config.json"),
           "--weights", os.path.join(case, "model.safetensors"),
           "--batch", batch_file or os.path.join(case, "batch.txt"),
           "--steps", str(steps), "--global-batch", str(global_batch), *extra]
    stdout = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in stdout.strip().splitlines()]


def concatenated_tail_loss(cfg, P, inputs, targets, steps, G, row_step):
    """Loss of step `row_step` computed without state passing: row r's windows of steps 0..row_step joined into
    one sequence (the windows share their boundary token), the spec 4.5 masked mean over its last T targets."""
    T = inputs.shape[1]
    ins = torch.cat([inputs[s * G:(s + 1) * G] for s in range(row_step + 1)], dim=1)
    tgs = torch.cat([targets[s * G:(s + 1) * G] for s in range(row_step + 1)], dim=1)
    with torch.no_grad():
        nll = tp.token_losses(cfg, P, ins, tgs)[:, -T:]
    mask = (tgs[:, -T:] != tp.BOS_ID).to(nll.dtype)
    return ((nll * mask).sum(dim=1) / mask.sum(dim=1)).mean().item()


class StatePassingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.steps, cls.G, cls.T = 3, TINY["batch"], 32   # T = 2 mini-batches (keeps the tests fast)
        out = os.path.join(cls.tmp.name, "stream")
        sizes = dict(TINY, seq=cls.T)
        make_case.write_case(out, 9, steps=cls.steps, stream=True, **sizes)  # row r of step s+1 continues row r
        cls.case = out
        cls.cfg, cls.P, cls.inputs, cls.targets = load_case(out)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_stream_case_is_contiguous(self):
        G, T = self.G, self.T
        self.assertEqual(list(self.inputs.shape), [self.steps * G, T])
        for s in range(1, self.steps):
            prev, cur = slice((s - 1) * G, s * G), slice(s * G, (s + 1) * G)
            self.assertTrue(torch.equal(self.inputs[cur][:, 0], self.targets[prev][:, -1]), "shared boundary")
        self.assertTrue(bool((self.inputs[:G, 0] == tp.BOS_ID).all()))
        self.assertFalse(bool((self.inputs[G:, 0] == tp.BOS_ID).any()))  # later windows are not new documents
        for s in range(self.steps):
            self.assertTrue(bool((self.targets[s * G:(s + 1) * G] == tp.BOS_ID).any(dim=1).all()))

    def test_multi_step_without_state_passing(self):
        # The multi-step loss mode without state passing = N independent --batch evaluations.
        # (One step through the CLI's --batch, every step through loss_of, which is what --batch evaluates.)
        log = run_steps_cli(self.case, self.steps, self.G)
        self.assertEqual([r["step"] for r in log], [1, 2, 3])
        path = os.path.join(self.tmp.name, "step1.txt")
        write_batch(path, self.inputs[self.G:2 * self.G], self.targets[self.G:2 * self.G])
        single = run_cli(self.case, "--batch", path)  # the later --batch overrides the case's file
        self.assertEqual(single, {"loss": log[1]["loss"], "tokens": log[1]["tokens"]})
        worst = 0.0
        for s in range(self.steps):
            rows = slice(s * self.G, (s + 1) * self.G)
            with torch.no_grad():
                want = tp.loss_of(self.cfg, self.P, self.inputs[rows], self.targets[rows]).item()
            worst = max(worst, abs(want - log[s]["loss"]))
            self.assertEqual(int((self.targets[rows] != tp.BOS_ID).sum()), log[s]["tokens"])
        report("multi-step (no state passing) vs independent evaluations, max abs diff", worst)
        self.assertEqual(worst, 0.0)
        with self.assertRaises(ValueError):  # needs exactly steps * G sequences
            tp.evaluate_steps(self.cfg, self.P, self.inputs, self.targets, 2, self.G)

    def test_state_passing_continues_the_sequence(self):
        off, _ = tp.evaluate_steps(self.cfg, self.P, self.inputs, self.targets, self.steps, self.G)
        on = run_steps_cli(self.case, self.steps, self.G, "--state-passing")
        self.assertEqual(on[0], off[0])  # step 0 starts from W1 / b1 and zero conv history, as without it
        cfg, P, inputs, targets, G = self.cfg, self.P, self.inputs, self.targets, self.G
        # Step s with state passing = the windows 0..s of each row as ONE sequence, loss over its last T targets.
        diffs, effects = [], []
        for s in (1, 2):
            want = concatenated_tail_loss(cfg, P, inputs, targets, self.steps, G, s)
            diffs.append(abs(on[s]["loss"] - want))
            effects.append(abs(on[s]["loss"] - off[s]["loss"]))
        report("state passing step 2 / step 3 vs concatenated sequences (2T+1, 3T+1 tokens), abs diff",
               f"{diffs[0]:.1e} / {diffs[1]:.1e}")
        report("state passing vs fresh start, |loss difference| at steps 2 / 3", f"{effects[0]:.2e} / "
               f"{effects[1]:.2e}")
        self.assertLess(max(diffs), 1e-12)
        self.assertGreater(min(effects), 1e-5)

        # Both halves of the carried state matter: dropping either breaks the agreement.
        rows0, rows1 = slice(0, G), slice(G, 2 * G)
        with torch.no_grad():
            state = []
            tp.loss_of(cfg, P, inputs[rows0], targets[rows0], state_out=state)
            want = concatenated_tail_loss(cfg, P, inputs, targets, self.steps, G, 1)
            full = tp.loss_of(cfg, P, inputs[rows1], targets[rows1], state_in=state).item()
            K1, f = cfg.conv_kernel - 1, cfg.head_dim
            no_tails = [dict(st, **{k: torch.zeros_like(st[k]) for k in ("pre_conv", "conv_q", "conv_k")})
                        for st in state]
            no_inner = []
            for layer, st in enumerate(state):
                sb = f"model.layers.{layer}.seq_modeling_block."
                no_inner.append(dict(st, W=P[sb + "W1"].unsqueeze(0).expand(G, -1, f, f),
                                     b=P[sb + "b1"][:, 0, :].unsqueeze(0).expand(G, -1, f)))
            self.assertEqual(list(state[0]["conv_q"].shape), [G, K1, cfg.hidden_size])
            self.assertTrue(torch.equal(state[0]["conv_q"], state[0]["conv_k"]))  # share_qk: same input
            a = abs(tp.loss_of(cfg, P, inputs[rows1], targets[rows1], state_in=no_tails).item() - want)
            b = abs(tp.loss_of(cfg, P, inputs[rows1], targets[rows1], state_in=no_inner).item() - want)
        report("step 2: full state / without conv tails / without inner W,b vs concatenated, abs diff",
               f"{abs(full - want):.1e} / {a:.1e} / {b:.1e}")
        self.assertEqual(full, on[1]["loss"])
        self.assertGreater(a, 1e-6)
        self.assertGreater(b, 1e-6)

        # --reset-every 2: the 0-based step 2 starts fresh again (= no state passing), step 1 still carries.
        reset, _ = tp.evaluate_steps(cfg, P, inputs, targets, self.steps, G, state_passing=True, reset_every=2)
        self.assertEqual([r["loss"] for r in reset], [on[0]["loss"], on[1]["loss"], off[2]["loss"]])

    def test_state_passing_gradients(self):
        path = os.path.join(self.tmp.name, "grads_sp.safetensors")
        log = run_steps_cli(self.case, self.steps, self.G, "--state-passing", "--grads-step", "2", "--grads", path)
        grads, meta = safetensors_io.load_file(path)
        self.assertEqual((meta["step"], meta["state_passing"]), ("2", "true"))
        self.assertEqual(float(meta["loss"]), log[1]["loss"])
        self.assertEqual(sorted(grads), sorted(self.P))
        cfg, P, inputs, targets, G = self.cfg, self.P, self.inputs, self.targets, self.G
        for name in P:
            initial = name.endswith(".W1") or name.endswith(".b1")
            if initial:  # truncated BPTT: W1 / b1 only enter through the detached state of step 0
                self.assertTrue(bool((grads[name] == 0).all()), f"{name}: gradient must be exactly zero")
            else:
                self.assertTrue(bool((grads[name] != 0).any()), f"{name}: gradient is identically zero")
        # Step 1 (fresh) with state passing has the same gradients as the plain --grads of its batch.
        _, g1 = tp.evaluate_steps(cfg, P, inputs, targets, self.steps, G, state_passing=True, grads_step=0)
        _, plain = tp.loss_and_grads(cfg, P, inputs[:G], targets[:G])
        self.assertEqual(max((g1[n] - plain[n]).abs().max().item() for n in P), 0.0)
        self.assertTrue(bool((g1["model.layers.0.seq_modeling_block.W1"] != 0).any()))

        # Step-2 gradients vs 4th-order central differences of the step-2 loss with the carried state held fixed
        # (the state is a constant under truncated BPTT; perturbing a parameter does not re-run step 1). Entries
        # among the largest tenth of |gradient| of their tensor; FD rounding noise is ~1e-12 absolute.
        with torch.no_grad():
            state = []
            tp.loss_of(cfg, P, inputs[:G], targets[:G], state_out=state)
        rows = slice(G, 2 * G)

        def loss_with(name, flat_index, delta):
            Q = dict(P)
            Q[name] = P[name].clone()
            Q[name].view(-1)[flat_index] += delta
            with torch.no_grad():
                return tp.loss_of(cfg, Q, inputs[rows], targets[rows], state_in=state).item()

        gen = torch.Generator().manual_seed(12)
        names = ["model.layers.0.seq_modeling_block.learnable_token_idx", "model.layers.1.conv.conv.weight",
                 "model.layers.0.seq_modeling_block.conv_k.weight", "model.layers.1.seq_modeling_block.ttt_norm_bias"]
        h, worst = 5e-4, 0.0
        for name in names:
            magnitude = grads[name].abs().view(-1)
            candidates = torch.nonzero(magnitude >= torch.quantile(magnitude, 0.9)).view(-1)
            flat_index = int(candidates[int(torch.randint(0, len(candidates), (1,), generator=gen))])
            L = {k: loss_with(name, flat_index, k * h) for k in (-2, -1, 1, 2)}
            fd = (-L[2] + 8 * L[1] - 8 * L[-1] + L[-2]) / (12 * h)
            g = grads[name].view(-1)[flat_index].item()
            worst = max(worst, abs(g - fd) / abs(fd))
            report(f"step-2 grad {name}[{flat_index}]",
                   f"autograd {g:.12e} fd {fd:.12e} abs {abs(g - fd):.1e} rel {abs(g - fd) / abs(fd):.2e}")
            self.assertLess(abs(g - fd), 1e-6 * abs(fd) + 2e-11, name)  # 2e-11: FD rounding floor
        report("state-passing step-2 grads vs central differences (state fixed), worst relative", f"{worst:.2e}")
        # With --reset-every 1 every step is fresh: W1 gets a gradient again at step 2.
        _, gr = tp.evaluate_steps(cfg, P, inputs, targets, self.steps, G, state_passing=True, reset_every=1,
                                  grads_step=1)
        _, plain2 = tp.loss_and_grads(cfg, P, inputs[rows], targets[rows])
        self.assertEqual(max((gr[n] - plain2[n]).abs().max().item() for n in P), 0.0)

    def test_training_with_state_passing(self):
        out_on = os.path.join(self.tmp.name, "trained_sp.safetensors")
        batch = os.path.join(self.case, "batch.txt")
        on = run_train_cli(self.case, batch, self.steps, out_on, "--state-passing")   # warmup 2: lr(0) = 0
        schedule = lambda s: adamw.warmup_cosine_lr(s, 3e-3, 1e-5, 2, 10)  # noqa: E731 - the CLI's schedule
        W_off, off = tp.train(self.cfg, self.P, self.inputs, self.targets, self.steps, self.G, schedule,
                              adamw.AdamW(self.P))
        self.assertEqual(on[0], off[0])
        # The first update has lr 0, so step 2 runs with the initial weights and the state of step 1: its loss and
        # gradient norm are those of the multi-step loss mode with state passing.
        loss_mode, grads = tp.evaluate_steps(self.cfg, self.P, self.inputs, self.targets, self.steps, self.G,
                                             state_passing=True, grads_step=1)
        norm = math.sqrt(sum((g * g).sum().item() for g in grads.values()))
        report("training with state passing: losses", [f"{r['loss']:.6f}" for r in on])
        report("training step 2 vs loss mode: loss / grad norm rel diff",
               f"{abs(on[1]['loss'] - loss_mode[1]['loss']):.1e} / {abs(on[1]['grad_norm'] - norm) / norm:.1e}")
        self.assertEqual(on[1]["loss"], loss_mode[1]["loss"])
        self.assertLess(abs(on[1]["grad_norm"] - norm) / norm, 1e-14)
        self.assertGreater(abs(on[2]["loss"] - off[2]["loss"]), 1e-5)
        W_on, meta = safetensors_io.load_file(out_on)
        self.assertEqual(meta["state_passing"], "true")
        self.assertGreater(max((W_on[n] - W_off[n]).abs().max().item() for n in W_on), 1e-6)


if __name__ == "__main__":
    unittest.main(verbosity=2)
