// RUN: ttt-vjp-check %s  | FileCheck %s
// causal_conv: input, kernel (width 3 > some positions), bias. Gradients of ttt-autodiff vs central finite differences (fp64, CPU backend).

tttp.program "eval_step" {
  %x = tttp.param "x" : tensor<2x5x4xf64>
  %k = tttp.param "k" : tensor<3x4xf64>
  %b = tttp.param "b" : tensor<4xf64>
  %y = tttp.causal_conv %x, %k, %b : (tensor<2x5x4xf64>, tensor<3x4xf64>, tensor<4xf64>) -> tensor<2x5x4xf64>
  tttp.output "out" %y : tensor<2x5x4xf64>
}

// CHECK: micro_step loss {{.*}} ok
// CHECK-NOT: FAIL
// CHECK: all gradients ok
