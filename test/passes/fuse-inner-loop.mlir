// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=64 dtype=f64" --ttt-autodiff=remat-group=2 --ttt-fuse-inner-loop | FileCheck %s
// ttt-fuse-inner-loop: the plain scan of eval_step, and the grouped forward scan and the reversed
// backward scan of micro_step, each become one fused op; no scan is left. The transposes between
// the projections' layout and the scan's fold into the ops (token_major): none is left either.

// CHECK-LABEL: tttp.program "eval_step"
// CHECK-NOT: tttp.scan
// 4 mini-batches, one group: W, b, q, k, v, eta, tau [16], tau_last [], gamma, lambda [2, 4].
// q, k, v [B, n, b, H, f], eta [B, n, b, H] (token_major).
// CHECK-NOT: tttp.transpose
// CHECK: = tttp.inner_loop_fwd %{{.*}} {eps = 9.9999999999999995E-7 : f64, remat_group = 4 : i64, token_major} : (tensor<2x2x4x4xf64>, tensor<2x2x4xf64>, tensor<2x4x16x2x4xf64>, tensor<2x4x16x2x4xf64>, tensor<2x4x16x2x4xf64>, tensor<2x4x16x2xf64>, tensor<16xf64>, tensor<f64>, tensor<2x4xf64>, tensor<2x4xf64>) -> (tensor<2x2x4x4xf64>, tensor<2x2x4xf64>, tensor<2x4x16x2x4xf64>, tensor<1x2x2x4x4xf64>, tensor<1x2x2x4xf64>)
// CHECK-NOT: tttp.transpose
// CHECK-NOT: tttp.scan
// CHECK: tttp.output "loss"

// CHECK-LABEL: tttp.program "micro_step"
// CHECK-NOT: tttp.scan
// Groups of 2: checkpoints [2, ...].
// CHECK-NOT: tttp.transpose
// CHECK: %{{[^ ]+}}, %{{[^ ]+}}, %{{[^ ]+}}, %[[CW:[^ ]+]], %[[CB:[^ ]+]] = tttp.inner_loop_fwd %{{.*}} {eps = {{.*}}, remat_group = 2 : i64, token_major} : ({{.*}}) -> (tensor<2x2x4x4xf64>, tensor<2x2x4xf64>, tensor<2x4x16x2x4xf64>, tensor<2x2x2x4x4xf64>, tensor<2x2x2x4xf64>)
// CHECK-NOT: tttp.scan
// CHECK: tttp.output "loss"
// CHECK-NOT: tttp.scan
// The backward reads the checkpoints; cotangents of W0, b0, q, k, v, eta, tau, tau_last, gamma, lambda.
// CHECK: = tttp.inner_loop_bwd %[[CW]], %[[CB]], {{.*}} {eps = {{.*}}, remat_group = 2 : i64, token_major} : ({{.*}}) -> (tensor<2x2x4x4xf64>, tensor<2x2x4xf64>, tensor<2x4x16x2x4xf64>, tensor<2x4x16x2x4xf64>, tensor<2x4x16x2x4xf64>, tensor<2x4x16x2xf64>, tensor<16xf64>, tensor<f64>, tensor<2x4xf64>, tensor<2x4xf64>)
// CHECK-NOT: tttp.transpose
// CHECK-NOT: tttp.scan
