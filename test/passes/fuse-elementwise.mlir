// ttt-fuse-elementwise: elementwise chains -> tttp.fused_elementwise; lm_head + cross-entropy
// (and its backward) -> tttp.lm_head_xent(_bwd).
// RUN: ttt-opt %s --split-input-file --ttt-fuse-elementwise | FileCheck %s
// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=64 dtype=f64" --ttt-autodiff=remat-group=2 --ttt-fuse-inner-loop --ttt-fuse-elementwise | FileCheck %s --check-prefix=MINI

// SwiGLU's activation and product: one kernel.
// CHECK-LABEL: tttp.program "swiglu"
// CHECK: %[[A:.*]] = tttp.matmul
// CHECK: %[[B:.*]] = tttp.matmul
// CHECK: %[[H:.*]] = tttp.fused_elementwise %[[A]], %[[B]] {alphas = array<f64: 0.000000e+00, 0.000000e+00>, args = array<i64: 0, -1, -1, 2, 1, -1>, ops = ["silu", "mul"]} : (tensor<8x16xf64>, tensor<8x16xf64>) -> tensor<8x16xf64>
// CHECK-NOT: tttp.unary
// CHECK: tttp.matmul %[[H]]
tttp.program "swiglu" {
  %x = tttp.constant 1.0 : tensor<8x4xf64>
  %wg = tttp.constant 0.5 : tensor<4x16xf64>
  %a = tttp.matmul %x, %wg : (tensor<8x4xf64>, tensor<4x16xf64>) -> tensor<8x16xf64>
  %b = tttp.matmul %x, %wg : (tensor<8x4xf64>, tensor<4x16xf64>) -> tensor<8x16xf64>
  %s = tttp.unary %a {kind = "silu"} : (tensor<8x16xf64>) -> tensor<8x16xf64>
  %h = tttp.binary %s, %b {kind = "mul"} : (tensor<8x16xf64>, tensor<8x16xf64>) -> tensor<8x16xf64>
  %wd = tttp.constant 0.5 : tensor<16x4xf64>
  %y = tttp.matmul %h, %wd : (tensor<8x16xf64>, tensor<16x4xf64>) -> tensor<8x4xf64>
  tttp.output "y" %y : tensor<8x4xf64>
}

// -----

// The gate times the post-norm, the norm's result seen through a reshape (a view); a broadcast
// input (a per-row scale [8, 1]) and a scalar step (alpha).
// CHECK-LABEL: tttp.program "gate"
// CHECK: %[[N:.*]] = tttp.rms_norm
// CHECK: tttp.fused_elementwise %[[N]], %[[U:.*]], %[[R:.*]] {alphas = array<f64: 0.000000e+00, 0.000000e+00, 0.000000e+00, 2.000000e+00>, args = array<i64: 1, -1, -1, 3, 0, -1, 4, 2, -1, 5, -1, -1>, ops = ["gelu_tanh", "mul", "mul", "scale"]} : (tensor<2x4x16xf64>, tensor<8x16xf64>, tensor<8x1xf64>) -> tensor<8x16xf64>
// CHECK-NOT: tttp.binary
tttp.program "gate" {
  %u = tttp.constant 1.0 : tensor<8x16xf64>
  %x = tttp.constant 2.0 : tensor<2x4x16xf64>
  %w = tttp.constant 1.0 : tensor<16xf64>
  %r = tttp.constant 3.0 : tensor<8x1xf64>
  %n = tttp.rms_norm %x, %w {eps = 1.0e-06 : f64} : (tensor<2x4x16xf64>, tensor<16xf64>) -> tensor<2x4x16xf64>
  %nf = tttp.reshape %n : (tensor<2x4x16xf64>) -> tensor<8x16xf64>
  %g = tttp.unary %u {kind = "gelu_tanh"} : (tensor<8x16xf64>) -> tensor<8x16xf64>
  %y = tttp.binary %g, %nf {kind = "mul"} : (tensor<8x16xf64>, tensor<8x16xf64>) -> tensor<8x16xf64>
  %z = tttp.binary %y, %r {kind = "mul"} : (tensor<8x16xf64>, tensor<8x1xf64>) -> tensor<8x16xf64>
  %s = tttp.unary %z {kind = "scale", alpha = 2.0 : f64} : (tensor<8x16xf64>) -> tensor<8x16xf64>
  tttp.output "s" %s : tensor<8x16xf64>
}

// -----

// A value with two uses stays materialized: it ends one group and feeds two others. A single
// op is not a group; a smaller intermediate (the [8, 1] reciprocal) is an input, not a step.
// CHECK-LABEL: tttp.program "boundary"
// CHECK: %[[E:.*]] = tttp.fused_elementwise %{{.*}} {{.*}}ops = ["neg", "exp"]}
// CHECK: %[[Q:.*]] = tttp.unary %{{.*}} {kind = "reciprocal"} : (tensor<8x1xf64>)
// CHECK: tttp.fused_elementwise %[[E]], %[[Q]] {{.*}}ops = ["mul", "relu"]}
// CHECK: tttp.unary %[[E]] {kind = "log"}
tttp.program "boundary" {
  %x = tttp.constant 1.0 : tensor<8x16xf64>
  %c = tttp.constant 4.0 : tensor<8x1xf64>
  %m = tttp.unary %x {kind = "neg"} : (tensor<8x16xf64>) -> tensor<8x16xf64>
  %e = tttp.unary %m {kind = "exp"} : (tensor<8x16xf64>) -> tensor<8x16xf64>
  %q = tttp.unary %c {kind = "reciprocal"} : (tensor<8x1xf64>) -> tensor<8x1xf64>
  %p = tttp.binary %e, %q {kind = "mul"} : (tensor<8x16xf64>, tensor<8x1xf64>) -> tensor<8x16xf64>
  %r = tttp.unary %p {kind = "relu"} : (tensor<8x16xf64>) -> tensor<8x16xf64>
  %l = tttp.unary %e {kind = "log"} : (tensor<8x16xf64>) -> tensor<8x16xf64>
  tttp.output "r" %r : tensor<8x16xf64>
  tttp.output "l" %l : tensor<8x16xf64>
}

