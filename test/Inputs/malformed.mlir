// A model file with a typo on line 4, column 10.
ttt.model @broken config = <vocab = 32, hidden = 8, intermediate = 16, layers = 1, heads = 2, conv_width = 4, rope_theta = 10000.0, rms_eps = 1.0e-06, init_range = 0.02, tie_embeddings = true, share_qk = true, use_gate = true, pre_conv = true> recipe = <optimizer = "adamw", beta1 = 0.9, beta2 = 0.95, eps = 1.0e-08, weight_decay = 0.1, grad_clip = 1.0, lr = 0.003, lr_end = 1.0e-05, warmup_steps = 2, total_steps = 20, global_batch = 4, seq_len = 64, mini_batch = 16, inner_base_lr = 1.0, remat_group = 4, state_passing = false, seed = 0, checkpoint_every = 1000, milestone_every = 2000> {
^bb0(%tokens: tensor<?x?xi32>, %targets: tensor<?x?xi32>):
  %e = ttt.parm "embed" normal(0.02) hf("model.embed_tokens.weight") : tensor<32x8xf32>
}
