// RUN: ttt-opt %s --split-input-file --ttt-verify-memory --verify-diagnostics
// Hand-written broken memory plans; ttt-verify-memory names the op and the buffers at fault.

// Two values live at the same time (%a is read by the op that defines %b) given the same arena
// bytes.
tttp.program "overlap" attributes {tttp.memory = {alignment = 256, arena = 512, arena_peak = 512, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  // expected-note @below {{the other buffer is defined here}}
  %a = tttp.constant 1.0 {tttp.buffers = [[4, 0, 256]]} : tensor<8x8xf32>
  // expected-error @below {{result #0: arena buffer [0, 256) overlaps result #0 of 'tttp.constant' [0, 256) while both are live (positions 2-3 and 1-2)}}
  %b = tttp.binary %a, %w {kind = "add", tttp.buffers = [[4, 0, 256]]} : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
  tttp.output "y" %b : tensor<8x8xf32>
}

// -----

// A value without a buffer.
tttp.program "missing" attributes {tttp.memory = {alignment = 256, arena = 512, arena_peak = 512, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  // expected-error @below {{has no buffer for every result ('tttp.buffers' needs 1 entries); run ttt-plan-memory}}
  %b = tttp.unary %w {kind = "exp"} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  tttp.output "y" %b : tensor<8x8xf32>
}

// -----

// A buffer that ends past its region.
tttp.program "outside" attributes {tttp.memory = {alignment = 256, arena = 256, arena_peak = 256, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  // expected-error @below {{result #0: buffer [256, 512) lies outside region 'arena' of 256 bytes}}
  %b = tttp.unary %w {kind = "exp", tttp.buffers = [[4, 256, 256]]} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  tttp.output "y" %b : tensor<8x8xf32>
}

// -----

// A buffer smaller than its tensor.
tttp.program "small" attributes {tttp.memory = {alignment = 256, arena = 256, arena_peak = 256, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  // expected-error @below {{result #0: buffer of 128 bytes for a tensor of 256 bytes}}
  %b = tttp.unary %w {kind = "exp", tttp.buffers = [[4, 0, 128]]} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  tttp.output "y" %b : tensor<8x8xf32>
}

// -----

// No summary: the plan was never made.
// expected-error @below {{has no memory plan summary ('tttp.memory' with the size of region 'params'); run ttt-plan-memory first}}
tttp.program "unplanned" {
  %w = tttp.param "w" : tensor<8x8xf32>
  tttp.output "y" %w : tensor<8x8xf32>
}

// -----

// A scan's body arguments need buffers too.
tttp.program "scan_args" attributes {tttp.memory = {alignment = 256, arena = 2048, arena_peak = 2048, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  %x = tttp.constant 1.0 {tttp.buffers = [[4, 0, 512]]} : tensor<2x8x8xf32>
  // expected-error @below {{has no buffer for every body argument ('tttp.arg_buffers' needs 2 entries); run ttt-plan-memory}}
  %f = tttp.scan(%w) over(%x) {tttp.buffers = [[4, 512, 256]]} : (tensor<8x8xf32>, tensor<2x8x8xf32>) -> tensor<8x8xf32> {
  ^bb0(%c: tensor<8x8xf32>, %s: tensor<8x8xf32>):
    %n = tttp.binary %c, %s {kind = "add", tttp.buffers = [[4, 1024, 256]]} : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
    tttp.yield %n : tensor<8x8xf32>
  }
  tttp.output "y" %f : tensor<8x8xf32>
}

// -----

// Only a reshape may share its operand's buffer: any other op given its live operand's exact
// buffer is an overlap.
tttp.program "value_alias" attributes {tttp.memory = {alignment = 256, arena = 256, arena_peak = 256, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  // expected-note @below {{the other buffer is defined here}}
  %a = tttp.unary %w {kind = "exp", tttp.buffers = [[4, 0, 256]]} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  // expected-error @below {{result #0: arena buffer [0, 256) overlaps result #0 of 'tttp.unary' [0, 256) while both are live (positions 2-3 and 1-2)}}
  %b = tttp.unary %a {kind = "neg", tttp.buffers = [[4, 0, 256]]} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  tttp.output "y" %b : tensor<8x8xf32>
}

// -----

// A reshape that shares some of its operand's bytes but not its buffer is no view: an overlap.
tttp.program "partial_view" attributes {tttp.memory = {alignment = 256, arena = 768, arena_peak = 768, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  // expected-note @below {{the other buffer is defined here}}
  %a = tttp.constant 1.0 {tttp.buffers = [[4, 0, 512]]} : tensor<2x8x8xf32>
  // expected-error @below {{result #0: arena buffer [256, 768) overlaps result #0 of 'tttp.constant' [0, 512) while both are live (positions 2-3 and 1-2)}}
  %r = tttp.reshape %a {tttp.buffers = [[4, 256, 512]]} : (tensor<2x8x8xf32>) -> tensor<2x64xf32>
  tttp.output "y" %r : tensor<2x64xf32>
}

// -----

// A view keeps its buffer live: %a dies at the reshape, but its bytes are %r's until %r's last
// use, so %c may not take them.
tttp.program "view_lifetime" attributes {tttp.memory = {alignment = 256, arena = 512, arena_peak = 512, checkpoints = 0, grads = 256, moments = 512, params = 256}} {
  %w = tttp.param "w" {tttp.buffers = [[0, 0, 256]]} : tensor<8x8xf32>
  // expected-note @below {{the other buffer is defined here}}
  %a = tttp.unary %w {kind = "exp", tttp.buffers = [[4, 0, 256]]} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  %r = tttp.reshape %a {tttp.buffers = [[4, 0, 256]]} : (tensor<8x8xf32>) -> tensor<64xf32>
  // expected-error @below {{result #0: arena buffer [0, 256) overlaps result #0 (with 1 reshape viewing it) of 'tttp.unary' [0, 256) while both are live (positions 3-4 and 1-4)}}
  %c = tttp.constant 2.0 {tttp.buffers = [[4, 0, 256]]} : tensor<64xf32>
  %d = tttp.binary %r, %c {kind = "add", tttp.buffers = [[4, 256, 256]]} : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  tttp.output "y" %d : tensor<64xf32>
}
