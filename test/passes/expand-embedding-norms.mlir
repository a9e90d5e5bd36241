// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=32 dtype=f64" | FileCheck %s
// ttt.embedding, ttt.rms_norm, ttt.causal_conv and ttt.add become one primitive each, with the
// static batch x seq-len shapes and the requested element type.

// CHECK-LABEL: tttp.program "eval_step"
// CHECK: %[[TOK:[^ ]+]] = tttp.input "tokens" : tensor<2x32xi32>
// CHECK: %[[TGT:[^ ]+]] = tttp.input "targets" : tensor<2x32xi32>
// CHECK: %[[E:[^ ]+]] = tttp.param "embed" : tensor<32x8xf64>
// CHECK: %[[H0:[^ ]+]] = tttp.embedding %[[TOK]], %[[E]] : (tensor<2x32xi32>, tensor<32x8xf64>) -> tensor<2x32x8xf64>
// CHECK: %[[CN:[^ ]+]] = tttp.param "layers.0.conv.norm" : tensor<8xf64>
// CHECK: %[[CK:[^ ]+]] = tttp.param "layers.0.conv.kernel" : tensor<4x8xf64>
// CHECK: %[[CB:[^ ]+]] = tttp.param "layers.0.conv.bias" : tensor<8xf64>
// CHECK: %[[N0:[^ ]+]] = tttp.rms_norm %[[H0]], %[[CN]] {eps = {{.*}}E-7 : f64} : (tensor<2x32x8xf64>, tensor<8xf64>) -> tensor<2x32x8xf64>
// CHECK: %[[C:[^ ]+]] = tttp.causal_conv %[[N0]], %[[CK]], %[[CB]]
// CHECK: %[[H1:[^ ]+]] = tttp.binary %[[H0]], %[[C]] {kind = "add"}
// CHECK: tttp.param "layers.0.seq_norm"
// CHECK: tttp.rms_norm %[[H1]]
