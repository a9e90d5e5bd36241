// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=32 dtype=f64" | FileCheck %s
// ttt.ttt_linear, spec 2.3: the LR gate reads the full hidden vector u (not a head slice),
// eta_lr = base_lr * sigmoid(u w_h + c_h) / head_dim (1/4 here); tau_i = max(0, 1/i + delta_i).

// CHECK-LABEL: tttp.program "eval_step"
// CHECK: tttp.param "layers.0.seq_norm"
// CHECK: %[[U:[^ ]+]] = tttp.rms_norm
// CHECK: %[[LRW:[^ ]+]] = tttp.param "layers.0.ttt.lr_gate.weight" : tensor<2x8xf64>
// CHECK: %[[LRB:[^ ]+]] = tttp.param "layers.0.ttt.lr_gate.bias" : tensor<2xf64>
// CHECK: %[[TIDX:[^ ]+]] = tttp.param "layers.0.ttt.token_idx" : tensor<16xf64>
// CHECK: %[[GL:[^ ]+]] = tttp.matmul %[[U]], %[[LRW]] {transpose_b} : (tensor<2x32x8xf64>, tensor<2x8xf64>) -> tensor<2x32x2xf64>
// CHECK: %[[GB:[^ ]+]] = tttp.binary %[[GL]], %[[LRB]] {kind = "add"}
// CHECK: %[[SG:[^ ]+]] = tttp.unary %[[GB]] {kind = "sigmoid"}
// CHECK: %[[ETA:[^ ]+]] = tttp.unary %[[SG]] {alpha = 2.500000e-01 : f64, kind = "scale"}
// CHECK: %[[ETAM:[^ ]+]] = tttp.reshape %[[ETA]] : (tensor<2x32x2xf64>) -> tensor<2x2x16x2xf64>
// CHECK: tttp.transpose %[[ETAM]] {perm = array<i64: 1, 0, 3, 2>} : (tensor<2x2x16x2xf64>) -> tensor<2x2x2x16xf64>
// CHECK: %[[I:[^ ]+]] = tttp.iota 1.000000e+00 : tensor<16xf64>
// CHECK: %[[INV:[^ ]+]] = tttp.unary %[[I]] {kind = "reciprocal"}
// CHECK: %[[SUM:[^ ]+]] = tttp.binary %[[INV]], %[[TIDX]] {kind = "add"}
// CHECK: %[[TAU:[^ ]+]] = tttp.unary %[[SUM]] {kind = "relu"}
// The carried state uses the last row: tau_b, picked by a one-hot of position 16.
// CHECK: %[[LAST:[^ ]+]] = tttp.iota -1.400000e+01 : tensor<16xf64>
// CHECK: %[[ONEHOT:[^ ]+]] = tttp.unary %[[LAST]] {kind = "relu"}
// CHECK: %[[PICK:[^ ]+]] = tttp.binary %[[TAU]], %[[ONEHOT]] {kind = "mul"}
// CHECK: tttp.reduce %[[PICK]] {kind = "sum"} : (tensor<16xf64>) -> tensor<f64>
