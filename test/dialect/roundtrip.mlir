// RUN: ttt-opt %inputs/mini.mlir | ttt-opt | FileCheck %s
// The printed form parses back to the same IR, and names parameters after their declaration.

// CHECK-LABEL: ttt.model @mini config = <vocab = 32, hidden = 8, intermediate = 16, layers = 1, heads = 2, conv_width = 4, rope_theta = 10000.0, rms_eps = 1.0e-06, init_range = 0.02, tie_embeddings = true, share_qk = true, use_gate = true, pre_conv = true>
// CHECK-SAME: recipe = <optimizer = "adamw", beta1 = 0.9, beta2 = 0.95, eps = 1.0e-08, weight_decay = 0.1, grad_clip = 1.0, lr = 0.003, lr_end = 1.0e-05, warmup_steps = 2, total_steps = 20, global_batch = 4, seq_len = 64, mini_batch = 16, inner_base_lr = 1.0, remat_group = 4, state_passing = false, seed = 0, checkpoint_every = 1000, milestone_every = 2000>
// CHECK: ^bb0(%[[TOK:tokens]]: tensor<?x?xi32>, %[[TGT:targets]]: tensor<?x?xi32>):
// CHECK: %[[E:embed]] = ttt.param "embed" normal(0.02) hf("model.embed_tokens.weight") : tensor<32x8xf32>
// CHECK: %[[H0:.*]] = ttt.embedding %[[TOK]], %[[E]]
// CHECK: %[[HL:.*]] = ttt.repeat 1 times(%[[H0]]) : tensor<?x?x8xf32> {
// CHECK: ^bb0(%[[H:h]]: tensor<?x?x8xf32>):
// CHECK: ttt.param "conv.kernel" truncated_normal(0.5) hf("model.layers.{i}.conv.conv.weight", conv) : tensor<4x8xf32>
// CHECK: ttt.causal_conv
// CHECK: ttt.param "ttt.lr_gate.bias" zeros hf("model.layers.{i}.seq_modeling_block.learnable_ttt_lr_bias", unsqueeze1) : tensor<2xf32>
// CHECK: ttt.ttt_linear %{{.*}} q(%{{.*}}) v(%{{.*}}) gate(%{{.*}}) out(%{{.*}}) conv_q(%{{.*}}, %{{.*}}) conv_k(%{{.*}}, %{{.*}}) lr_gate(%{{.*}}, %{{.*}}) token_idx(%{{.*}}) ttt_norm(%{{.*}}, %{{.*}}) init_state(%ttt.W1, %ttt.b1) post_norm(%{{.*}}, %{{.*}}) {heads = 2, mini_batch = 16, conv_width = 4, base_lr = 1.0, rope_theta = 10000.0} : tensor<?x?x8xf32>
// CHECK: ttt.swiglu_mlp %{{.*}} gate(%mlp.gate) up(%mlp.up) down(%mlp.down) : tensor<?x?x8xf32>, tensor<8x16xf32>, tensor<16x8xf32>
// CHECK: ttt.yield
// CHECK: %[[N:.*]] = ttt.rms_norm %[[HL]], %final_norm
// CHECK: %[[L:.*]] = ttt.lm_head %[[N]], %[[E]] : tensor<?x?x8xf32>, tensor<32x8xf32> -> tensor<?x?x32xf32>
// CHECK: %[[LOSS:.*]] = ttt.cross_entropy %[[L]], %[[TGT]]
// CHECK: ttt.return %[[LOSS]] : tensor<f32>
