// RUN: ttt-opt %s --split-input-file --ttt-store-bf16 --ttt-plan-memory --ttt-verify-memory | FileCheck %s
// ttt-store-bf16: a value stored as bf16 is one that only matmuls read (directly or through
// reshapes); the memory plan then gives it 2 bytes per element.

// %u feeds two matmuls (one through a reshape): stored as bf16, 16x32 values in 1024 bytes, and
// the reshape too. %h is also read by a binary: it stays f32 (2048 bytes). %s, the mul that
// only the second matmul reads, is stored as bf16. Matmul results, outputs and parameters stay.
// CHECK-LABEL: tttp.program "mixed"
// CHECK: %[[U:.*]] = tttp.rms_norm {{.*}}tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 1024]], tttp.store_bf16}
// CHECK: tttp.reshape %[[U]] {{.*}}tttp.store_bf16}
// CHECK: tttp.matmul {{.*}}tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 2048]]}
// CHECK: tttp.matmul {{.*}}tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 2048]]}
// CHECK: tttp.binary {{.*}}kind = "mul", tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 1024]], tttp.store_bf16}
// CHECK: tttp.matmul {{.*}}tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 2048]]}
// CHECK: tttp.binary {{.*}}kind = "add", tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 2048]]}
// CHECK: tttp.output
tttp.program "mixed" {
  %x = tttp.input "x" : tensor<16x32xf32>
  %w = tttp.param "w" : tensor<32xf32>
  %m = tttp.param "m" : tensor<32x32xf32>
  %u = tttp.rms_norm %x, %w {eps = 1.0e-06 : f64} : (tensor<16x32xf32>, tensor<32xf32>) -> tensor<16x32xf32>
  %ur = tttp.reshape %u : (tensor<16x32xf32>) -> tensor<2x8x32xf32>
  %h = tttp.matmul %u, %m : (tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<16x32xf32>
  %h2 = tttp.matmul %ur, %m : (tensor<2x8x32xf32>, tensor<32x32xf32>) -> tensor<2x8x32xf32>
  %s = tttp.binary %h, %h {kind = "mul"} : (tensor<16x32xf32>, tensor<16x32xf32>) -> tensor<16x32xf32>
  %o = tttp.matmul %s, %m : (tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<16x32xf32>
  %y = tttp.binary %o, %h {kind = "add"} : (tensor<16x32xf32>, tensor<16x32xf32>) -> tensor<16x32xf32>
  tttp.output "y" %y : tensor<16x32xf32>
  tttp.output "y2" %h2 : tensor<2x8x32xf32>
}

// -----

// A value that a program outputs, or that an op other than a matmul reads, is not stored as bf16.
// CHECK-LABEL: tttp.program "kept"
// CHECK-NOT: tttp.store_bf16
// CHECK: tttp.output "u"
tttp.program "kept" {
  %x = tttp.input "x" : tensor<16x32xf32>
  %w = tttp.param "w" : tensor<32xf32>
  %m = tttp.param "m" : tensor<32x32xf32>
  %u = tttp.rms_norm %x, %w {eps = 1.0e-06 : f64} : (tensor<16x32xf32>, tensor<32xf32>) -> tensor<16x32xf32>
  %h = tttp.matmul %u, %m : (tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<16x32xf32>
  %e = tttp.unary %h {kind = "exp"} : (tensor<16x32xf32>) -> tensor<16x32xf32>
  %p = tttp.matmul %e, %m : (tensor<16x32xf32>, tensor<32x32xf32>) -> tensor<16x32xf32>
  tttp.output "u" %u : tensor<16x32xf32>
  tttp.output "p" %p : tensor<16x32xf32>
}
