// TTT-Linear 350M, Mamba backbone "(M)".
// Sizes: spec 1.1; recipe: spec 4.2. 337,684,224 parameters (`tttc --summary`).
// The residual block is written once and repeated (docs/models.md); `{i}` in a Hugging Face
// name is the layer index. Layout: row-vector convention, a linear map is x * W with W [in, out].
ttt.model @ttt_350m
  config = <vocab = 32000, hidden = 1024, intermediate = 2736, layers = 24, heads = 16,
            conv_width = 4, rope_theta = 10000.0, rms_eps = 1.0e-06, init_range = 0.02,
            tie_embeddings = true, share_qk = true, use_gate = true, pre_conv = true>
  recipe = <optimizer = "adamw", beta1 = 0.9, beta2 = 0.95, eps = 1.0e-08, weight_decay = 0.1,
            grad_clip = 1.0, lr = 0.0015, lr_end = 1.0e-05, warmup_steps = 1350, total_steps = 13500,
            global_batch = 256, seq_len = 2048, mini_batch = 16, inner_base_lr = 1.0,
            remat_group = 4, state_passing = false, seed = 0,
            checkpoint_every = 1000, milestone_every = 2000> {
^bb0(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi32>):
  %embed = ttt.param "embed" normal(0.02) hf("model.embed_tokens.weight") : tensor<32000x1024xf32>
  %h0 = ttt.embedding %tokens, %embed : tensor<?x?xi32>, tensor<32000x1024xf32> -> tensor<?x?x1024xf32>

  %hL = ttt.repeat 24 times(%h0) : tensor<?x?x1024xf32> {
  ^bb0(%h: tensor<?x?x1024xf32>):
    // h1 = h + conv(RMSNorm(h)): the block-level causal depthwise conv ("pre_conv").
    %conv.norm = ttt.param "conv.norm" ones hf("model.layers.{i}.conv.norm.weight") : tensor<1024xf32>
    %conv.kernel = ttt.param "conv.kernel" truncated_normal(0.5) hf("model.layers.{i}.conv.conv.weight", conv) : tensor<4x1024xf32>
    %conv.bias = ttt.param "conv.bias" zeros hf("model.layers.{i}.conv.conv.bias") : tensor<1024xf32>
    %n0 = ttt.rms_norm %h, %conv.norm : tensor<?x?x1024xf32>, tensor<1024xf32>
    %c = ttt.causal_conv %n0, %conv.kernel, %conv.bias : tensor<?x?x1024xf32>, tensor<4x1024xf32>, tensor<1024xf32>
    %h1 = ttt.add %h, %c : tensor<?x?x1024xf32>

    // h2 = h1 + TTTLinear(RMSNorm(h1)) (spec 2).
    %seq_norm = ttt.param "seq_norm" ones hf("model.layers.{i}.seq_norm.weight") : tensor<1024xf32>
    %u = ttt.rms_norm %h1, %seq_norm : tensor<?x?x1024xf32>, tensor<1024xf32>
    %wq = ttt.param "ttt.wq" normal(0.02) hf("model.layers.{i}.seq_modeling_block.q_proj.weight", transpose) : tensor<1024x1024xf32>
    %wv = ttt.param "ttt.wv" normal(0.02) hf("model.layers.{i}.seq_modeling_block.v_proj.weight", transpose) : tensor<1024x1024xf32>
    %wg = ttt.param "ttt.wg" normal(0.02) hf("model.layers.{i}.seq_modeling_block.g_proj.weight", transpose) : tensor<1024x1024xf32>
    %wo = ttt.param "ttt.wo" normal(0.02) hf("model.layers.{i}.seq_modeling_block.o_proj.weight", transpose) : tensor<1024x1024xf32>
    %cq.k = ttt.param "ttt.conv_q.kernel" truncated_normal(0.5) hf("model.layers.{i}.seq_modeling_block.conv_q.weight", conv) : tensor<4x1024xf32>
    %cq.b = ttt.param "ttt.conv_q.bias" zeros hf("model.layers.{i}.seq_modeling_block.conv_q.bias") : tensor<1024xf32>
    %ck.k = ttt.param "ttt.conv_k.kernel" truncated_normal(0.5) hf("model.layers.{i}.seq_modeling_block.conv_k.weight", conv) : tensor<4x1024xf32>
    %ck.b = ttt.param "ttt.conv_k.bias" zeros hf("model.layers.{i}.seq_modeling_block.conv_k.bias") : tensor<1024xf32>
    %lr.w = ttt.param "ttt.lr_gate.weight" normal(0.02) hf("model.layers.{i}.seq_modeling_block.learnable_ttt_lr_weight", unsqueeze1) : tensor<16x1024xf32>
    %lr.b = ttt.param "ttt.lr_gate.bias" zeros hf("model.layers.{i}.seq_modeling_block.learnable_ttt_lr_bias", unsqueeze1) : tensor<16xf32>
    %tidx = ttt.param "ttt.token_idx" zeros hf("model.layers.{i}.seq_modeling_block.learnable_token_idx") : tensor<16xf32>
    %tn.w = ttt.param "ttt.ttt_norm.scale" ones hf("model.layers.{i}.seq_modeling_block.ttt_norm_weight") : tensor<16x64xf32>
    %tn.b = ttt.param "ttt.ttt_norm.bias" zeros hf("model.layers.{i}.seq_modeling_block.ttt_norm_bias") : tensor<16x64xf32>
    %W1 = ttt.param "ttt.W1" normal(0.02) hf("model.layers.{i}.seq_modeling_block.W1") : tensor<16x64x64xf32>
    %b1 = ttt.param "ttt.b1" zeros hf("model.layers.{i}.seq_modeling_block.b1", unsqueeze1) : tensor<16x64xf32>
    %pn.w = ttt.param "ttt.post_norm.scale" ones hf("model.layers.{i}.seq_modeling_block.post_norm.weight") : tensor<1024xf32>
    %pn.b = ttt.param "ttt.post_norm.bias" zeros hf("model.layers.{i}.seq_modeling_block.post_norm.bias") : tensor<1024xf32>
    %t = ttt.ttt_linear %u q(%wq) v(%wv) gate(%wg) out(%wo)
           conv_q(%cq.k, %cq.b) conv_k(%ck.k, %ck.b) lr_gate(%lr.w, %lr.b) token_idx(%tidx)
           ttt_norm(%tn.w, %tn.b) init_state(%W1, %b1) post_norm(%pn.w, %pn.b)
           {heads = 16, mini_batch = 16, conv_width = 4, base_lr = 1.0, rope_theta = 10000.0} : tensor<?x?x1024xf32>
    %h2 = ttt.add %h1, %t : tensor<?x?x1024xf32>

    // h3 = h2 + SwiGLU(RMSNorm(h2)).
    %ffn_norm = ttt.param "ffn_norm" ones hf("model.layers.{i}.ffn_norm.weight") : tensor<1024xf32>
    %n2 = ttt.rms_norm %h2, %ffn_norm : tensor<?x?x1024xf32>, tensor<1024xf32>
    %w_gate = ttt.param "mlp.gate" normal(0.02) hf("model.layers.{i}.mlp.gate_proj.weight", transpose) : tensor<1024x2736xf32>
    %w_up = ttt.param "mlp.up" normal(0.02) hf("model.layers.{i}.mlp.up_proj.weight", transpose) : tensor<1024x2736xf32>
    %w_down = ttt.param "mlp.down" normal(0.02) hf("model.layers.{i}.mlp.down_proj.weight", transpose) : tensor<2736x1024xf32>
    %m = ttt.swiglu_mlp %n2 gate(%w_gate) up(%w_up) down(%w_down) : tensor<?x?x1024xf32>, tensor<1024x2736xf32>, tensor<2736x1024xf32>
    %h3 = ttt.add %h2, %m : tensor<?x?x1024xf32>
    ttt.yield %h3 : tensor<?x?x1024xf32>
  }

  // Final RMSNorm, the LM head tied to the embedding, the masked mean cross-entropy (spec 4.5).
  %final_norm = ttt.param "final_norm" ones hf("model.norm.weight") : tensor<1024xf32>
  %hf = ttt.rms_norm %hL, %final_norm : tensor<?x?x1024xf32>, tensor<1024xf32>
  %logits = ttt.lm_head %hf, %embed : tensor<?x?x1024xf32>, tensor<32000x1024xf32> -> tensor<?x?x32000xf32>
  %loss = ttt.cross_entropy %logits, %targets : tensor<?x?x32000xf32>, tensor<?x?xi32> -> tensor<f32>
  ttt.return %loss : tensor<f32>
}
