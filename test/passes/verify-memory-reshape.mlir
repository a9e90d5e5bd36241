// RUN: ttt-opt %s --split-input-file --ttt-verify-memory | FileCheck %s
// Reshapes in a memory plan that ttt-verify-memory accepts: a reshape whose buffer is exactly
// its operand's is a view (one buffer, live as long as any of its values); a reshape with a
// buffer of its own is a copy, checked like any other value (plans of an older tttc).
// verify-memory-errors.mlir has the overlaps it still rejects.

// A chain of views of %a in %a's bytes, live until the output of %r2; %b, read from the view,
// has its own.
// CHECK-LABEL: tttp.program "views"
// CHECK-SAME: tttp.memory_verified
tttp.program "views" attributes {tttp.memory = {alignment = 256, arena = 512, arena_peak = 512, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  %wr = tttp.reshape %w {tttp.buffers = [[0, 0, 256]]} : (tensor<8x8xf32>) -> tensor<64xf32>
  %a = tttp.unary %wr {kind = "exp", tttp.buffers = [[4, 0, 256]]} : (tensor<64xf32>) -> tensor<64xf32>
  %r = tttp.reshape %a {tttp.buffers = [[4, 0, 256]]} : (tensor<64xf32>) -> tensor<8x8xf32>
  %r2 = tttp.reshape %r {tttp.buffers = [[4, 0, 256]]} : (tensor<8x8xf32>) -> tensor<2x32xf32>
  %b = tttp.unary %r {kind = "exp", tttp.buffers = [[4, 256, 256]]} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  tttp.output "y" %b : tensor<8x8xf32>
  tttp.output "z" %r2 : tensor<2x32xf32>
}

// -----

// A reshape with a buffer of its own is a copy (the runtime moves the bytes): accepted when it
// overlaps nothing live at the same time, as any other value (%b reuses %a's bytes once %a is
// dead).
// CHECK-LABEL: tttp.program "copy"
// CHECK-SAME: tttp.memory_verified
tttp.program "copy" attributes {tttp.memory = {alignment = 256, arena = 512, arena_peak = 512, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  %a = tttp.unary %w {kind = "exp", tttp.buffers = [[4, 0, 256]]} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %r = tttp.reshape %a {tttp.buffers = [[4, 256, 256]]} : (tensor<8x8xf32>) -> tensor<64xf32>
  %b = tttp.unary %r {kind = "exp", tttp.buffers = [[4, 0, 256]]} : (tensor<64xf32>) -> tensor<64xf32>
  tttp.output "y" %b : tensor<64xf32>
}

// -----

// In a scan body, a reshape of a block argument views the argument's buffer, and the body may
// yield it.
// CHECK-LABEL: tttp.program "body"
// CHECK-SAME: tttp.memory_verified
tttp.program "body" attributes {tttp.memory = {alignment = 256, arena = 2048, arena_peak = 2048, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  %x = tttp.constant 1.0 {tttp.buffers = [[4, 0, 512]]} : tensor<2x64xf32>
  %f:2 = tttp.scan(%w) over(%x) {tttp.arg_buffers = [[4, 512, 256], [4, 768, 256]], tttp.buffers = [[4, 1024, 256], [4, 1280, 512]]} : (tensor<8x8xf32>, tensor<2x64xf32>) -> (tensor<8x8xf32>, tensor<2x8x8xf32>) {
  ^bb0(%c: tensor<8x8xf32>, %s: tensor<64xf32>):
    %sr = tttp.reshape %s {tttp.buffers = [[4, 768, 256]]} : (tensor<64xf32>) -> tensor<8x8xf32>
    %n = tttp.binary %c, %sr {kind = "add", tttp.buffers = [[4, 1792, 256]]} : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
    tttp.yield %n, %sr : tensor<8x8xf32>, tensor<8x8xf32>
  }
  tttp.output "y" %f#1 : tensor<2x8x8xf32>
}
