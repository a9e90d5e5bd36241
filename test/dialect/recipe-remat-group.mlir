// RUN: ttt-opt %s -split-input-file -verify-diagnostics
// Recipe: the remat group divides the number of mini-batches.

ttt.model @mini
  config = <vocab = 32, hidden = 8, intermediate = 16, layers = 1, heads = 2, conv_width = 4, rope_theta = 10000.0, rms_eps = 1.0e-06, init_range = 0.02, tie_embeddings = true, share_qk = true, use_gate = true, pre_conv = true>
  // expected-error @+1 {{recipe: remat_group 3 does not divide the 4 mini-batches of a sequence (seq_len 64 / mini_batch 16); pick a divisor of 4}}
  recipe = <optimizer = "adamw", beta1 = 0.9, beta2 = 0.95, eps = 1.0e-08, weight_decay = 0.1, grad_clip = 1.0, lr = 0.003, lr_end = 1.0e-05, warmup_steps = 2, total_steps = 20, global_batch = 4, seq_len = 64, mini_batch = 16, inner_base_lr = 1.0, remat_group = 3, state_passing = false, seed = 0, checkpoint_every = 1000, milestone_every = 2000> {
^bb0(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi32>):
  %embed = ttt.param "embed" normal(0.02) hf("model.embed_tokens.weight") : tensor<32x8xf32>
  %h0 = ttt.embedding %tokens, %embed : tensor<?x?xi32>, tensor<32x8xf32> -> tensor<?x?x8xf32>
  %hL = ttt.repeat 1 times(%h0) : tensor<?x?x8xf32> {
  ^bb0(%h: tensor<?x?x8xf32>):
    %cn = ttt.param "conv.norm" ones hf("model.layers.{i}.conv.norm.weight") : tensor<8xf32>
    %ck = ttt.param "conv.kernel" truncated_normal(0.5) hf("model.layers.{i}.conv.conv.weight", conv) : tensor<4x8xf32>
    %cb = ttt.param "conv.bias" zeros hf("model.layers.{i}.conv.conv.bias") : tensor<8xf32>
    %n0 = ttt.rms_norm %h, %cn : tensor<?x?x8xf32>, tensor<8xf32>
    %c = ttt.causal_conv %n0, %ck, %cb : tensor<?x?x8xf32>, tensor<4x8xf32>, tensor<8xf32>
    %h1 = ttt.add %h, %c : tensor<?x?x8xf32>
    %sn = ttt.param "seq_norm" ones hf("model.layers.{i}.seq_norm.weight") : tensor<8xf32>
    %u = ttt.rms_norm %h1, %sn : tensor<?x?x8xf32>, tensor<8xf32>
    %wq = ttt.param "ttt.wq" normal(0.02) hf("model.layers.{i}.seq_modeling_block.q_proj.weight", transpose) : tensor<8x8xf32>
    %wv = ttt.param "ttt.wv" normal(0.02) hf("model.layers.{i}.seq_modeling_block.v_proj.weight", transpose) : tensor<8x8xf32>
    %wg = ttt.param "ttt.wg" normal(0.02) hf("model.layers.{i}.seq_modeling_block.g_proj.weight", transpose) : tensor<8x8xf32>
    %wo = ttt.param "ttt.wo" normal(0.02) hf("model.layers.{i}.seq_modeling_block.o_proj.weight", transpose) : tensor<8x8xf32>
    %cqk = ttt.param "ttt.conv_q.kernel" truncated_normal(0.5) hf("model.layers.{i}.seq_modeling_block.conv_q.weight", conv) : tensor<4x8xf32>
    %cqb = ttt.param "ttt.conv_q.bias" zeros hf("model.layers.{i}.seq_modeling_block.conv_q.bias") : tensor<8xf32>
    %ckk = ttt.param "ttt.conv_k.kernel" truncated_normal(0.5) hf("model.layers.{i}.seq_modeling_block.conv_k.weight", conv) : tensor<4x8xf32>
    %ckb = ttt.param "ttt.conv_k.bias" zeros hf("model.layers.{i}.seq_modeling_block.conv_k.bias") : tensor<8xf32>
    %lrw = ttt.param "ttt.lr_gate.weight" normal(0.02) hf("model.layers.{i}.seq_modeling_block.learnable_ttt_lr_weight", unsqueeze1) : tensor<2x8xf32>
    %lrb = ttt.param "ttt.lr_gate.bias" zeros hf("model.layers.{i}.seq_modeling_block.learnable_ttt_lr_bias", unsqueeze1) : tensor<2xf32>
    %ti = ttt.param "ttt.token_idx" zeros hf("model.layers.{i}.seq_modeling_block.learnable_token_idx") : tensor<16xf32>
    %tnw = ttt.param "ttt.ttt_norm.scale" ones hf("model.layers.{i}.seq_modeling_block.ttt_norm_weight") : tensor<2x4xf32>
    %tnb = ttt.param "ttt.ttt_norm.bias" zeros hf("model.layers.{i}.seq_modeling_block.ttt_norm_bias") : tensor<2x4xf32>
    %W1 = ttt.param "ttt.W1" normal(0.02) hf("model.layers.{i}.seq_modeling_block.W1") : tensor<2x4x4xf32>
    %b1 = ttt.param "ttt.b1" zeros hf("model.layers.{i}.seq_modeling_block.b1", unsqueeze1) : tensor<2x4xf32>
    %pnw = ttt.param "ttt.post_norm.scale" ones hf("model.layers.{i}.seq_modeling_block.post_norm.weight") : tensor<8xf32>
    %pnb = ttt.param "ttt.post_norm.bias" zeros hf("model.layers.{i}.seq_modeling_block.post_norm.bias") : tensor<8xf32>
    %t = ttt.ttt_linear %u q(%wq) v(%wv) gate(%wg) out(%wo) conv_q(%cqk, %cqb) conv_k(%ckk, %ckb) lr_gate(%lrw, %lrb) token_idx(%ti) ttt_norm(%tnw, %tnb) init_state(%W1, %b1) post_norm(%pnw, %pnb) {heads = 2, mini_batch = 16, conv_width = 4, base_lr = 1.0, rope_theta = 10000.0} : tensor<?x?x8xf32>
    %h2 = ttt.add %h1, %t : tensor<?x?x8xf32>
    %fn = ttt.param "ffn_norm" ones hf("model.layers.{i}.ffn_norm.weight") : tensor<8xf32>
    %n2 = ttt.rms_norm %h2, %fn : tensor<?x?x8xf32>, tensor<8xf32>
    %wgate = ttt.param "mlp.gate" normal(0.02) hf("model.layers.{i}.mlp.gate_proj.weight", transpose) : tensor<8x16xf32>
    %wup = ttt.param "mlp.up" normal(0.02) hf("model.layers.{i}.mlp.up_proj.weight", transpose) : tensor<8x16xf32>
    %wdown = ttt.param "mlp.down" normal(0.02) hf("model.layers.{i}.mlp.down_proj.weight", transpose) : tensor<16x8xf32>
    %m = ttt.swiglu_mlp %n2 gate(%wgate) up(%wup) down(%wdown) : tensor<?x?x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>
    %h3 = ttt.add %h2, %m : tensor<?x?x8xf32>
    ttt.yield %h3 : tensor<?x?x8xf32>
  }
  %nf = ttt.param "final_norm" ones hf("model.norm.weight") : tensor<8xf32>
  %hf = ttt.rms_norm %hL, %nf : tensor<?x?x8xf32>, tensor<8xf32>
  %logits = ttt.lm_head %hf, %embed : tensor<?x?x8xf32>, tensor<32x8xf32> -> tensor<?x?x32xf32>
  %loss = ttt.cross_entropy %logits, %targets : tensor<?x?x32xf32>, tensor<?x?xi32> -> tensor<f32>
  ttt.return %loss : tensor<f32>
}

