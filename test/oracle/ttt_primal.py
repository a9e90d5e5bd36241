#!/usr/bin/python3
"""Independent reference ("oracle") for the TTT-Linear language model with the Mamba backbone "(M)".

Written from /work/shared/spec/TTT_MODEL.md (sections 2.1-2.8, 3.1, 4.5, 5.1-5.2), deliberately in the
PER-TOKEN PRIMAL FORM of spec 2.5 so that it shares no structure with the compiler's dual form:

  for every mini-batch with start state (W0, b0) and every head:
    grad_j = d/d(W, b) of  1/2 || LN(k_j W + b) - (v_j - k_j) ||^2  at (W0, b0)   (torch.autograd, per token)
    W_i    = W0 - tau_i * sum_{j<=i} eta_j * gradW_j
    b_i    = b0 - tau_i * sum_{j<=i} eta_j * gradb_j
    o_i    = q_i + LN(q_i W_i + b_i)
  and (W_b, b_b) of the last token is carried to the next mini-batch. Every sequence starts from W1/b1.

Conventions: a token is a row vector; HF weights `*.weight` of nn.Linear are [out, in], so a projection is
x @ weight.T. Parameters are kept in a dict keyed by the Hugging Face names of spec 5.2.

CLI:
  /usr/bin/python3 ttt_primal.py --config C.json --weights W.safetensors --batch B.txt
                                 [--dtype fp64|fp32] [--grads OUT.safetensors]
prints {"loss": <float>, "tokens": <unmasked targets>}; --grads writes d loss / d parameter for every
parameter (same names, layouts and dtype).

Training mode (outer optimizer of spec 4.1-4.2 in adamw.py):
  /usr/bin/python3 ttt_primal.py --config C.json --weights W.safetensors --train-batches B.txt --steps N
      --lr PEAK --lr-end END --warmup-steps W --total-steps D --global-batch G --out-weights OUT.safetensors
      [--weight-decay 0.1 --beta1 0.9 --beta2 0.95 --eps 1e-8 --grad-clip 1.0] [--dtype fp64|fp32]
step s (0-based) uses sequences s*G .. s*G+G-1 of B.txt (exactly N*G sequences): loss of spec 4.5 and its
gradients, clip by the global norm, AdamW with lr = schedule(s); prints one JSON line per step
{"step": s+1, "loss", "grad_norm" (unclipped), "lr" (the lr applied)} and writes the final weights to OUT.

Multi-step loss mode (fixed weights): --batch B.txt --steps N --global-batch G prints one line per step
{"step": s+1, "loss", "tokens"} (step s uses sequences s*G .. s*G+G-1); with --grads OUT --grads-step S it
writes the gradients of the loss of printed step S.

State passing (--state-passing [--reset-every K], both multi-step modes; truncated BPTT): row r of step s+1
continues row r of step s. Each layer's inner state after the last mini-batch (W, b per row and head) and the
last K-1 inputs of its three causal convs (pre-conv, conv_q, conv_k) become row r's initial state (what x[<0]
means), detached. Step 0, and every 0-based step that is a multiple of K, start from W1/b1 and zero history.
"""

import argparse
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import adamw  # noqa: E402
import safetensors_io  # noqa: E402

LN_EPS = 1e-6   # ttt_norm and post_norm LayerNorms (spec 2.4, 2.7)
BOS_ID = 1      # targets equal to BOS are masked out of the loss (spec 4.4, 4.5)
DTYPES = {"fp64": torch.float64, "fp32": torch.float32}


# --------------------------------------------------------------------------------------------------
# Configuration and parameters
# --------------------------------------------------------------------------------------------------

