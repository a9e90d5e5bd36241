// RUN: ttt-vjp-check %s  | FileCheck %s
// rms_norm and layer_norm (input, scale, bias). Gradients of ttt-autodiff vs central finite differences (fp64, CPU backend).

tttp.program "eval_step" {
  %x = tttp.param "x" : tensor<2x3x6xf64>
  %w = tttp.param "w" : tensor<6xf64>
  %b = tttp.param "b" : tensor<6xf64>
  %r = tttp.rms_norm %x, %w {eps = 1.0e-06 : f64} : (tensor<2x3x6xf64>, tensor<6xf64>) -> tensor<2x3x6xf64>
  %l = tttp.layer_norm %r, %w, %b {eps = 1.0e-06 : f64} : (tensor<2x3x6xf64>, tensor<6xf64>, tensor<6xf64>) -> tensor<2x3x6xf64>
  tttp.output "out" %l : tensor<2x3x6xf64>
}

// CHECK: micro_step loss {{.*}} ok
// CHECK-NOT: FAIL
// CHECK: all gradients ok
