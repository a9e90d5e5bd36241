// RUN: ttt-opt %s --split-input-file --ttt-plan-memory --ttt-verify-memory | FileCheck %s
// The planner's rules on small hand-written programs (all tensors 256 bytes = one slot).

// A chain: %a dies when %c is made, so %c reuses %a's bytes; the gradient output goes to the
// parameter's slot of the grads region; the parameter aliases its master slot.
// CHECK-LABEL: tttp.program "chain"
// CHECK-SAME: tttp.memory = {alignment = 256 : i64, arena = 512 : i64, arena_peak = 512 : i64, checkpoints = 0 : i64, grads = 512 : i64, moments = 1024 : i64, params = 512 : i64}
// CHECK-SAME: tttp.memory_verified
// CHECK: tttp.param "v" {tttp.buffers = {{\[\[}}0, 0, 256]]}
// CHECK: tttp.param "w" {tttp.buffers = {{\[\[}}0, 256, 256]]}
// CHECK: tttp.unary %{{.*}} {kind = "exp", tttp.buffers = {{\[\[}}4, 0, 256]]}
// CHECK: tttp.unary %{{.*}} {kind = "exp", tttp.buffers = {{\[\[}}4, 256, 256]]}
// CHECK: tttp.unary %{{.*}} {kind = "exp", tttp.buffers = {{\[\[}}4, 0, 256]]}
// CHECK: tttp.binary %{{.*}} {kind = "mul", tttp.buffers = {{\[\[}}1, 256, 256]]}
tttp.program "chain" {
  %v = tttp.param "v" : tensor<8x8xf32>
  %w = tttp.param "w" : tensor<8x8xf32>
  %a = tttp.unary %w {kind = "exp"} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %b = tttp.unary %a {kind = "exp"} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %c = tttp.unary %b {kind = "exp"} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %g = tttp.binary %c, %v {kind = "mul"} : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
  tttp.output "grad:w" %g : tensor<8x8xf32>
}

// -----

// A forward scan's stacked carry read only by a reversed scan is a checkpoint; the body's values
// and arguments live for the whole scan, and so does %x, read inside the second scan's body.
// CHECK-LABEL: tttp.program "scans"
// CHECK-SAME: checkpoints = 512 : i64
// CHECK: %[[X:.*]] = tttp.constant {{.*}}tttp.buffers = {{\[\[}}4, [[XOFF:[0-9]+]], 512]]
// CHECK: tttp.scan{{.*}}tttp.arg_buffers = {{\[\[}}4, {{[0-9]+}}, 256], [4, {{[0-9]+}}, 256]], tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 256], [3, 0, 512]]
// CHECK: tttp.scan{{.*}}reverse
// CHECK-NOT: [4, [[XOFF]], 512]
// CHECK: tttp.output
tttp.program "scans" {
  %w = tttp.param "w" : tensor<8x8xf32>
  %x = tttp.constant 1.0 : tensor<2x8x8xf32>
  %f:2 = tttp.scan(%w) over(%x) : (tensor<8x8xf32>, tensor<2x8x8xf32>) -> (tensor<8x8xf32>, tensor<2x8x8xf32>) {
  ^bb0(%c: tensor<8x8xf32>, %s: tensor<8x8xf32>):
    %n = tttp.binary %c, %s {kind = "add"} : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
    tttp.yield %n, %c : tensor<8x8xf32>, tensor<8x8xf32>
  }
  %r = tttp.scan(%w) over(%f#1) {reverse} : (tensor<8x8xf32>, tensor<2x8x8xf32>) -> tensor<8x8xf32> {
  ^bb0(%d: tensor<8x8xf32>, %k: tensor<8x8xf32>):
    %m = tttp.reduce %x {kind = "sum"} : (tensor<2x8x8xf32>) -> tensor<2x8xf32>
    %n = tttp.binary %d, %k {kind = "mul"} : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
    tttp.yield %n : tensor<8x8xf32>
  }
  tttp.output "y" %r : tensor<8x8xf32>
}