class Config:
    """The fields of a Hugging Face TTT config.json (spec 5.1) that the (M) model needs."""

    def __init__(self, fields):
        self.vocab_size = int(fields["vocab_size"])
        self.hidden_size = int(fields["hidden_size"])
        self.intermediate_size = int(fields["intermediate_size"])
        self.num_hidden_layers = int(fields["num_hidden_layers"])
        self.num_attention_heads = int(fields["num_attention_heads"])
        self.mini_batch_size = int(fields.get("mini_batch_size", 16))
        self.rope_theta = float(fields.get("rope_theta", 10000.0))
        self.rms_norm_eps = float(fields.get("rms_norm_eps", 1e-6))
        self.ttt_base_lr = float(fields.get("ttt_base_lr", 1.0))
        self.conv_kernel = int(fields.get("conv_kernel", 4))
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        self.head_dim = self.hidden_size // self.num_attention_heads
        if self.head_dim % 2:
            raise ValueError("head_dim must be even for RoPE")
        # Only the paper's TTT-Linear (M) is implemented.
        for flag, default in (("share_qk", False), ("use_gate", False), ("pre_conv", False),
                              ("tie_word_embeddings", True)):
            if not fields.get(flag, default):
                raise ValueError(f"config: only the Mamba backbone (M) is implemented; {flag} must be true")
        if fields.get("ttt_layer_type", "linear") != "linear":
            raise ValueError("config: only ttt_layer_type 'linear' is implemented")

    @staticmethod
    def load(path):
        with open(path) as f:
            return Config(json.load(f))


def parameter_shapes(cfg):
    """{HF name: shape} of every parameter (spec 5.2). lm_head is tied to the embedding and absent."""
    d, I, H, f, V = (cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads, cfg.head_dim,
                     cfg.vocab_size)
    K, b = cfg.conv_kernel, cfg.mini_batch_size
    shapes = {"model.embed_tokens.weight": [V, d], "model.norm.weight": [d]}
    for layer in range(cfg.num_hidden_layers):
        p = f"model.layers.{layer}."
        s = p + "seq_modeling_block."
        shapes.update({
            s + "learnable_token_idx": [b],
            s + "learnable_ttt_lr_weight": [H, 1, d],
            s + "learnable_ttt_lr_bias": [H, 1],
            s + "ttt_norm_weight": [H, f],
            s + "ttt_norm_bias": [H, f],
            s + "W1": [H, f, f],
            s + "b1": [H, 1, f],
            s + "q_proj.weight": [d, d],
            s + "v_proj.weight": [d, d],
            s + "o_proj.weight": [d, d],
            s + "g_proj.weight": [d, d],
            s + "conv_q.weight": [d, 1, K],
            s + "conv_q.bias": [d],
            s + "conv_k.weight": [d, 1, K],
            s + "conv_k.bias": [d],
            s + "post_norm.weight": [d],
            s + "post_norm.bias": [d],
            p + "mlp.gate_proj.weight": [I, d],
            p + "mlp.up_proj.weight": [I, d],
            p + "mlp.down_proj.weight": [d, I],
            p + "conv.norm.weight": [d],
            p + "conv.conv.weight": [d, 1, K],
            p + "conv.conv.bias": [d],
            p + "seq_norm.weight": [d],
            p + "ffn_norm.weight": [d],
        })
    return shapes


def load_parameters(cfg, path, dtype):
    """Read a safetensors file, check names/shapes against the config, convert to `dtype`."""
    tensors, _ = safetensors_io.load_file(path)
    head = tensors.pop("lm_head.weight", None)  # tolerated only as an exact copy of the tied embedding
    if head is not None and not torch.equal(head, tensors.get("model.embed_tokens.weight")):
        raise ValueError("lm_head.weight differs from model.embed_tokens.weight (the head is tied)")
    expected = parameter_shapes(cfg)
    missing = sorted(set(expected) - set(tensors))
    extra = sorted(set(tensors) - set(expected))
    if missing or extra:
        raise ValueError(f"weights do not match the config: missing {missing[:5]}, unexpected {extra[:5]}")
    params = {}
    for name, shape in expected.items():
        if list(tensors[name].shape) != shape:
            raise ValueError(f"{name}: shape {list(tensors[name].shape)}, expected {shape}")
        params[name] = tensors[name].to(dtype)
    return params


