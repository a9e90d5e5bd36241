// RUN: ttt-vjp-check %s  | FileCheck %s
// reduce sum/mean, transpose, reshape, tril. Gradients of ttt-autodiff vs central finite differences (fp64, CPU backend).

tttp.program "eval_step" {
  %x = tttp.param "x" : tensor<2x3x3xf64>
  %t = tttp.transpose %x {perm = array<i64: 2, 0, 1>} : (tensor<2x3x3xf64>) -> tensor<3x2x3xf64>
  %r = tttp.reshape %t : (tensor<3x2x3xf64>) -> tensor<2x3x3xf64>
  %l = tttp.tril %r : (tensor<2x3x3xf64>) -> tensor<2x3x3xf64>
  %s = tttp.reduce %l {kind = "sum"} : (tensor<2x3x3xf64>) -> tensor<2x3xf64>
  %m = tttp.reduce %x {kind = "mean"} : (tensor<2x3x3xf64>) -> tensor<2x3xf64>
  %p = tttp.binary %s, %m {kind = "mul"} : (tensor<2x3xf64>, tensor<2x3xf64>) -> tensor<2x3xf64>
  tttp.output "out" %p : tensor<2x3xf64>
}

// CHECK: micro_step loss {{.*}} ok
// CHECK-NOT: FAIL
// CHECK: all gradients ok
