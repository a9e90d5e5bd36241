// RUN: ttt-vjp-check %s  | FileCheck %s
// causal_conv with a history before t = 0 (state passing; a constant here, since carried states
// get no gradient): the kernel's cotangent includes the history's terms. Gradients of
// ttt-autodiff vs central finite differences (fp64, CPU backend).

tttp.program "eval_step" {
  %x = tttp.param "x" : tensor<2x5x4xf64>
  %k = tttp.param "k" : tensor<3x4xf64>
  %b = tttp.param "b" : tensor<4xf64>
  %h = tttp.constant 0.75 : tensor<2x2x4xf64>
  %y = tttp.causal_conv %x, %k, %b, %h : (tensor<2x5x4xf64>, tensor<3x4xf64>, tensor<4xf64>, tensor<2x2x4xf64>) -> tensor<2x5x4xf64>
  tttp.output "out" %y : tensor<2x5x4xf64>
}

// CHECK: micro_step loss {{.*}} ok
// CHECK-NOT: FAIL
// CHECK: all gradients ok
