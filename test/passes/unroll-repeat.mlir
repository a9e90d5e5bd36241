// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat | FileCheck %s
// RUN: ttt-opt %models/ttt_tiny.mlir --ttt-unroll-repeat | FileCheck %s --check-prefix=TINY
// Each layer gets its own parameters with the layer index in both names; the stream is threaded.

// CHECK-LABEL: ttt.model @mini
// CHECK-NOT: ttt.repeat
// CHECK: %[[H0:.*]] = ttt.embedding
// CHECK: ttt.param "layers.0.conv.norm" ones hf("model.layers.0.conv.norm.weight")
// CHECK: ttt.rms_norm %[[H0]], %layers.0.conv.norm
// CHECK: ttt.param "layers.0.ttt.W1" normal(0.02) hf("model.layers.0.seq_modeling_block.W1")
// CHECK: ttt.swiglu_mlp
// CHECK-NEXT: %[[OUT:.*]] = ttt.add
// CHECK-NEXT: ttt.param "final_norm"
// CHECK-NEXT: ttt.rms_norm %[[OUT]], %final_norm

// TINY-LABEL: ttt.model @ttt_tiny
// TINY-NOT: ttt.repeat
// TINY-COUNT-2: ttt.ttt_linear
// TINY-NOT: ttt.ttt_linear
// TINY: hf("model.layers.1.mlp.down_proj.weight", transpose)
