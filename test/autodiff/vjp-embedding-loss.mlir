// RUN: ttt-vjp-check %s  | FileCheck %s
// embedding (repeated ids), softmax_xent with the BOS mask, masked_mean. Gradients of ttt-autodiff vs central finite differences (fp64, CPU backend).

tttp.program "eval_step" {
  %tok = tttp.input "tokens" {max = 6} : tensor<2x5xi32>
  %tgt = tttp.input "targets" {max = 3} : tensor<2x5xi32>
  %table = tttp.param "table" : tensor<6x4xf64>
  %w = tttp.param "w" : tensor<7x4xf64>
  %h = tttp.embedding %tok, %table : (tensor<2x5xi32>, tensor<6x4xf64>) -> tensor<2x5x4xf64>
  %logits = tttp.matmul %h, %w {transpose_b} : (tensor<2x5x4xf64>, tensor<7x4xf64>) -> tensor<2x5x7xf64>
  %flat = tttp.reshape %logits : (tensor<2x5x7xf64>) -> tensor<10x7xf64>
  %loss, %mask = tttp.softmax_xent %flat, %tgt {ignore_token = 1 : i64} : (tensor<10x7xf64>, tensor<2x5xi32>) -> (tensor<10xf64>, tensor<10xf64>)
  %l2 = tttp.reshape %loss : (tensor<10xf64>) -> tensor<2x5xf64>
  %m2 = tttp.reshape %mask : (tensor<10xf64>) -> tensor<2x5xf64>
  %mean = tttp.masked_mean %l2, %m2 : (tensor<2x5xf64>, tensor<2x5xf64>) -> tensor<f64>
  tttp.output "out" %mean : tensor<f64>
}

// CHECK: micro_step loss {{.*}} ok
// CHECK-NOT: FAIL
// CHECK: all gradients ok
