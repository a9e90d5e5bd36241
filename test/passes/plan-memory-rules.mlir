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

// -----

// A reshape views its operand's buffer: of a parameter, its slot; of an input, the input's
// buffer; chains of reshapes share one buffer, live from the first definition to the last use
// of any of them. %x (and %xr) die at %a, so %c takes their bytes; %a's buffer lives on, through
// %ar and %ar2, until the output.
// CHECK-LABEL: tttp.program "views"
// CHECK-SAME: arena = 512 : i64, arena_peak = 512 : i64
// CHECK: tttp.input "x" {tttp.buffers = {{\[\[}}4, 0, 256]]}
// CHECK: tttp.reshape %{{.*}} {tttp.buffers = {{\[\[}}0, 0, 256]]}
// CHECK: tttp.reshape %{{.*}} {tttp.buffers = {{\[\[}}4, 0, 256]]}
// CHECK: tttp.binary %{{.*}} {kind = "add", tttp.buffers = {{\[\[}}4, 256, 256]]}
// CHECK: tttp.reshape %{{.*}} {tttp.buffers = {{\[\[}}4, 256, 256]]}
// CHECK: tttp.reshape %{{.*}} {tttp.buffers = {{\[\[}}4, 256, 256]]}
// CHECK: tttp.unary %{{.*}} {kind = "exp", tttp.buffers = {{\[\[}}4, 0, 256]]}
tttp.program "views" {
  %w = tttp.param "w" : tensor<8x8xf32>
  %x = tttp.input "x" : tensor<8x8xf32>
  %wr = tttp.reshape %w : (tensor<8x8xf32>) -> tensor<64xf32>
  %xr = tttp.reshape %x : (tensor<8x8xf32>) -> tensor<64xf32>
  %a = tttp.binary %xr, %wr {kind = "add"} : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  %ar = tttp.reshape %a : (tensor<64xf32>) -> tensor<8x8xf32>
  %ar2 = tttp.reshape %ar : (tensor<8x8xf32>) -> tensor<2x32xf32>
  %c = tttp.unary %ar {kind = "exp"} : (tensor<8x8xf32>) -> tensor<8x8xf32>
  tttp.output "y" %ar2 : tensor<2x32xf32>
  tttp.output "z" %c : tensor<8x8xf32>
}

// -----

// Gradients through reshapes: a gradient output that reshapes an arena value puts that value in
// the parameter's grads slot (its op writes there, the reshape moves nothing); one that reshapes
// a parameter stays a copy (the two cannot share a slot); a reshaped gradient given to
// accumulate_grad views its operand's arena buffer.
// CHECK-LABEL: tttp.program "grad_views"
// CHECK-SAME: arena = 256 : i64
// CHECK: tttp.param "v" {tttp.buffers = {{\[\[}}0, 256, 256]]}
// CHECK: tttp.unary %{{.*}} {kind = "exp", tttp.buffers = {{\[\[}}1, 0, 256]]}
// CHECK: tttp.reshape %{{.*}} {tttp.buffers = {{\[\[}}1, 0, 256]]}
// CHECK: tttp.reshape %{{.*}} {tttp.buffers = {{\[\[}}1, 256, 256]]}
// CHECK: tttp.unary %{{.*}} {kind = "neg", tttp.buffers = {{\[\[}}4, 0, 256]]}
// CHECK: tttp.reshape %{{.*}} {tttp.buffers = {{\[\[}}4, 0, 256]]}
// CHECK: tttp.accumulate_grad "w"
tttp.program "grad_views" {
  %w = tttp.param "w" : tensor<8x8xf32>
  %v = tttp.param "v" : tensor<64xf32>
  %a = tttp.unary %v {kind = "exp"} : (tensor<64xf32>) -> tensor<64xf32>
  %g = tttp.reshape %a : (tensor<64xf32>) -> tensor<8x8xf32>
  %vr = tttp.reshape %v : (tensor<64xf32>) -> tensor<2x32xf32>
  %t = tttp.unary %a {kind = "neg"} : (tensor<64xf32>) -> tensor<64xf32>
  %tr = tttp.reshape %t : (tensor<64xf32>) -> tensor<8x8xf32>
  tttp.accumulate_grad "w" %tr : tensor<8x8xf32>
  tttp.output "grad:w" %g : tensor<8x8xf32>
  tttp.output "grad:v" %vr : tensor<2x32xf32>
}

