// RUN: ttt-vjp-check %s  | FileCheck %s
// rope at t mod period: the backward is the inverse rotation. Gradients of ttt-autodiff vs central finite differences (fp64, CPU backend).

tttp.program "eval_step" {
  %x = tttp.param "x" : tensor<2x6x2x4xf64>
  %y = tttp.rope %x {period = 4 : i64, theta = 1.0e+02 : f64} : (tensor<2x6x2x4xf64>) -> tensor<2x6x2x4xf64>
  tttp.output "out" %y : tensor<2x6x2x4xf64>
}

// CHECK: micro_step loss {{.*}} ok
// CHECK-NOT: FAIL
// CHECK: all gradients ok
