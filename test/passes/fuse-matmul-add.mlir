// RUN: ttt-opt %s --split-input-file --verify-diagnostics --ttt-fuse-matmul-add | FileCheck %s
// ttt-fuse-matmul-add: an add of a matmul's result becomes tttp.matmul_add (the other operand as
// the GEMM's C), when the add alone reads the matmul and nothing broadcasts.

// CHECK-LABEL: tttp.program "residual"
// CHECK: %[[X:.*]] = tttp.input "x"
// CHECK: %[[W:.*]] = tttp.param "w"
// CHECK: %[[H:.*]] = tttp.input "h"
// CHECK-NEXT: %[[Y:.*]] = tttp.matmul_add %[[X]], %[[W]], %[[H]] {transpose_b}
// CHECK-NOT: tttp.binary
// CHECK: tttp.output "y" %[[Y]]
tttp.program "residual" {
  %x = tttp.input "x" : tensor<2x8x16xf32>
  %w = tttp.param "w" : tensor<16x16xf32>
  %h = tttp.input "h" : tensor<2x8x16xf32>
  %m = tttp.matmul %x, %w {transpose_b} : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32>
  %y = tttp.binary %h, %m {kind = "add"} : (tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  tttp.output "y" %y : tensor<2x8x16xf32>
}

// -----

// Two matmuls: the later one absorbs the add, the earlier one is its addend.
// CHECK-LABEL: tttp.program "two"
// CHECK: %[[A:.*]] = tttp.matmul %{{.*}}, %{{.*}} :
// CHECK-NEXT: %[[S:.*]] = tttp.matmul_add %{{.*}}, %{{.*}}, %[[A]] :
// CHECK-NEXT: tttp.output "s" %[[S]]
tttp.program "two" {
  %x = tttp.input "x" : tensor<8x16xf32>
  %w = tttp.param "w" : tensor<16x16xf32>
  %v = tttp.param "v" : tensor<16x16xf32>
  %a = tttp.matmul %x, %w : (tensor<8x16xf32>, tensor<16x16xf32>) -> tensor<8x16xf32>
  %b = tttp.matmul %x, %v : (tensor<8x16xf32>, tensor<16x16xf32>) -> tensor<8x16xf32>
  %s = tttp.binary %a, %b {kind = "add"} : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  tttp.output "s" %s : tensor<8x16xf32>
}

// -----

// Left alone: a matmul read twice, a broadcasting add, and a sub.
// CHECK-LABEL: tttp.program "kept"
// CHECK-NOT: tttp.matmul_add
// CHECK: tttp.output "z"
tttp.program "kept" {
  %x = tttp.input "x" : tensor<8x16xf32>
  %w = tttp.param "w" : tensor<16x16xf32>
  %bias = tttp.param "bias" : tensor<16xf32>
  %m = tttp.matmul %x, %w : (tensor<8x16xf32>, tensor<16x16xf32>) -> tensor<8x16xf32>
  %y = tttp.binary %x, %m {kind = "add"} : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  %y2 = tttp.binary %y, %m {kind = "mul"} : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  %n = tttp.matmul %x, %w : (tensor<8x16xf32>, tensor<16x16xf32>) -> tensor<8x16xf32>
  %z0 = tttp.binary %n, %bias {kind = "add"} : (tensor<8x16xf32>, tensor<16xf32>) -> tensor<8x16xf32>
  %k = tttp.matmul %x, %w : (tensor<8x16xf32>, tensor<16x16xf32>) -> tensor<8x16xf32>
  %z = tttp.binary %z0, %k {kind = "sub"} : (tensor<8x16xf32>, tensor<8x16xf32>) -> tensor<8x16xf32>
  tttp.output "y" %y2 : tensor<8x16xf32>
  tttp.output "z" %z : tensor<8x16xf32>
}

// -----

// The verifier: the addend has the result's type.
tttp.program "bad" {
  %x = tttp.input "x" : tensor<8x16xf32>
  %w = tttp.param "w" : tensor<16x16xf32>
  %h = tttp.input "h" : tensor<8x8xf32>
  // expected-error @+1 {{addend must have the result's type}}
  %y = tttp.matmul_add %x, %w, %h : (tensor<8x16xf32>, tensor<16x16xf32>, tensor<8x8xf32>) -> tensor<8x16xf32>
  tttp.output "y" %y : tensor<8x16xf32>
}
