// RUN: ttt-opt %s -split-input-file -verify-diagnostics | FileCheck %s
// tttp.inner_loop_fwd's optional cache result, [n, B, H, 3 b f + b^2 + 6 b] f32 (here n 2, B 1,
// H 1, b 16, f 4: 544), and tttp.inner_loop_bwd's optional cache operand.

// CHECK-LABEL: tttp.program "micro_step"
// CHECK: %{{[^ ]+}}, %{{[^ ]+}}, %{{[^ ]+}}, %{{[^ ]+}}, %{{[^ ]+}}, %[[C:[^ ]+]] = tttp.inner_loop_fwd
// CHECK: tttp.inner_loop_bwd {{.*}}, %[[C]] {
tttp.program "micro_step" {
  %W = tttp.param "W" : tensor<1x1x4x4xf32>
  %b = tttp.param "b" : tensor<1x1x4xf32>
  %q = tttp.param "q" : tensor<2x1x1x16x4xf32>
  %eta = tttp.param "eta" : tensor<2x1x1x16xf32>
  %tau = tttp.param "tau" : tensor<16xf32>
  %tl = tttp.param "tl" : tensor<f32>
  %g = tttp.param "g" : tensor<1x4xf32>
  %Wf, %bf, %o, %cw, %cb, %cache = tttp.inner_loop_fwd %W, %b, %q, %q, %q, %eta, %tau, %tl, %g, %g {eps = 1.0e-06 : f64, remat_group = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<1x1x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16xf32>, tensor<16xf32>, tensor<f32>, tensor<1x4xf32>, tensor<1x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x4x4xf32>, tensor<2x1x1x4xf32>, tensor<2x1x1x544xf32>)
  %r:10 = tttp.inner_loop_bwd %cw, %cb, %q, %q, %q, %eta, %tau, %tl, %g, %g, %W, %b, %q, %cache {eps = 1.0e-06 : f64, remat_group = 1 : i64} : (tensor<2x1x1x4x4xf32>, tensor<2x1x1x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16xf32>, tensor<16xf32>, tensor<f32>, tensor<1x4xf32>, tensor<1x4xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x544xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16xf32>, tensor<16xf32>, tensor<f32>, tensor<1x4xf32>, tensor<1x4xf32>)
  tttp.output "o" %o : tensor<2x1x1x16x4xf32>
}

// -----

tttp.program "micro_step" {
  %W = tttp.param "W" : tensor<1x1x4x4xf32>
  %b = tttp.param "b" : tensor<1x1x4xf32>
  %q = tttp.param "q" : tensor<2x1x1x16x4xf32>
  %eta = tttp.param "eta" : tensor<2x1x1x16xf32>
  %tau = tttp.param "tau" : tensor<16xf32>
  %tl = tttp.param "tl" : tensor<f32>
  %g = tttp.param "g" : tensor<1x4xf32>
  // expected-error @below {{cache has the wrong shape}}
  %Wf, %bf, %o, %cw, %cb, %cache = tttp.inner_loop_fwd %W, %b, %q, %q, %q, %eta, %tau, %tl, %g, %g {eps = 1.0e-06 : f64, remat_group = 1 : i64} : (tensor<1x1x4x4xf32>, tensor<1x1x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x16xf32>, tensor<16xf32>, tensor<f32>, tensor<1x4xf32>, tensor<1x4xf32>) -> (tensor<1x1x4x4xf32>, tensor<1x1x4xf32>, tensor<2x1x1x16x4xf32>, tensor<2x1x1x4x4xf32>, tensor<2x1x1x4xf32>, tensor<2x1x1x543xf32>)
  tttp.output "o" %o : tensor<2x1x1x16x4xf32>
}

// -----

tttp.program "micro_step" {
  %W = tttp.param "W" : tensor<1x1x4x4xf64>
  %b = tttp.param "b" : tensor<1x1x4xf64>
  %q = tttp.param "q" : tensor<2x1x1x16x4xf64>
  %eta = tttp.param "eta" : tensor<2x1x1x16xf64>
  %tau = tttp.param "tau" : tensor<16xf64>
  %tl = tttp.param "tl" : tensor<f64>
  %g = tttp.param "g" : tensor<1x4xf64>
  // expected-error @below {{cache must be f32}}
  %Wf, %bf, %o, %cw, %cb, %cache = tttp.inner_loop_fwd %W, %b, %q, %q, %q, %eta, %tau, %tl, %g, %g {eps = 1.0e-06 : f64, remat_group = 1 : i64} : (tensor<1x1x4x4xf64>, tensor<1x1x4xf64>, tensor<2x1x1x16x4xf64>, tensor<2x1x1x16x4xf64>, tensor<2x1x1x16x4xf64>, tensor<2x1x1x16xf64>, tensor<16xf64>, tensor<f64>, tensor<1x4xf64>, tensor<1x4xf64>) -> (tensor<1x1x4x4xf64>, tensor<1x1x4xf64>, tensor<2x1x1x16x4xf64>, tensor<2x1x1x4x4xf64>, tensor<2x1x1x4xf64>, tensor<2x1x1x544xf64>)
  tttp.output "o" %o : tensor<2x1x1x16x4xf64>
}
