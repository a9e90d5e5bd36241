// RUN: ttt-vjp-check %s  | FileCheck %s
// every unary kind (positive inputs for log, sqrt, rsqrt, reciprocal). Gradients of ttt-autodiff vs central finite differences (fp64, CPU backend).

tttp.program "eval_step" {
  %x = tttp.param "x" : tensor<2x7xf64>
  %p = tttp.param "p" {positive} : tensor<2x7xf64>
  %u1 = tttp.unary %x {kind = "neg"} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u2 = tttp.unary %u1 {kind = "sigmoid"} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u3 = tttp.unary %x {kind = "silu"} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u4 = tttp.unary %x {kind = "gelu_tanh"} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u5 = tttp.unary %x {kind = "scale", alpha = -2.5 : f64} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u6 = tttp.unary %x {kind = "add_scalar", alpha = 3.0 : f64} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u7 = tttp.unary %x {kind = "exp"} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u8 = tttp.unary %p {kind = "log"} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u9 = tttp.unary %p {kind = "sqrt"} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u10 = tttp.unary %p {kind = "rsqrt"} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u11 = tttp.unary %p {kind = "reciprocal"} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %u12 = tttp.unary %p {kind = "relu"} : (tensor<2x7xf64>) -> tensor<2x7xf64>
  %a1 = tttp.binary %u2, %u3 {kind = "add"} : (tensor<2x7xf64>, tensor<2x7xf64>) -> tensor<2x7xf64>
  %a2 = tttp.binary %a1, %u4 {kind = "mul"} : (tensor<2x7xf64>, tensor<2x7xf64>) -> tensor<2x7xf64>
  %a3 = tttp.binary %a2, %u5 {kind = "add"} : (tensor<2x7xf64>, tensor<2x7xf64>) -> tensor<2x7xf64>
  %a4 = tttp.binary %a3, %u6 {kind = "mul"} : (tensor<2x7xf64>, tensor<2x7xf64>) -> tensor<2x7xf64>
  %a5 = tttp.binary %a4, %u7 {kind = "add"} : (tensor<2x7xf64>, tensor<2x7xf64>) -> tensor<2x7xf64>
  %a6 = tttp.binary %a5, %u8 {kind = "add"} : (tensor<2x7xf64>, tensor<2x7xf64>) -> tensor<2x7xf64>
  %a7 = tttp.binary %a6, %u9 {kind = "mul"} : (tensor<2x7xf64>, tensor<2x7xf64>) -> tensor<2x7xf64>
  %a8 = tttp.binary %a7, %u10 {kind = "add"} : (tensor<2x7xf64>, tensor<2x7xf64>) -> tensor<2x7xf64>
  %a9 = tttp.binary %a8, %u11 {kind = "mul"} : (tensor<2x7xf64>, tensor<2x7xf64>) -> tensor<2x7xf64>
  %a10 = tttp.binary %a9, %u12 {kind = "add"} : (tensor<2x7xf64>, tensor<2x7xf64>) -> tensor<2x7xf64>
  tttp.output "out" %a10 : tensor<2x7xf64>
}

// CHECK: micro_step loss {{.*}} ok
// CHECK-NOT: FAIL
// CHECK: all gradients ok