// -----

// The backward of an activation: unary_bwd steps read (x, y, dy).
// CHECK-LABEL: tttp.program "bwd"
// CHECK: %[[Y:.*]] = tttp.unary %[[X:[^ ]*]] {kind = "silu"}
// CHECK: tttp.fused_elementwise %[[G:[^,]*]], %[[Y]], %[[X]] {{.*}}args = array<i64: 0, 1, -1, 2, 1, 3>, ops = ["mul", "silu_bwd"]}
tttp.program "bwd" {
  %x = tttp.constant 1.0 : tensor<16xf64>
  %y = tttp.unary %x {kind = "silu"} : (tensor<16xf64>) -> tensor<16xf64>
  %g = tttp.constant 0.5 : tensor<16xf64>
  %d = tttp.binary %g, %y {kind = "mul"} : (tensor<16xf64>, tensor<16xf64>) -> tensor<16xf64>
  %dx = tttp.unary_bwd %x, %y, %d {kind = "silu"} : (tensor<16xf64>, tensor<16xf64>, tensor<16xf64>) -> tensor<16xf64>
  tttp.output "dx" %dx : tensor<16xf64>
}

// -----

// The tied lm_head and the cross-entropy: the [N, V] logits are gone (chunk: at most the vocab).
// CHECK-LABEL: tttp.program "head"
// CHECK: %[[L:.*]], %[[M:.*]], %{{.*}} = tttp.lm_head_xent %[[H:.*]], %[[E:.*]], %[[T:.*]] {chunk = 100 : i64, ignore_token = 1 : i64} : (tensor<2x4x8xf64>, tensor<100x8xf64>, tensor<2x4xi32>) -> (tensor<8xf64>, tensor<8xf64>, tensor<8xf64>)
// CHECK-NOT: tttp.matmul
// CHECK-NOT: softmax_xent
// CHECK: tttp.reshape %[[L]]
tttp.program "head" {
  %t = tttp.input "targets" : tensor<2x4xi32>
  %h = tttp.constant 1.0 : tensor<2x4x8xf64>
  %e = tttp.param "embed" : tensor<100x8xf64>
  %lg = tttp.matmul %h, %e {transpose_b} : (tensor<2x4x8xf64>, tensor<100x8xf64>) -> tensor<2x4x100xf64>
  %f = tttp.reshape %lg : (tensor<2x4x100xf64>) -> tensor<8x100xf64>
  %l, %m = tttp.softmax_xent %f, %t {ignore_token = 1 : i64} : (tensor<8x100xf64>, tensor<2x4xi32>) -> (tensor<8xf64>, tensor<8xf64>)
  %l2 = tttp.reshape %l : (tensor<8xf64>) -> tensor<2x4xf64>
  %m2 = tttp.reshape %m : (tensor<8xf64>) -> tensor<2x4xf64>
  %loss = tttp.masked_mean %l2, %m2 : (tensor<2x4xf64>, tensor<2x4xf64>) -> tensor<f64>
  tttp.output "loss" %loss : tensor<f64>
}

// -----

// Logits read by anything else stay materialized.
// CHECK-LABEL: tttp.program "head_other_use"
// CHECK: tttp.matmul
// CHECK: tttp.softmax_xent
// CHECK-NOT: lm_head_xent
tttp.program "head_other_use" {
  %t = tttp.input "targets" : tensor<8xi32>
  %h = tttp.constant 1.0 : tensor<8x8xf64>
  %e = tttp.param "embed" : tensor<100x8xf64>
  %lg = tttp.matmul %h, %e {transpose_b} : (tensor<8x8xf64>, tensor<100x8xf64>) -> tensor<8x100xf64>
  %f = tttp.reshape %lg : (tensor<8x100xf64>) -> tensor<8x100xf64>
  %l, %m = tttp.softmax_xent %f, %t {ignore_token = 1 : i64} : (tensor<8x100xf64>, tensor<8xi32>) -> (tensor<8xf64>, tensor<8xf64>)
  tttp.output "logits" %f : tensor<8x100xf64>
  tttp.output "loss" %l : tensor<8xf64>
}

// The mini model through the whole pipeline: in micro_step, the lm_head + cross-entropy and its
// backward (softmax_xent_bwd, the reshape, both matmuls of the matmul VJP) are one op each.
// MINI-LABEL: tttp.program "eval_step"
// MINI-NOT: softmax_xent
// MINI: tttp.lm_head_xent
// MINI-LABEL: tttp.program "micro_step"
// MINI: tttp.fused_elementwise
// MINI: %{{.*}}, %{{.*}}, %[[LSE:.*]] = tttp.lm_head_xent %[[H:[^,]*]], %[[E:[^,]*]], %[[T:[^ ]*]] {chunk = 32
// MINI-NOT: softmax_xent
// MINI: tttp.lm_head_xent_bwd %[[H]], %[[E]], %[[T]], %[[LSE]], %{{.*}} : (tensor<2x64x8xf64>, tensor<32x8xf64>, tensor<2x64xi32>, tensor<128xf64>, tensor<128xf64>) -> (tensor<2x64x8xf64>, tensor<32x8xf64>)
// MINI-NOT: softmax_xent
