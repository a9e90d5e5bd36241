// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=64 dtype=f64" --ttt-autodiff="remat-group=2 bucket-mb=0.001" | FileCheck %s
// Reduction points: with ~1 KB buckets, the gradients close buckets in backward order: the
// final norm and the MLP of the last layer first, the embedding (whose last contribution is
// the embedding lookup at the very start of the forward) last.

// CHECK-LABEL: tttp.program "micro_step"
// CHECK: tttp.accumulate_grad "final_norm"
// CHECK: tttp.bucket_ready 0 ["final_norm", "layers.0.mlp.down"] {bytes = 1088 : i64}
// CHECK: tttp.bucket_ready 1 [
// CHECK: tttp.bucket_ready 2 [
// CHECK: tttp.accumulate_grad "layers.0.conv.norm"
// CHECK: tttp.accumulate_grad "embed"
// CHECK-NEXT: tttp.bucket_ready {{[0-9]+}} [{{.*}}"embed"] {bytes = {{[0-9]+}} : i64}
// CHECK-NOT: tttp.bucket_ready
