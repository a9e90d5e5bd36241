// RUN: ttt-vjp-check %s  | FileCheck %s
// matmul: all transpose combinations, batched and with a broadcast 2-d B. Gradients of ttt-autodiff vs central finite differences (fp64, CPU backend).

tttp.program "eval_step" {
  %a = tttp.param "a" : tensor<2x3x4xf64>
  %b = tttp.param "b" : tensor<4x5xf64>
  %bb = tttp.param "bb" : tensor<2x4x5xf64>
  %c1 = tttp.matmul %a, %b : (tensor<2x3x4xf64>, tensor<4x5xf64>) -> tensor<2x3x5xf64>
  %bt = tttp.param "bt" : tensor<5x4xf64>
  %c2 = tttp.matmul %a, %bt {transpose_b} : (tensor<2x3x4xf64>, tensor<5x4xf64>) -> tensor<2x3x5xf64>
  %c3 = tttp.matmul %a, %bb : (tensor<2x3x4xf64>, tensor<2x4x5xf64>) -> tensor<2x3x5xf64>
  %at = tttp.param "at" : tensor<2x4x3xf64>
  %c4 = tttp.matmul %at, %bb {transpose_a} : (tensor<2x4x3xf64>, tensor<2x4x5xf64>) -> tensor<2x3x5xf64>
  %bbt = tttp.param "bbt" : tensor<2x5x4xf64>
  %c5 = tttp.matmul %at, %bbt {transpose_a, transpose_b} : (tensor<2x4x3xf64>, tensor<2x5x4xf64>) -> tensor<2x3x5xf64>
  %s1 = tttp.binary %c1, %c2 {kind = "add"} : (tensor<2x3x5xf64>, tensor<2x3x5xf64>) -> tensor<2x3x5xf64>
  %s2 = tttp.binary %s1, %c3 {kind = "add"} : (tensor<2x3x5xf64>, tensor<2x3x5xf64>) -> tensor<2x3x5xf64>
  %s3 = tttp.binary %s2, %c4 {kind = "add"} : (tensor<2x3x5xf64>, tensor<2x3x5xf64>) -> tensor<2x3x5xf64>
  %s4 = tttp.binary %s3, %c5 {kind = "add"} : (tensor<2x3x5xf64>, tensor<2x3x5xf64>) -> tensor<2x3x5xf64>
  tttp.output "out" %s4 : tensor<2x3x5xf64>
}

// CHECK: micro_step loss {{.*}} ok
// CHECK-NOT: FAIL
// CHECK: all gradients ok
