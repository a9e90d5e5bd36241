// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=32 dtype=f64" | FileCheck %s
// ttt.ttt_linear, spec 2.1-2.2: shared Q/K projection, conv_q and conv_k on it, V projection,
// RoPE at t mod 16 on Q and K only, then the mini-batch-major layout [n, B, H, b, f].

// CHECK-LABEL: tttp.program "eval_step"
// CHECK: tttp.param "layers.0.seq_norm"
// CHECK: %[[U:[^ ]+]] = tttp.rms_norm
// CHECK: %[[WQ:[^ ]+]] = tttp.param "layers.0.ttt.wq"
// CHECK: %[[WV:[^ ]+]] = tttp.param "layers.0.ttt.wv"
// CHECK: %[[WG:[^ ]+]] = tttp.param "layers.0.ttt.wg"
// CHECK: %[[CQK:[^ ]+]] = tttp.param "layers.0.ttt.conv_q.kernel"
// CHECK: %[[CQB:[^ ]+]] = tttp.param "layers.0.ttt.conv_q.bias"
// CHECK: %[[CKK:[^ ]+]] = tttp.param "layers.0.ttt.conv_k.kernel"
// CHECK: %[[CKB:[^ ]+]] = tttp.param "layers.0.ttt.conv_k.bias"
// CHECK: %[[S:[^ ]+]] = tttp.matmul %[[U]], %[[WQ]] : (tensor<2x32x8xf64>, tensor<8x8xf64>) -> tensor<2x32x8xf64>
// CHECK: %[[XQ:[^ ]+]] = tttp.causal_conv %[[S]], %[[CQK]], %[[CQB]]
// CHECK: %[[XK:[^ ]+]] = tttp.causal_conv %[[S]], %[[CKK]], %[[CKB]]
// CHECK: %[[XV:[^ ]+]] = tttp.matmul %[[U]], %[[WV]]
// CHECK: %[[GT:[^ ]+]] = tttp.matmul %[[U]], %[[WG]]
// CHECK: %[[QH:[^ ]+]] = tttp.reshape %[[XQ]] : (tensor<2x32x8xf64>) -> tensor<2x32x2x4xf64>
// CHECK: %[[QR:[^ ]+]] = tttp.rope %[[QH]] {period = 16 : i64, theta = 1.000000e+04 : f64}
// CHECK: %[[QM:[^ ]+]] = tttp.reshape %[[QR]] : (tensor<2x32x2x4xf64>) -> tensor<2x2x16x2x4xf64>
// CHECK: %[[Q:[^ ]+]] = tttp.transpose %[[QM]] {perm = array<i64: 1, 0, 3, 2, 4>} : (tensor<2x2x16x2x4xf64>) -> tensor<2x2x2x16x4xf64>
// CHECK: tttp.rope
// CHECK: %[[VH:[^ ]+]] = tttp.reshape %[[XV]] : (tensor<2x32x8xf64>) -> tensor<2x32x2x4xf64>
// CHECK-NOT: tttp.rope %[[VH]]
// CHECK: tttp.transpose
