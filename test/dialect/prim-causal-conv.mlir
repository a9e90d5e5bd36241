// RUN: ttt-opt %s -split-input-file -verify-diagnostics
// tttp.causal_conv: the history before t = 0 (state passing) must be [B, K - 1, C].

tttp.program "eval_step" {
  %x = tttp.param "x" : tensor<2x5x4xf64>
  %k = tttp.param "k" : tensor<3x4xf64>
  %b = tttp.param "b" : tensor<4xf64>
  %h = tttp.param "h" : tensor<2x3x4xf64>
  // expected-error @below {{history must be [2, 2, 4] (the K - 1 inputs before t = 0)}}
  %y = tttp.causal_conv %x, %k, %b, %h : (tensor<2x5x4xf64>, tensor<3x4xf64>, tensor<4xf64>, tensor<2x3x4xf64>) -> tensor<2x5x4xf64>
  tttp.output "out" %y : tensor<2x5x4xf64>
}

// -----

tttp.program "eval_step" {
  %x = tttp.param "x" : tensor<2x5x4xf64>
  %k = tttp.param "k" : tensor<3x5xf64>
  %b = tttp.param "b" : tensor<4xf64>
  // expected-error @below {{needs an input [B, T, C] and a kernel [K, C]}}
  %y = tttp.causal_conv %x, %k, %b : (tensor<2x5x4xf64>, tensor<3x5xf64>, tensor<4xf64>) -> tensor<2x5x4xf64>
  tttp.output "out" %y : tensor<2x5x4xf64>
}
