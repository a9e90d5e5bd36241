"""Reads a ttt-run checkpoint with independent code: the weights and moments through
test/oracle/safetensors_io.py (our own reader of the published format), config.json as a
Hugging Face TTTConfig of the reference model, trainer_state.json, the tokenizer's md5."""
import hashlib
import json
import os
import sys

ckpt, src = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(src, "test", "oracle"))
import safetensors_io  # noqa: E402


def load(path):
    t = safetensors_io.load_file(path)
    return t[0] if isinstance(t, tuple) else t


config = json.load(open(f"{ckpt}/config.json"))
assert config["model_type"] == "ttt" and config["share_qk"] and config["use_gate"] and config["pre_conv"]
assert config["tie_word_embeddings"] and config["ttt_layer_type"] == "linear", config
d, layers, heads = config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]
weights = load(f"{ckpt}/model.safetensors")
# 25 tensors per layer + embedding + final norm; lm_head left out (tied, as save_pretrained does).
assert len(weights) == 25 * layers + 2, len(weights)
assert "lm_head.weight" not in weights
assert list(weights["model.layers.0.seq_modeling_block.q_proj.weight"].shape) == [d, d]
assert list(weights["model.layers.0.seq_modeling_block.learnable_ttt_lr_weight"].shape) == [heads, 1, d]
assert list(weights["model.layers.0.conv.conv.weight"].shape) == [d, 1, config["conv_kernel"]]
moments = load(f"{ckpt}/optimizer.safetensors")
assert len(moments) == 2 * len(weights), len(moments)
assert all(str(t.dtype) == "torch.float32" for t in moments.values())
assert all(float(t.abs().sum()) > 0 for name, t in moments.items() if name.startswith("v.")), "empty moments"
state = json.load(open(f"{ckpt}/trainer_state.json"))
assert state["step"] == int(os.path.basename(ckpt).split("-")[1]), state["step"]
assert json.loads(state["data_cursor"])["step"] == state["step"], state["data_cursor"]
assert state["args"]["seed"] == 0 and state["args"]["global_batch"] == 8
md5 = hashlib.md5(open(f"{ckpt}/tokenizer.model", "rb").read()).hexdigest()
assert md5 == "eeec4125e9c7560836b4873b6f8e3025", md5
print(f"ok: {len(weights)} weights, {len(moments)} moments, step {state['step']}")