def load_batch(path):
    """Token batch file: '#' comment lines, otherwise one sequence of T+1 ids per line.
    Returns (inputs [B, T], targets [B, T]) as int64 tensors."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            rows.append([int(tok) for tok in line.split(" ")])
    if not rows:
        raise ValueError(f"{path}: no sequences")
    if len({len(r) for r in rows}) != 1:
        raise ValueError(f"{path}: sequences have different lengths")
    tokens = torch.tensor(rows, dtype=torch.int64)
    return tokens[:, :-1], tokens[:, 1:]


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------

def linear(x, weight):
    """x @ W with the HF [out, in] layout."""
    return x @ weight.t()


def rms_norm(x, weight, eps):
    """weight * x / sqrt(mean(x^2) + eps) over the last axis (spec 3.1)."""
    return weight * (x / torch.sqrt((x * x).mean(dim=-1, keepdim=True) + eps))


def layer_norm(x, weight, bias, eps=LN_EPS):
    """LayerNorm over the last axis, biased variance (spec 2.4, 2.7)."""
    mean = x.mean(dim=-1, keepdim=True)
    centered = x - mean
    var = (centered * centered).mean(dim=-1, keepdim=True)
    return weight * centered / torch.sqrt(var + eps) + bias


def gelu_tanh(x):
    """GELU, tanh approximation (spec 2.7)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)))


def silu(x):
    return x * torch.sigmoid(x)


def causal_depthwise_conv(x, weight, bias, history=None, tail=None):
    """Depthwise causal conv (spec 2.1, 5.2): out[t, c] = bias[c] + sum_j weight[c, 0, j] * x[t - K + 1 + j, c],
    with x[<0] = 0. x: [B, T, d], weight: [d, 1, K], bias: [d].

    State passing: `history` [B, K-1, d] (row s = x[s - K + 1]) replaces the zeros of x[<0]; if `tail` is a list,
    the last K-1 inputs of the extended sequence (history followed by x) are appended to it, detached: they are
    the next segment's history."""
    B, T, d = x.shape
    K = weight.shape[-1]
    if history is None:
        history = x.new_zeros(B, K - 1, d)
    if list(history.shape) != [B, K - 1, d]:
        raise ValueError(f"conv history has shape {list(history.shape)}, expected {[B, K - 1, d]}")
    padded = torch.cat([history.to(x.dtype), x], dim=1)  # padded[:, s] = x[:, s - K + 1]
    if tail is not None:
        tail.append(padded[:, padded.shape[1] - (K - 1):].detach())
    out = bias.expand(B, T, d)
    for j in range(K):
        out = out + weight[:, 0, j] * padded[:, j:j + T, :]
    return out


