#!/usr/bin/python3
"""Writes a deterministic random test case for the TTT-Linear (M) oracle from a seed.

  /usr/bin/python3 make_case.py --out DIR --seed S --vocab 32000 --hidden 64 --intermediate 128 \
      --layers 2 --heads 4 --batch 2 --seq 64 [--dtype fp64|fp32] [--steps N [--stream]]

writes
  DIR/config.json        Hugging Face TTT config (spec 5.1), Mamba backbone (share_qk, use_gate, pre_conv, tied)
  DIR/model.safetensors  every parameter of spec 5.2 filled with seeded random values of realistic scale;
                         no parameter is zero (norm scales 1 +- 0.1, biases and learnable_token_idx small random,
                         projections and W1 ~ N(0, 0.02), conv kernels ~ N(0, 0.5) clipped at 2 sigma)
  DIR/batch.txt          `batch` sequences of seq+1 token ids; a few targets are BOS (1) so masking matters.
                         With --steps N (default 1): N * batch sequences, the input of the oracle's training
                         mode (step s uses sequences s*batch .. s*batch+batch-1); N = 1 gives the same file.
                         With --stream (state passing): row r of step s+1 continues row r of step s, i.e. the
                         rows are windows of `batch` token streams of N*seq+1 ids: the sequence of (step s,
                         row r) is stream_r[s*seq .. s*seq+seq] (the boundary token is shared: the last target
                         of step s is the first input of step s+1); only stream position 0 is a BOS input.

All randomness comes from one torch.Generator seeded with S, drawn in a fixed order in float64 on the CPU.
"""

import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_io  # noqa: E402
from ttt_primal import Config, parameter_shapes  # noqa: E402


def make_config(vocab, hidden, intermediate, layers, heads, mini_batch_size=16):
    return {
        "model_type": "ttt",
        "architectures": ["TTTForCausalLM"],
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "hidden_act": "silu",
        "max_position_embeddings": 2048,
        "initializer_range": 0.02,
        "rms_norm_eps": 1e-6,
        "use_cache": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pretraining_tp": 1,
        "tie_word_embeddings": True,
        "rope_theta": 10000.0,
        "use_gate": True,
        "share_qk": True,
        "ttt_layer_type": "linear",
        "ttt_base_lr": 1.0,
        "mini_batch_size": mini_batch_size,
        "pre_conv": True,
        "conv_kernel": 4,
        "scan_checkpoint_group_size": 0,
    }


def _normal(gen, shape, std, mean=0.0):
    return mean + std * torch.randn(shape, generator=gen, dtype=torch.float64)


def _uniform(gen, shape, low, high):
    return low + (high - low) * torch.rand(shape, generator=gen, dtype=torch.float64)


def random_value(name, shape, gen):
    """A realistic random value for parameter `name` (init of spec 3.2 perturbed so nothing is zero)."""
    leaf = name.split("seq_modeling_block.")[-1]
    if name.endswith("norm.weight") or leaf == "ttt_norm_weight":
        return _uniform(gen, shape, 0.9, 1.1)                   # RMSNorm / LayerNorm scales
    if name.endswith("post_norm.bias") or leaf == "ttt_norm_bias":
        return _normal(gen, shape, 0.02)
    if name.endswith("conv.weight") or name.endswith("conv_q.weight") or name.endswith("conv_k.weight"):
        return torch.clamp(_normal(gen, shape, 0.5), -1.0, 1.0)  # LeCun-normal-like, fan_in 4
    if name.endswith(".bias") and ("conv" in name):
        return _normal(gen, shape, 0.05)
    if leaf == "learnable_token_idx":
        return _uniform(gen, shape, -0.05, 0.05)
    if leaf == "learnable_ttt_lr_bias":
        return _normal(gen, shape, 0.1)
    if leaf == "b1":
        return _normal(gen, shape, 0.02)
    # embedding, q/v/o/g projections, SwiGLU, learnable_ttt_lr_weight, W1
    return _normal(gen, shape, 0.02)


def make_parameters(cfg, seed):
    gen = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in sorted(parameter_shapes(cfg).items()):
        value = random_value(name, shape, gen)
        # no exact zeros anywhere (a zero would hide a missing term in an implementation)
        value = torch.where(value == 0, torch.full_like(value, 1e-3), value)
        params[name] = value
    return params


