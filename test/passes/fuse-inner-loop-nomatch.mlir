// ttt-fuse-inner-loop leaves alone any scan that is not exactly the inner loop.
// RUN: ttt-opt %s --ttt-fuse-inner-loop | FileCheck %s
// An inner loop whose step differs in one op (sqrt instead of rsqrt) is not fused either, in
// eval_step or micro_step (and the backward of an unfused forward stays a scan as well):
// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=64 dtype=f64" --ttt-autodiff=remat-group=2 \
// RUN:   | sed -e 's/kind = "rsqrt"/kind = "sqrt"/' | ttt-opt --ttt-fuse-inner-loop | FileCheck %s --check-prefix=ALTERED

// Same carried types and input count as the inner loop, but another body.
// CHECK-LABEL: tttp.program "other"
// CHECK: tttp.scan
// CHECK-NOT: tttp.inner_loop_fwd
tttp.program "other" {
  %w = tttp.constant 0.0 : tensor<2x2x4x4xf64>
  %b = tttp.constant 0.0 : tensor<2x2x4xf64>
  %q = tttp.constant 1.0 : tensor<4x2x2x16x4xf64>
  %e = tttp.constant 1.0 : tensor<4x2x2x16xf64>
  %W, %B, %o = tttp.scan(%w, %b) over(%q, %q, %q, %e) : (tensor<2x2x4x4xf64>, tensor<2x2x4xf64>, tensor<4x2x2x16x4xf64>, tensor<4x2x2x16x4xf64>, tensor<4x2x2x16x4xf64>, tensor<4x2x2x16xf64>) -> (tensor<2x2x4x4xf64>, tensor<2x2x4xf64>, tensor<4x2x2x16x4xf64>) {
  ^bb0(%aw: tensor<2x2x4x4xf64>, %ab: tensor<2x2x4xf64>, %aq: tensor<2x2x16x4xf64>, %ak: tensor<2x2x16x4xf64>, %av: tensor<2x2x16x4xf64>, %ae: tensor<2x2x16xf64>):
    %s = tttp.binary %aq, %ak {kind = "add"} : (tensor<2x2x16x4xf64>, tensor<2x2x16x4xf64>) -> tensor<2x2x16x4xf64>
    tttp.yield %aw, %ab, %s : tensor<2x2x4x4xf64>, tensor<2x2x4xf64>, tensor<2x2x16x4xf64>
  }
  tttp.output "o" %o : tensor<4x2x2x16x4xf64>
}

// ALTERED-LABEL: tttp.program "eval_step"
// ALTERED-NOT: inner_loop
// ALTERED: tttp.scan
// ALTERED-LABEL: tttp.program "micro_step"
// ALTERED-NOT: inner_loop
// ALTERED: tttp.scan
// ALTERED: tttp.scan({{.*}}) {reverse}
// ALTERED-NOT: inner_loop