// -----

// Reshapes in and around scans: in a body, a reshape of a block argument views the argument's
// buffer (%cr, and %cr2 that the body yields as a stacked result), a reshape of a body value
// views that value's (%nr, the yielded carry); a reshape of a checkpoint read only by the
// reversed scan keeps the checkpoint's slot; a reshape of a scan result views the result.
// CHECK-LABEL: tttp.program "scan_views"
// CHECK-SAME: checkpoints = 512 : i64
// CHECK: tttp.scan{{.*}}tttp.arg_buffers = {{\[\[}}4, [[C:[0-9]+]], 256], [4, [[S:[0-9]+]], 256]], tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 256], [3, 0, 512]]
// CHECK-NEXT: ^bb0
// CHECK-NEXT: tttp.reshape %arg0 {tttp.buffers = {{\[\[}}4, [[C]], 256]]}
// CHECK-NEXT: tttp.reshape %arg1 {tttp.buffers = {{\[\[}}4, [[S]], 256]]}
// CHECK-NEXT: tttp.binary {{.*}}tttp.buffers = {{\[\[}}4, [[N:[0-9]+]], 256]]
// CHECK-NEXT: tttp.reshape {{.*}}tttp.buffers = {{\[\[}}4, [[N]], 256]]
// CHECK-NEXT: tttp.reshape {{.*}}tttp.buffers = {{\[\[}}4, [[C]], 256]]
// CHECK: tttp.reshape {{.*}}tttp.buffers = {{\[\[}}3, 0, 512]]
// CHECK: tttp.scan{{.*}}reverse, tttp.arg_buffers = {{\[\[}}4, {{[0-9]+}}, 256], [4, [[Q:[0-9]+]], 256]], tttp.buffers = {{\[\[}}4, [[R:[0-9]+]], 256]]
// CHECK-NEXT: ^bb0
// CHECK-NEXT: tttp.reshape %arg1 {tttp.buffers = {{\[\[}}4, [[Q]], 256]]}
// CHECK: tttp.reshape {{.*}}tttp.buffers = {{\[\[}}4, [[R]], 256]]
tttp.program "scan_views" {
  %w = tttp.param "w" : tensor<8x8xf32>
  %x = tttp.constant 1.0 : tensor<2x8x8xf32>
  %f:2 = tttp.scan(%w) over(%x) : (tensor<8x8xf32>, tensor<2x8x8xf32>) -> (tensor<8x8xf32>, tensor<2x8x8xf32>) {
  ^bb0(%c: tensor<8x8xf32>, %s: tensor<8x8xf32>):
    %cr = tttp.reshape %c : (tensor<8x8xf32>) -> tensor<64xf32>
    %sr = tttp.reshape %s : (tensor<8x8xf32>) -> tensor<64xf32>
    %n = tttp.binary %cr, %sr {kind = "add"} : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
    %nr = tttp.reshape %n : (tensor<64xf32>) -> tensor<8x8xf32>
    %cr2 = tttp.reshape %cr : (tensor<64xf32>) -> tensor<8x8xf32>
    tttp.yield %nr, %cr2 : tensor<8x8xf32>, tensor<8x8xf32>
  }
  %k = tttp.reshape %f#1 : (tensor<2x8x8xf32>) -> tensor<2x64xf32>
  %r = tttp.scan(%w) over(%k) {reverse} : (tensor<8x8xf32>, tensor<2x64xf32>) -> tensor<8x8xf32> {
  ^bb0(%d: tensor<8x8xf32>, %q: tensor<64xf32>):
    %qr = tttp.reshape %q : (tensor<64xf32>) -> tensor<8x8xf32>
    %m = tttp.binary %d, %qr {kind = "mul"} : (tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
    tttp.yield %m : tensor<8x8xf32>
  }
  %rr = tttp.reshape %r : (tensor<8x8xf32>) -> tensor<64xf32>
  tttp.output "y" %rr : tensor<64xf32>
}