def make_tokens(vocab, batch, seq, seed, steps=1):
    """[steps * batch, seq + 1] token ids; sequence s has BOS at position 0 (an input only) and BOS targets at
    a few positions (never all of them)."""
    gen = torch.Generator().manual_seed(seed * 7919 + 17)
    rows = steps * batch
    tokens = torch.randint(3, vocab, (rows, seq + 1), generator=gen)
    tokens[:, 0] = 1
    for s in range(rows):
        count = 2 + s % batch  # a different number of masked targets per sequence of a batch
        positions = torch.randperm(seq, generator=gen)[:count] + 1
        tokens[s, positions] = 1
        tokens[s, int(torch.randint(1, seq + 1, (1,), generator=gen))] = 2  # an EOS too
    return tokens


def make_stream_tokens(vocab, batch, seq, seed, steps):
    """[steps * batch, seq + 1] token ids cut from `batch` streams of steps*seq+1 ids: the sequence of step s,
    row r (file row s*batch + r) is stream_r[s*seq .. s*seq+seq], so consecutive steps share their boundary
    token and row r of step s+1 continues row r of step s. Each stream starts with BOS (an input only); every
    step's window has 2 + r mod batch BOS targets and one EOS."""
    gen = torch.Generator().manual_seed(seed * 7919 + 29)
    streams = torch.randint(3, vocab, (batch, steps * seq + 1), generator=gen)
    streams[:, 0] = 1
    for r in range(batch):
        for s in range(steps):
            count = 2 + r % batch
            positions = s * seq + 1 + torch.randperm(seq, generator=gen)[:count]
            streams[r, positions] = 1
            streams[r, s * seq + 1 + int(torch.randint(0, seq, (1,), generator=gen))] = 2
    rows = [streams[r, s * seq:s * seq + seq + 1] for s in range(steps) for r in range(batch)]
    return torch.stack(rows)


def write_case(out, seed, vocab, hidden, intermediate, layers, heads, batch, seq, dtype="fp64", steps=1,
               stream=False):
    fields = make_config(vocab, hidden, intermediate, layers, heads)
    cfg = Config(fields)
    if seq % cfg.mini_batch_size or seq < 2 * cfg.mini_batch_size:
        raise ValueError(f"--seq must be a multiple of {cfg.mini_batch_size} spanning several mini-batches")
    if steps < 1:
        raise ValueError("--steps must be at least 1")
    if vocab < 4:
        raise ValueError("--vocab must be at least 4")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(fields, f, indent=2)
        f.write("\n")
    torch_dtype = {"fp64": torch.float64, "fp32": torch.float32}[dtype]
    params = {n: t.to(torch_dtype) for n, t in make_parameters(cfg, seed).items()}
    safetensors_io.save_file(os.path.join(out, "model.safetensors"), params,
                             {"format": "pt", "seed": str(seed)})
    tokens = make_stream_tokens(vocab, batch, seq, seed, steps) if stream else \
        make_tokens(vocab, batch, seq, seed, steps)
    with open(os.path.join(out, "batch.txt"), "w", encoding="utf-8") as f:
        if stream:
            f.write(f"# make_case seed {seed}: {steps} steps x {batch} sequences of {seq}+1 token ids, row r of "
                    f"step s+1 continues row r of step s (shared boundary token; for --state-passing)\n")
        elif steps == 1:
            f.write(f"# make_case seed {seed}: {batch} sequences of {seq}+1 token ids (inputs = first {seq}, "
                    f"targets = last {seq})\n")
        else:
            f.write(f"# make_case seed {seed}: {steps} steps x {batch} sequences of {seq}+1 token ids "
                    f"(inputs = first {seq}, targets = last {seq}; "
                    f"step s uses sequences s*{batch} .. s*{batch}+{batch - 1})\n")
        for row in tokens.tolist():
            f.write(" ".join(str(t) for t in row) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--intermediate", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--dtype", choices=["fp64", "fp32"], default="fp64")
    parser.add_argument("--steps", type=int, default=1, help="write steps * batch sequences (training input)")
    parser.add_argument("--stream", action="store_true",
                        help="row r of step s+1 continues row r of step s (state-passing input)")
    args = parser.parse_args(argv)
    write_case(args.out, args.seed, args.vocab, args.hidden, args.intermediate, args.layers, args.heads,
               args.batch, args.seq, args.dtype, args.steps, args.stream)
    return 0


if __name__ == "__main__":
    sys.exit(main())
