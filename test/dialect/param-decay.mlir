// RUN: sed -e 's/"embed" normal(0.02) hf/"embed" normal(0.02) no_decay hf/' -e 's/ttt.cross_entropy %%logits, %%targets :/ttt.cross_entropy %%logits, %%targets {ignore_token = 0} :/' %inputs/mini.mlir | ttt-opt | FileCheck %s
// `no_decay` and a non-default ignore_token survive a round trip; without them nothing is printed
// (the reference decays every parameter and masks BOS targets).

// CHECK-LABEL: ttt.model @mini
// CHECK: ttt.param "embed" normal(0.02) no_decay hf("model.embed_tokens.weight") : tensor<32x8xf32>
// CHECK: ttt.param "conv.norm" ones hf(
// CHECK: ttt.rms_norm %{{[^ ]+}}, %conv.norm : tensor<?x?x8xf32>, tensor<8xf32>
// CHECK: ttt.cross_entropy %{{.*}}, %{{.*}} {ignore_token = 0 : i64}
