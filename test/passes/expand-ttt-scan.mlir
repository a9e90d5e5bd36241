// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=32 dtype=f64" | FileCheck %s
// ttt.ttt_linear, spec 2.4-2.6 and 2.8: the inner loop is a scan over the 2 mini-batches of each
// sequence carrying W [B, H, f, f] and b [B, H, f], started from W1/b1 broadcast over the batch;
// the body is the dual form with the LayerNorm + L2 gradient in closed form.

// CHECK-LABEL: tttp.program "eval_step"
// CHECK: %[[W1:[^ ]+]] = tttp.param "layers.0.ttt.W1" : tensor<2x4x4xf64>
// CHECK: %[[B1:[^ ]+]] = tttp.param "layers.0.ttt.b1" : tensor<2x4xf64>
// CHECK: %[[ONES:[^ ]+]] = tttp.constant 1.000000e+00 : tensor<2x1x1x1xf64>
// CHECK: %[[W0:[^ ]+]] = tttp.binary %[[W1]], %[[ONES]] {kind = "mul"} : (tensor<2x4x4xf64>, tensor<2x1x1x1xf64>) -> tensor<2x2x4x4xf64>
// CHECK: %[[B0:[^ ]+]] = tttp.binary %[[B1]], %{{.*}} {kind = "mul"} : (tensor<2x4xf64>, tensor<2x1x1xf64>) -> tensor<2x2x4xf64>
// CHECK: %{{.*}}:3 = tttp.scan(%[[W0]], %[[B0]]) over(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}) : (tensor<2x2x4x4xf64>, tensor<2x2x4xf64>, tensor<2x2x2x16x4xf64>, tensor<2x2x2x16x4xf64>, tensor<2x2x2x16x4xf64>, tensor<2x2x2x16xf64>) -> (tensor<2x2x4x4xf64>, tensor<2x2x4xf64>, tensor<2x2x2x16x4xf64>)
// CHECK: ^bb0(%[[W:[^ ]+]]: tensor<2x2x4x4xf64>, %[[BB:[^ ]+]]: tensor<2x2x4xf64>, %[[Q:[^ ]+]]: tensor<2x2x16x4xf64>, %[[K:[^ ]+]]: tensor<2x2x16x4xf64>, %[[V:[^ ]+]]: tensor<2x2x16x4xf64>, %[[ETA:[^ ]+]]: tensor<2x2x16xf64>):
// Z = K W0 + b0, target = V - K
// CHECK: %[[BROW:[^ ]+]] = tttp.reshape %[[BB]] : (tensor<2x2x4xf64>) -> tensor<2x2x1x4xf64>
// CHECK: %[[KW:[^ ]+]] = tttp.matmul %[[K]], %[[W]]
// CHECK: %[[Z:[^ ]+]] = tttp.binary %[[KW]], %[[BROW]] {kind = "add"}
// CHECK: %[[TARGET:[^ ]+]] = tttp.binary %[[V]], %[[K]] {kind = "sub"}
// closed-form LN + L2 gradient: zhat, g = (gamma zhat + lambda - target) gamma,
// G = (f g - sum g - zhat sum(g zhat)) / (f sigma)
// CHECK: tttp.reduce %[[Z]] {kind = "mean"}
// CHECK: %[[RSTD:[^ ]+]] = tttp.unary %{{.*}} {kind = "rsqrt"}
// CHECK: %[[ZHAT:[^ ]+]] = tttp.binary %{{.*}}, %[[RSTD]] {kind = "mul"}
// CHECK: %[[R:[^ ]+]] = tttp.binary %{{.*}}, %[[TARGET]] {kind = "sub"}
// CHECK: %[[G:[^ ]+]] = tttp.binary %[[R]], %{{.*}} {kind = "mul"}
// CHECK: tttp.reduce %[[G]] {kind = "sum"}
// CHECK: tttp.unary %[[G]] {alpha = 4.000000e+00 : f64, kind = "scale"}
// CHECK: %[[GS:[^ ]+]] = tttp.unary %{{.*}} {alpha = 2.500000e-01 : f64, kind = "scale"}
// CHECK: %[[GRAD:[^ ]+]] = tttp.binary %[[GS]], %[[RSTD]] {kind = "mul"}
// E = tau_i eta_j, A = tril(Q K^T), Zbar = Q W0 + b0 - (E*A + tril(E)) G
// CHECK: %[[ETAROW:[^ ]+]] = tttp.reshape %[[ETA]] : (tensor<2x2x16xf64>) -> tensor<2x2x1x16xf64>
// CHECK: %[[E:[^ ]+]] = tttp.binary %{{.*}}, %[[ETAROW]] {kind = "mul"} : (tensor<16x1xf64>, tensor<2x2x1x16xf64>) -> tensor<2x2x16x16xf64>
// CHECK: %[[QK:[^ ]+]] = tttp.matmul %[[Q]], %[[K]] {transpose_b}
// CHECK: %[[A:[^ ]+]] = tttp.tril %[[QK]]
// CHECK: %[[ET:[^ ]+]] = tttp.tril %[[E]]
// CHECK: %[[EA:[^ ]+]] = tttp.binary %[[E]], %[[A]] {kind = "mul"}
// CHECK: %[[COEF:[^ ]+]] = tttp.binary %[[EA]], %[[ET]] {kind = "add"}
// CHECK: %[[CG:[^ ]+]] = tttp.matmul %[[COEF]], %[[GRAD]]
// CHECK: %[[QW:[^ ]+]] = tttp.matmul %[[Q]], %[[W]]
// CHECK: %[[QWB:[^ ]+]] = tttp.binary %[[QW]], %[[BROW]] {kind = "add"}
// CHECK: %[[ZBAR:[^ ]+]] = tttp.binary %[[QWB]], %[[CG]] {kind = "sub"}
// O = Q + LN(Zbar)
// CHECK: %[[LN:[^ ]+]] = tttp.layer_norm %[[ZBAR]]
// CHECK: %[[O:[^ ]+]] = tttp.binary %[[Q]], %{{.*}} {kind = "add"}
// W' = W - (e K)^T G, b' = b - e G, e = tau_b eta
// CHECK: %[[EL:[^ ]+]] = tttp.binary %[[ETA]], %{{.*}} {kind = "mul"} : (tensor<2x2x16xf64>, tensor<f64>) -> tensor<2x2x16xf64>
// CHECK: %[[DW:[^ ]+]] = tttp.matmul %{{.*}}, %[[GRAD]] {transpose_a}
// CHECK: %[[WN:[^ ]+]] = tttp.binary %[[W]], %[[DW]] {kind = "sub"}
// CHECK: %[[BN:[^ ]+]] = tttp.binary %[[BB]], %{{.*}} {kind = "sub"}
// CHECK: tttp.yield %[[WN]], %[[BN]], %[[O]]
