// RUN: ttt-vjp-check %s --remat-group=1 | FileCheck %s
// RUN: ttt-vjp-check %s --remat-group=2 | FileCheck %s
// RUN: ttt-vjp-check %s --remat-group=4 | FileCheck %s
// tttp.scan reversed generically: carried state, scanned inputs, stacked outputs and values the
// body reads from outside (closure), with 1, 2 and 4 steps per rematerialization group.

tttp.program "eval_step" {
  %w0 = tttp.param "w0" : tensor<2x3x3xf64>
  %b0 = tttp.param "b0" : tensor<2x3xf64>
  %xs = tttp.param "xs" : tensor<4x2x3xf64>
  %g = tttp.param "g" : tensor<3xf64>
  %r:3 = tttp.scan(%w0, %b0) over(%xs) : (tensor<2x3x3xf64>, tensor<2x3xf64>, tensor<4x2x3xf64>) -> (tensor<2x3x3xf64>, tensor<2x3xf64>, tensor<4x2x3xf64>) {
  ^bb0(%w: tensor<2x3x3xf64>, %b: tensor<2x3xf64>, %x: tensor<2x3xf64>):
    %xr = tttp.reshape %x : (tensor<2x3xf64>) -> tensor<2x1x3xf64>
    %xw = tttp.matmul %xr, %w : (tensor<2x1x3xf64>, tensor<2x3x3xf64>) -> tensor<2x1x3xf64>
    %y0 = tttp.reshape %xw : (tensor<2x1x3xf64>) -> tensor<2x3xf64>
    %y1 = tttp.binary %y0, %b {kind = "add"} : (tensor<2x3xf64>, tensor<2x3xf64>) -> tensor<2x3xf64>
    %y = tttp.unary %y1 {kind = "sigmoid"} : (tensor<2x3xf64>) -> tensor<2x3xf64>
    %yg = tttp.binary %y, %g {kind = "mul"} : (tensor<2x3xf64>, tensor<3xf64>) -> tensor<2x3xf64>
    %outer = tttp.matmul %xr, %xr {transpose_a} : (tensor<2x1x3xf64>, tensor<2x1x3xf64>) -> tensor<2x3x3xf64>
    %step = tttp.unary %outer {kind = "scale", alpha = 0.1 : f64} : (tensor<2x3x3xf64>) -> tensor<2x3x3xf64>
    %w2 = tttp.binary %w, %step {kind = "sub"} : (tensor<2x3x3xf64>, tensor<2x3x3xf64>) -> tensor<2x3x3xf64>
    %b2 = tttp.binary %b, %yg {kind = "sub"} : (tensor<2x3xf64>, tensor<2x3xf64>) -> tensor<2x3xf64>
    tttp.yield %w2, %b2, %yg : tensor<2x3x3xf64>, tensor<2x3xf64>, tensor<2x3xf64>
  }
  %fin = tttp.reshape %r#1 : (tensor<2x3xf64>) -> tensor<1x2x3xf64>
  %sum = tttp.binary %r#2, %fin {kind = "add"} : (tensor<4x2x3xf64>, tensor<1x2x3xf64>) -> tensor<4x2x3xf64>
  tttp.output "out" %sum : tensor<4x2x3xf64>
}

// CHECK: micro_step loss {{.*}} ok
// CHECK-NOT: FAIL
// CHECK: all gradients ok
