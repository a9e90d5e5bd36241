// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=32 dtype=f64" | FileCheck %s
// ttt.ttt_linear, spec 2.7: back to [B, T, D], post LayerNorm over D, times gelu_tanh(u Wg), Wo.

// CHECK-LABEL: tttp.program "eval_step"
// CHECK: %[[WG:[^ ]+]] = tttp.param "layers.0.ttt.wg"
// CHECK: %[[GT:[^ ]+]] = tttp.matmul %{{.*}}, %[[WG]] : (tensor<2x32x8xf64>, tensor<8x8xf64>) -> tensor<2x32x8xf64>
// CHECK: %[[SCAN:[^ ]+]]:3 = tttp.scan
// CHECK: tttp.yield
// CHECK: %[[OT:[^ ]+]] = tttp.transpose %[[SCAN]]#2 {perm = array<i64: 1, 0, 3, 2, 4>} : (tensor<2x2x2x16x4xf64>) -> tensor<2x2x16x2x4xf64>
// CHECK: %[[O:[^ ]+]] = tttp.reshape %[[OT]] : (tensor<2x2x16x2x4xf64>) -> tensor<2x32x8xf64>
// CHECK: %[[Y:[^ ]+]] = tttp.layer_norm %[[O]], %{{.*}}, %{{.*}} {eps
// CHECK: %[[GELU:[^ ]+]] = tttp.unary %[[GT]] {kind = "gelu_tanh"}
// CHECK: %[[GATED:[^ ]+]] = tttp.binary %[[GELU]], %[[Y]] {kind = "mul"}
// CHECK: %[[OUT:[^ ]+]] = tttp.matmul %[[GATED]], %{{.*}} : (tensor<2x32x8xf64>, tensor<8x8xf64>) -> tensor<2x32x8xf64>
// CHECK: tttp.binary %{{.*}}, %[[OUT]] {kind = "add"}
