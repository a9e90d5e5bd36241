// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=32 dtype=f64" | FileCheck %s
// ttt.swiglu_mlp, ttt.lm_head (tied: the embedding table, transposed) and ttt.cross_entropy
// (per-token loss and BOS mask, per-sequence masked mean, batch mean).

// CHECK-LABEL: tttp.program "eval_step"
// CHECK: %[[TGT:[^ ]+]] = tttp.input "targets" : tensor<2x32xi32>
// CHECK: %[[E:[^ ]+]] = tttp.param "embed"
// CHECK: tttp.param "layers.0.ffn_norm"
// CHECK: %[[N2:[^ ]+]] = tttp.rms_norm
// CHECK: %[[WGATE:[^ ]+]] = tttp.param "layers.0.mlp.gate" : tensor<8x16xf64>
// CHECK: %[[WUP:[^ ]+]] = tttp.param "layers.0.mlp.up"
// CHECK: %[[WDOWN:[^ ]+]] = tttp.param "layers.0.mlp.down" : tensor<16x8xf64>
// CHECK: %[[XG:[^ ]+]] = tttp.matmul %[[N2]], %[[WGATE]] : (tensor<2x32x8xf64>, tensor<8x16xf64>) -> tensor<2x32x16xf64>
// CHECK: %[[S:[^ ]+]] = tttp.unary %[[XG]] {kind = "silu"}
// CHECK: %[[XU:[^ ]+]] = tttp.matmul %[[N2]], %[[WUP]]
// CHECK: %[[HID:[^ ]+]] = tttp.binary %[[S]], %[[XU]] {kind = "mul"}
// CHECK: tttp.matmul %[[HID]], %[[WDOWN]] : (tensor<2x32x16xf64>, tensor<16x8xf64>) -> tensor<2x32x8xf64>
// CHECK: %[[NF:[^ ]+]] = tttp.param "final_norm"
// CHECK: %[[HF:[^ ]+]] = tttp.rms_norm %{{.*}}, %[[NF]]
// CHECK: %[[LOGITS:[^ ]+]] = tttp.matmul %[[HF]], %[[E]] {transpose_b} : (tensor<2x32x8xf64>, tensor<32x8xf64>) -> tensor<2x32x32xf64>
// CHECK: %[[FLAT:[^ ]+]] = tttp.reshape %[[LOGITS]] : (tensor<2x32x32xf64>) -> tensor<64x32xf64>
// CHECK: %[[L:[^ ]+]], %[[M:[^ ]+]] = tttp.softmax_xent %[[FLAT]], %[[TGT]] {ignore_token = 1 : i64} : (tensor<64x32xf64>, tensor<2x32xi32>) -> (tensor<64xf64>, tensor<64xf64>)
// CHECK: %[[LT:[^ ]+]] = tttp.reshape %[[L]] : (tensor<64xf64>) -> tensor<2x32xf64>
// CHECK: %[[MT:[^ ]+]] = tttp.reshape %[[M]]
// CHECK: %[[LOSS:[^ ]+]] = tttp.masked_mean %[[LT]], %[[MT]] : (tensor<2x32xf64>, tensor<2x32xf64>) -> tensor<f64>
// CHECK: tttp.output "loss" %[[LOSS]] : tensor<f64>
