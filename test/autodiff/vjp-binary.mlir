// RUN: ttt-vjp-check %s  | FileCheck %s
// binary add/sub/mul/div with broadcasting on either side (sum_to). Gradients of ttt-autodiff vs central finite differences (fp64, CPU backend).

tttp.program "eval_step" {
  %a = tttp.param "a" : tensor<2x3x4xf64>
  %b = tttp.param "b" : tensor<3x1xf64>
  %c = tttp.param "c" {positive} : tensor<4xf64>
  %d = tttp.param "d" : tensor<f64>
  %s = tttp.binary %a, %b {kind = "add"} : (tensor<2x3x4xf64>, tensor<3x1xf64>) -> tensor<2x3x4xf64>
  %t = tttp.binary %b, %s {kind = "sub"} : (tensor<3x1xf64>, tensor<2x3x4xf64>) -> tensor<2x3x4xf64>
  %m = tttp.binary %t, %d {kind = "mul"} : (tensor<2x3x4xf64>, tensor<f64>) -> tensor<2x3x4xf64>
  %q = tttp.binary %m, %c {kind = "div"} : (tensor<2x3x4xf64>, tensor<4xf64>) -> tensor<2x3x4xf64>
  %sq = tttp.binary %q, %q {kind = "mul"} : (tensor<2x3x4xf64>, tensor<2x3x4xf64>) -> tensor<2x3x4xf64>
  tttp.output "out" %sq : tensor<2x3x4xf64>
}

// CHECK: micro_step loss {{.*}} ok
// CHECK-NOT: FAIL
// CHECK: all gradients ok