def rope_tables(cfg, T, dtype):
    """cos/sin [T, f/2] for position p_t = t mod mini_batch_size (spec 2.2), computed in float64."""
    f = cfg.head_dim
    i = torch.arange(f // 2, dtype=torch.float64)
    omega = cfg.rope_theta ** (-2.0 * i / f)
    position = (torch.arange(T) % cfg.mini_batch_size).to(torch.float64)
    angle = position[:, None] * omega[None, :]
    return torch.cos(angle).to(dtype), torch.sin(angle).to(dtype)


def apply_rope(x, cos, sin):
    """Interleaved-pair rotation of x [B, H, T, f] (spec 2.2):
    x'[2i] = x[2i] cos - x[2i+1] sin,  x'[2i+1] = x[2i] sin + x[2i+1] cos."""
    even = x[..., 0::2]
    odd = x[..., 1::2]
    rot_even = even * cos - odd * sin
    rot_odd = even * sin + odd * cos
    return torch.stack([rot_even, rot_odd], dim=-1).flatten(-2)


def split_heads(x, H):
    """[B, T, d] -> [B, H, T, f], channel c = h * f + e."""
    B, T, d = x.shape
    return x.reshape(B, T, H, d // H).permute(0, 2, 1, 3)


def merge_heads(x):
    """[B, H, T, f] -> [B, T, d]."""
    B, H, T, f = x.shape
    return x.permute(0, 2, 1, 3).reshape(B, T, H * f)


# --------------------------------------------------------------------------------------------------
# The TTT inner loop, per-token primal form (spec 2.4, 2.5)
# --------------------------------------------------------------------------------------------------

def inner_loss(k, v, W, b, gamma, lam):
    """Per-token self-supervised loss 1/2 || LN(k W + b) - (v - k) ||^2 (spec 2.4).
    k, v: [..., f] one token's rows; W: [..., f, f]; b: [..., f]; gamma, lam: [..., f] (broadcastable)."""
    z = (k.unsqueeze(-2) @ W).squeeze(-2) + b
    residual = layer_norm(z, gamma, lam) - (v - k)
    return 0.5 * (residual * residual).sum(dim=-1)


def per_token_gradients(W0, b0, k, v, gamma, lam):
    """Gradient of each token's inner loss w.r.t. (W, b), all evaluated at the mini-batch start state.

    W0: [B, H, f, f], b0: [B, H, f], k, v: [B, H, m, f] (m tokens), gamma, lam: [H, f].
    Returns gradW [B, H, m, f, f] and gradb [B, H, m, f]: slice j is d loss_j / d(W, b) at (W0, b0).

    Each token gets its own copy of the start state, so the gradient of the summed loss w.r.t. copy j is
    exactly token j's gradient. When the outer graph is being recorded (parameters require grad) the inner
    gradients are built with create_graph=True so the outer loss can be differentiated through them."""
    m = k.shape[2]
    outer = torch.is_grad_enabled() and any(t.requires_grad for t in (W0, b0, k, v, gamma, lam))
    with torch.enable_grad():
        W_copies = W0.unsqueeze(2).repeat(1, 1, m, 1, 1)
        b_copies = b0.unsqueeze(2).repeat(1, 1, m, 1)
        # A start state that is not part of the outer graph (no outer training, or a carried state, which is a
        # constant) gets leaf copies; otherwise the copies are differentiable functions of W1 / b1.
        if not W_copies.requires_grad:
            W_copies.requires_grad_(True)
        if not b_copies.requires_grad:
            b_copies.requires_grad_(True)
        losses = inner_loss(k, v, W_copies, b_copies, gamma[None, :, None, :], lam[None, :, None, :])
        gradW, gradb = torch.autograd.grad(losses.sum(), (W_copies, b_copies), create_graph=outer)
    return gradW, gradb


def ttt_primal(XQ, XK, XV, eta, tau, W1, b1, gamma, lam, mini_batch_size, initial=None, final=None):
    """Per-token primal TTT-Linear (spec 2.5) over the whole sequence.

    XQ, XK, XV: [B, H, T, f] (q, k rotated); eta: [B, H, T] = eta_lr of each (source) token;
    tau: [b] token-position scale; W1: [H, f, f]; b1: [H, 1, f]; gamma, lam: [H, f].
    Returns the outputs o [B, H, T, f].

    State passing: `initial` = (W [B, H, f, f], b [B, H, f]) replaces W1 / b1 as every row's start state (it is
    used as given: the caller passes it detached); if `final` is a list, the state after the last mini-batch,
    (W, b) detached, is appended to it (T must then be a multiple of the mini-batch size)."""
    B, H, T, f = XQ.shape
    b = mini_batch_size
    if initial is None:
        W0 = W1.unsqueeze(0).expand(B, H, f, f)   # every sequence starts from W1 / b1 (spec 2.8)
        b0 = b1[:, 0, :].unsqueeze(0).expand(B, H, f)
    else:
        W0, b0 = initial
        if list(W0.shape) != [B, H, f, f] or list(b0.shape) != [B, H, f]:
            raise ValueError("initial inner state has the wrong shape")
    if final is not None and T % b:
        raise ValueError("state passing needs a sequence length that is a multiple of mini_batch_size")
    outputs = []
    for start in range(0, T, b):
        q = XQ[:, :, start:start + b]
        k = XK[:, :, start:start + b]
        v = XV[:, :, start:start + b]
        m = q.shape[2]  # = b, except for a trailing partial mini-batch
        gradW, gradb = per_token_gradients(W0, b0, k, v, gamma, lam)
        e = eta[:, :, start:start + b]
        # W_i = W0 - tau_i * sum_{j<=i} eta_j gradW_j, one state per token i.
        sumW = torch.cumsum(e[..., None, None] * gradW, dim=2)     # [B, H, m, f, f]
        sumb = torch.cumsum(e[..., None] * gradb, dim=2)           # [B, H, m, f]
        t = tau[:m]
        W_i = W0.unsqueeze(2) - t[:, None, None] * sumW
        b_i = b0.unsqueeze(2) - t[:, None] * sumb
        z = (q.unsqueeze(-2) @ W_i).squeeze(-2) + b_i
        outputs.append(q + layer_norm(z, gamma[None, :, None, :], lam[None, :, None, :]))
        W0, b0 = W_i[:, :, -1], b_i[:, :, -1]  # carry the last token's state
    if final is not None:
        final.append((W0.detach(), b0.detach()))
    return torch.cat(outputs, dim=2)


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------

def ttt_layer(cfg, P, prefix, u, inner_loop=ttt_primal, state_in=None, state_out=None):
    """The TTT-Linear (M) sequence-modeling block (spec 2.1-2.7). u = RMSNorm_seq(h): [B, T, d].
    state_in / state_out: this layer's carried state dict (see `logits_of`), or None."""
    B, T, d = u.shape
    H, f = cfg.num_attention_heads, cfg.head_dim
    s = prefix + "seq_modeling_block."
    tails = [] if state_out is not None else None
    # 2.1 projections: shared q/k projection followed by two causal convs; v; gate pre-activation.
    shared = linear(u, P[s + "q_proj.weight"])
    XQ = causal_depthwise_conv(shared, P[s + "conv_q.weight"], P[s + "conv_q.bias"],
                               None if state_in is None else state_in["conv_q"], tails)
    XK = causal_depthwise_conv(shared, P[s + "conv_k.weight"], P[s + "conv_k.bias"],
                               None if state_in is None else state_in["conv_k"], tails)
    XV = linear(u, P[s + "v_proj.weight"])
    gate = linear(u, P[s + "g_proj.weight"])
    # 2.2 heads and RoPE at position t mod mini_batch_size (q and k only).
    cos, sin = rope_tables(cfg, T, u.dtype)
    XQ = apply_rope(split_heads(XQ, H), cos, sin)
    XK = apply_rope(split_heads(XK, H), cos, sin)
    XV = split_heads(XV, H)
    # 2.3 learning rates: per-token gate reading the full u_t, and the token-position scale tau.
    lr_logits = torch.einsum("btd,hd->bht", u, P[s + "learnable_ttt_lr_weight"][:, 0, :]) \
        + P[s + "learnable_ttt_lr_bias"][:, 0][None, :, None]
    eta = cfg.ttt_base_lr * torch.sigmoid(lr_logits) / f                    # [B, H, T]
    position = torch.arange(1, cfg.mini_batch_size + 1, dtype=u.dtype)
    tau = torch.clamp(1.0 / position + P[s + "learnable_token_idx"], min=0.0)   # [b]
    # 2.4-2.6 inner loop (extra arguments only with state passing, so other inner loops keep working).
    carry = {}
    if state_in is not None:
        carry["initial"] = (state_in["W"], state_in["b"])
    final = None
    if state_out is not None:
        final = carry["final"] = []
    O = inner_loop(XQ, XK, XV, eta, tau, P[s + "W1"], P[s + "b1"],
                   P[s + "ttt_norm_weight"], P[s + "ttt_norm_bias"], cfg.mini_batch_size, **carry)
    if state_out is not None:
        (state_out["W"], state_out["b"]), = final
        state_out["conv_q"], state_out["conv_k"] = tails
    # 2.7 tail: post LayerNorm over d, tanh-GELU gate, output projection.
    Y = layer_norm(merge_heads(O), P[s + "post_norm.weight"], P[s + "post_norm.bias"])
    Y = gelu_tanh(gate) * Y
    return linear(Y, P[s + "o_proj.weight"])


def block(cfg, P, layer, h, inner_loop=ttt_primal, state_in=None, state_out=None):
    """Pre-norm residual block of spec 3.1 (pre-conv, TTT layer, SwiGLU). state_in / state_out: this layer's
    carried state (see `logits_of`) or None."""
    p = f"model.layers.{layer}."
    eps = cfg.rms_norm_eps
    tails = [] if state_out is not None else None
    h = h + causal_depthwise_conv(rms_norm(h, P[p + "conv.norm.weight"], eps),
                                  P[p + "conv.conv.weight"], P[p + "conv.conv.bias"],
                                  None if state_in is None else state_in["pre_conv"], tails)
    if state_out is not None:
        state_out["pre_conv"], = tails
    h = h + ttt_layer(cfg, P, p, rms_norm(h, P[p + "seq_norm.weight"], eps), inner_loop, state_in, state_out)
    x = rms_norm(h, P[p + "ffn_norm.weight"], eps)
    mlp = silu(linear(x, P[p + "mlp.gate_proj.weight"])) * linear(x, P[p + "mlp.up_proj.weight"])
    return h + linear(mlp, P[p + "mlp.down_proj.weight"])


def logits_of(cfg, P, inputs, inner_loop=ttt_primal, state_in=None, state_out=None):
    """inputs [B, T] int64 -> logits [B, T, V] (tied head).

    State passing (truncated BPTT): `state_in` is None (every row starts from W1 / b1 and x[<0] = 0) or a list
    with one dict per layer: "W" [B, H, f, f], "b" [B, H, f] (row r's inner state to start from), "pre_conv",
    "conv_q", "conv_k" [B, K-1, d] (the last K-1 inputs of that conv in row r's previous segment, oldest
    first: what x[-K+1 .. -1] means). If `state_out` is a list, one such dict per layer is appended, all
    tensors detached: the state after this segment's last token."""
    E = P["model.embed_tokens.weight"]
    h = E[inputs]
    for layer in range(cfg.num_hidden_layers):
        out = {} if state_out is not None else None
        h = block(cfg, P, layer, h, inner_loop, None if state_in is None else state_in[layer], out)
        if state_out is not None:
            state_out.append(out)
    h = rms_norm(h, P["model.norm.weight"], cfg.rms_norm_eps)
    return h @ E.t()


def token_losses(cfg, P, inputs, targets, inner_loop=ttt_primal, state_in=None, state_out=None):
    """Per-position negative log-likelihood [B, T] (unmasked)."""
    logp = torch.log_softmax(logits_of(cfg, P, inputs, inner_loop, state_in, state_out), dim=-1)
    return -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def loss_of(cfg, P, inputs, targets, inner_loop=ttt_primal, state_in=None, state_out=None):
    """Spec 4.5: per-sequence masked mean (mask = target != BOS), then the mean over the batch."""
    nll = token_losses(cfg, P, inputs, targets, inner_loop, state_in, state_out)
    mask = (targets != BOS_ID).to(nll.dtype)
    per_sequence = (nll * mask).sum(dim=1) / torch.clamp(mask.sum(dim=1), min=1e-10)
    return per_sequence.mean()


def loss_and_grads(cfg, P, inputs, targets, state_in=None, state_out=None):
    """Loss and d loss / d parameter for every parameter (autograd through the inner autograd). A carried
    `state_in` is a constant (truncated BPTT): no gradient flows into the step that produced it."""
    leaves = {name: t.detach().clone().requires_grad_(True) for name, t in P.items()}
    loss = loss_of(cfg, leaves, inputs, targets, state_in=state_in, state_out=state_out)
    names = sorted(leaves)
    # allow_unused: with a carried state W1 / b1 do not enter the loss at all; their gradient is exactly zero.
    grads = torch.autograd.grad(loss, [leaves[n] for n in names], allow_unused=True)
    return loss.detach(), {n: torch.zeros_like(leaves[n]).detach() if g is None else g.detach()
                           for n, g in zip(names, grads)}


def starts_fresh(step, state_passing, reset_every=0):
    """Whether 0-based `step` starts every row from W1 / b1 and zero conv history: always without state
    passing; with it at step 0 and, if reset_every = K > 0, at every step that is a multiple of K."""
    return (not state_passing) or step == 0 or (reset_every > 0 and step % reset_every == 0)


def _check_steps(inputs, steps, global_batch):
    if inputs.shape[0] != steps * global_batch:
        raise ValueError(f"{steps} steps of {global_batch} sequences need exactly {steps * global_batch} "
                         f"sequences, got {inputs.shape[0]}")


def evaluate_steps(cfg, P, inputs, targets, steps, global_batch, state_passing=False, reset_every=0,
                   grads_step=None, on_step=None):
    """Loss of `steps` consecutive global batches with fixed parameters. Step s (0-based) uses sequences
    s*G .. s*G+G-1. With state passing, row r of step s starts from the state row r reached at the end of step
    s-1 (inner W, b of every layer and head, last K-1 inputs of the three convs of every layer), detached;
    see `starts_fresh` for the steps that start from W1 / b1. If grads_step (0-based) is given, that step's
    loss is also differentiated (w.r.t. every parameter; the carried state is a constant).
    Returns (records [{"step": s+1, "loss", "tokens"}], grads of grads_step or None)."""
    G = global_batch
    _check_steps(inputs, steps, G)
    records, grads, state = [], None, None
    for s in range(steps):
        rows = slice(s * G, (s + 1) * G)
        state_in = None if starts_fresh(s, state_passing, reset_every) else state
        state_out = [] if state_passing else None
        if s == grads_step:
            loss, grads = loss_and_grads(cfg, P, inputs[rows], targets[rows], state_in, state_out)
        else:
            with torch.no_grad():
                loss = loss_of(cfg, P, inputs[rows], targets[rows], state_in=state_in, state_out=state_out)
        state = state_out
        record = {"step": s + 1, "loss": float(loss), "tokens": int((targets[rows] != BOS_ID).sum())}
        records.append(record)
        if on_step is not None:
            on_step(record)
    return records, grads


def train(cfg, P, inputs, targets, steps, global_batch, lr_of_step, optimizer, grad_clip=1.0, on_step=None,
          state_passing=False, reset_every=0):
    """Runs `steps` outer optimizer steps (spec 4.1). Step s uses sequences s*G .. s*G+G-1 of (inputs,
    targets); its loss is the spec 4.5 loss of that global batch. Gradients are clipped by their global norm
    over all parameters, then `optimizer` (adamw.AdamW) applies lr_of_step(s). Returns the final parameters
    and one record {"step", "loss", "grad_norm", "lr"} per step (also passed to on_step as it is made).

    With state passing (truncated BPTT), row r of step s starts from the detached state that row r reached in
    step s-1's forward pass (computed with the parameters before step s-1's update), except at the steps
    `starts_fresh` names."""
    G = global_batch
    _check_steps(inputs, steps, G)
    records, state = [], None
    for s in range(steps):
        rows = slice(s * G, (s + 1) * G)
        state_in = None if starts_fresh(s, state_passing, reset_every) else state
        state_out = [] if state_passing else None
        loss, grads = loss_and_grads(cfg, P, inputs[rows], targets[rows], state_in, state_out)
        state = state_out
        clipped, norm, _ = adamw.clip_by_global_norm(grads, grad_clip)
        lr = lr_of_step(s)
        P = optimizer.step(P, clipped, lr)
        record = {"step": s + 1, "loss": float(loss), "grad_norm": norm, "lr": lr}
        records.append(record)
        if on_step is not None:
            on_step(record)
    return P, records


# --------------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(description="TTT-Linear (M) oracle, per-token primal form")
    parser.add_argument("--config", required=True, help="Hugging Face config.json")
    parser.add_argument("--weights", required=True, help="safetensors file with HF names (F64 or F32)")
    parser.add_argument("--batch", help="token batch file (T+1 ids per line): print the loss")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp64")
    parser.add_argument("--grads", help="write d loss / d parameter to this safetensors file")
    parser.add_argument("--grads-step", type=int,
                        help="multi-step loss mode: the step (1-based, as printed) whose gradients --grads writes")
    parser.add_argument("--state-passing", action="store_true",
                        help="row r of step s+1 continues row r of step s: inner W, b and conv tails carried, "
                             "detached (truncated BPTT); needs --steps and --global-batch")
    parser.add_argument("--reset-every", type=int, default=0,
                        help="with --state-passing: start from W1/b1 again at every 0-based step that is a "
                             "multiple of K (0: only at step 0)")
    training = parser.add_argument_group("training mode (spec 4.1-4.2)")
    training.add_argument("--train-batches", help="token file with steps * global-batch sequences: train")
    training.add_argument("--steps", type=int, help="optimizer steps N (loss mode: consecutive steps N)")
    training.add_argument("--global-batch", type=int, help="sequences per step G (both modes)")
    training.add_argument("--lr", type=float, help="peak learning rate")
    training.add_argument("--lr-end", type=float, help="final learning rate of the cosine decay")
    training.add_argument("--warmup-steps", type=int, help="linear warmup steps W (from lr 0)")
    training.add_argument("--total-steps", type=int, help="decay steps D (> W) of the schedule")
    training.add_argument("--weight-decay", type=float, default=0.1)
    training.add_argument("--beta1", type=float, default=0.9)
    training.add_argument("--beta2", type=float, default=0.95)
    training.add_argument("--eps", type=float, default=1e-8)
    training.add_argument("--grad-clip", type=float, default=1.0, help="max global gradient norm")
    training.add_argument("--out-weights", help="write the trained weights here (HF names, --dtype)")
    args = parser.parse_args(argv)
    if (args.batch is None) == (args.train_batches is None):
        parser.error("give exactly one of --batch (loss) and --train-batches (training)")
    if args.train_batches is not None:
        need = ("steps", "global_batch", "lr", "lr_end", "warmup_steps", "total_steps", "out_weights")
        missing = ["--" + n.replace("_", "-") for n in need if getattr(args, n) is None]
        if missing:
            parser.error("training mode needs " + " ".join(missing))
        if args.grads or args.grads_step is not None:
            parser.error("--grads and --grads-step are for the loss mode")
    multi_step = args.steps is not None or args.global_batch is not None
    if multi_step:
        if args.steps is None or args.global_batch is None:
            parser.error("--steps and --global-batch go together")
        if args.steps < 1 or args.global_batch < 1:
            parser.error("--steps and --global-batch must be positive")
    if args.state_passing and not multi_step:
        parser.error("--state-passing needs --steps and --global-batch")
    if args.reset_every < 0:
        parser.error("--reset-every must be >= 0")
    if args.reset_every and not args.state_passing:
        parser.error("--reset-every needs --state-passing")
    if args.batch is not None and multi_step:
        if (args.grads is None) != (args.grads_step is None):
            parser.error("in the multi-step loss mode --grads needs --grads-step and vice versa")
        if args.grads_step is not None and not 1 <= args.grads_step <= args.steps:
            parser.error("--grads-step must be in 1 .. --steps")
    elif args.grads_step is not None:
        parser.error("--grads-step needs the multi-step loss mode (--steps, --global-batch)")

    dtype = DTYPES[args.dtype]
    cfg = Config.load(args.config)
    P = load_parameters(cfg, args.weights, dtype)
    inputs, targets = load_batch(args.batch if args.batch is not None else args.train_batches)
    if int(inputs.max()) >= cfg.vocab_size or int(inputs.min()) < 0 or int(targets.max()) >= cfg.vocab_size:
        raise ValueError("token id outside [0, vocab_size)")
    if args.state_passing and inputs.shape[1] % cfg.mini_batch_size:
        raise ValueError("--state-passing needs a sequence length that is a multiple of mini_batch_size")
    if args.train_batches is not None:
        adamw.warmup_cosine_lr(0, args.lr, args.lr_end, args.warmup_steps, args.total_steps)  # validates
        optimizer = adamw.AdamW(P, beta1=args.beta1, beta2=args.beta2, eps=args.eps,
                                weight_decay=args.weight_decay)
        schedule = lambda s: adamw.warmup_cosine_lr(  # noqa: E731
            s, args.lr, args.lr_end, args.warmup_steps, args.total_steps)
        P, _ = train(cfg, P, inputs, targets, args.steps, args.global_batch, schedule, optimizer,
                     args.grad_clip, on_step=lambda r: print(json.dumps(r), flush=True),
                     state_passing=args.state_passing, reset_every=args.reset_every)
        safetensors_io.save_file(args.out_weights, P, {"format": "pt", "dtype": args.dtype,
                                                       "steps": str(args.steps),
                                                       "state_passing": str(args.state_passing).lower(),
                                                       "reset_every": str(args.reset_every)})
        return 0
    if multi_step:
        grads_step = None if args.grads_step is None else args.grads_step - 1
        records, grads = evaluate_steps(cfg, P, inputs, targets, args.steps, args.global_batch,
                                        args.state_passing, args.reset_every, grads_step,
                                        on_step=lambda r: print(json.dumps(r), flush=True))
        if grads is not None:
            safetensors_io.save_file(args.grads, grads, {
                "loss": repr(records[grads_step]["loss"]), "dtype": args.dtype, "step": str(args.grads_step),
                "state_passing": str(args.state_passing).lower(), "reset_every": str(args.reset_every)})
        return 0
    tokens = int((targets != BOS_ID).sum())
    if args.grads:
        loss, grads = loss_and_grads(cfg, P, inputs, targets)
        safetensors_io.save_file(args.grads, grads, {"loss": repr(float(loss)), "dtype": args.dtype})
    else:
        with torch.no_grad():
            loss = loss_of(cfg, P, inputs, targets)
    print(json.dumps({"loss": float(loss), "tokens": tokens}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