// -----

ttt.model @mini
  config = <vocab = 32, hidden = 8, intermediate = 16, layers = 1, heads = 2, conv_width = 4, rope_theta = 10000.0, rms_eps = 1.0e-06, init_range = 0.02, tie_embeddings = true, share_qk = true, use_gate = true, pre_conv = true>
  // expected-error @+1 {{does not divide the 4 mini-batches}}
  recipe = <optimizer = "adamw", beta1 = 0.9, beta2 = 0.95, eps = 1.0e-08, weight_decay = 0.1, grad_clip = 1.0, lr = 0.003, lr_end = 1.0e-05, warmup_steps = 2, total_steps = 20, global_batch = 4, seq_len = 64, mini_batch = 16, inner_base_lr = 1.0, remat_group = 8, state_passing = false, seed = 0, checkpoint_every = 1000, milestone_every = 2000> {
^bb0(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi32>):
  %embed = ttt.param "embed" normal(0.02) hf("model.embed_tokens.weight") : tensor<32x8xf32>
  %h0 = ttt.embedding %tokens, %embed : tensor<?x?xi32>, tensor<32x8xf32> -> tensor<?x?x8xf32>
  %hL = ttt.repeat 1 times(%h0) : tensor<?x?x8xf32> {
  ^bb0(%h: tensor<?x?x8xf32>):
    %cn = ttt.param "conv.norm" ones hf("model.layers.{i}.conv.norm.weight") : tensor<8xf32>
    %ck = ttt.param "conv.kernel" truncated_normal(0.5) hf("model.layers.{i}.conv.conv.weight", conv) : tensor<4x8xf32>
    %cb = ttt.param "conv.bias" zeros hf("model.layers.{i}.conv.conv.bias") : tensor<8xf32>
    %n0 = ttt.rms_norm %h, %cn : tensor<?x?x8xf32>, tensor<8xf32>
    %c = ttt.causal_conv %n0, %ck, %cb : tensor<?x?x8xf32>, tensor<4x8xf32>, tensor<8xf32>
    %h1 = ttt.add %h, %c : tensor<?x?x8xf32>
    %sn = ttt.param "seq_norm" ones hf("model.layers.{i}.seq_norm.weight") : tensor<8xf32>
    %u = ttt.rms_norm %h1, %sn : tensor<?x?x8xf32>, tensor<8xf32>
    %wq = ttt.param "ttt.wq" normal(0.02) hf("model.layers.{i}.seq_modeling_block.q_proj.weight", transpose) : tensor<8x8xf32>
    %wv = ttt.param "ttt.wv" normal(0.02) hf("model.layers.{i}.seq_modeling_block.v_proj.weight", transpose) : tensor<8x8xf32>
    %wg = ttt.param "ttt.wg" normal(0.02) hf("model.layers.{i}.seq_modeling_block.g_proj.weight", transpose) : tensor<8x8xf32>
    %wo = ttt.param "ttt.wo" normal(0.02) hf("model.layers.{i}.seq_modeling_block.o_proj.weight", transpose) : tensor<8x8xf32>
    %cqk = ttt.param "ttt.conv_q.kernel" truncated_normal(0.5) hf("model.layers.{i}.seq_modeling_block.conv_q.weight", conv) : tensor<4x8xf32>
    %cqb = ttt.param "ttt.conv_q.bias" zeros hf("model.layers.{i}.seq_modeling_block.conv_q.bias") : tensor<8xf32>
    %ckk = ttt.param "ttt.conv_k.kernel" truncated_normal(0.5) hf("model.layers.{i}.seq_modeling_block.conv_k.weight", conv) : tensor<4x8xf32>
    %ckb = ttt.param "ttt.conv_k.bias" zeros hf("model.layers.{i}.seq_modeling_block.conv_k.bias") : tensor<8xf32>
    %lrw = ttt.param "ttt.lr_gate.weight" normal(0.02) hf("model.layers.{i}.seq_modeling_block.learnable_ttt_lr_weight", unsqueeze1) : tensor<2x8xf32>
    %lrb = ttt.param "ttt.lr_gate.bias" zeros hf("model.layers.{i}.seq_modeling_block.learnable_ttt_lr_bias", unsqueeze1) : tensor<2xf32>
    %ti = ttt.param "ttt.token_idx" zeros hf("model.layers.{i}.seq_modeling_block.learnable_token_idx") : tensor<16xf32>
    %tnw = ttt.param "ttt.ttt_norm.scale" ones hf("model.layers.{i}.seq_modeling_block.ttt_norm_weight") : tensor<2x4xf32>
    %tnb = ttt.param "ttt.ttt_norm.bias" zeros hf("model.layers.{i}.seq_modeling_block.ttt_norm_bias") : tensor<2x4xf32>
    %W1 = ttt.param "ttt.W1" normal(0.02) hf("model.layers.{i}.seq_modeling_block.W1") : tensor<2x4x4xf32>
    %b1 = ttt.param "ttt.b1" zeros hf("model.layers.{i}.seq_modeling_block.b1", unsqueeze1) : tensor<2x4xf32>
    %pnw = ttt.param "ttt.post_norm.scale" ones hf("model.layers.{i}.seq_modeling_block.post_norm.weight") : tensor<8xf32>
    %pnb = ttt.param "ttt.post_norm.bias" zeros hf("model.layers.{i}.seq_modeling_block.post_norm.bias") : tensor<8xf32>
    %t = ttt.ttt_linear %u q(%wq) v(%wv) gate(%wg) out(%wo) conv_q(%cqk, %cqb) conv_k(%ckk, %ckb) lr_gate(%lrw, %lrb) token_idx(%ti) ttt_norm(%tnw, %tnb) init_state(%W1, %b1) post_norm(%pnw, %pnb) {heads = 2, mini_batch = 16, conv_width = 4, base_lr = 1.0, rope_theta = 10000.0} : tensor<?x?x8xf32>
    %h2 = ttt.add %h1, %t : tensor<?x?x8xf32>
    %fn = ttt.param "ffn_norm" ones hf("model.layers.{i}.ffn_norm.weight") : tensor<8xf32>
    %n2 = ttt.rms_norm %h2, %fn : tensor<?x?x8xf32>, tensor<8xf32>
    %wgate = ttt.param "mlp.gate" normal(0.02) hf("model.layers.{i}.mlp.gate_proj.weight", transpose) : tensor<8x16xf32>
    %wup = ttt.param "mlp.up" normal(0.02) hf("model.layers.{i}.mlp.up_proj.weight", transpose) : tensor<8x16xf32>
    %wdown = ttt.param "mlp.down" normal(0.02) hf("model.layers.{i}.mlp.down_proj.weight", transpose) : tensor<16x8xf32>
    %m = ttt.swiglu_mlp %n2 gate(%wgate) up(%wup) down(%wdown) : tensor<?x?x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>
    %h3 = ttt.add %h2, %m : tensor<?x?x8xf32>
    ttt.yield %h3 : tensor<?x?x8xf32>
  }
  %nf = ttt.param "final_norm" ones hf("model.norm.weight") : tensor<8xf32>
  %hf = ttt.rms_norm %hL, %nf : tensor<?x?x8xf32>, tensor<8xf32>
  %logits = ttt.lm_head %hf, %embed : tensor<?x?x8xf32>, tensor<32x8xf32> -> tensor<?x?x32xf32>
  %loss = ttt.cross_entropy %logits, %targets : tensor<?x?x32xf32>, tensor<?x?xi32> -> tensor<f32>
  ttt.return %loss : tensor<f32>
}
