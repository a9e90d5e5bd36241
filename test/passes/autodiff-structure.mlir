// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=64 dtype=f64" --ttt-autodiff=remat-group=2 > %t
// RUN: FileCheck %s < %t
// RUN: FileCheck %s --check-prefix=ACC < %t
// micro_step: the forward with the inner-loop scan in groups of 2 mini-batches keeping the
// carried (W, b) at each group start, the loss, then a reversed scan over the groups that
// recomputes the group's forward and runs the step VJP in reverse; one gradient per parameter.

// CHECK-LABEL: tttp.program "micro_step"
// 4 mini-batches -> 2 groups of 2; results: finals, grouped outputs, checkpoints [2, ...].
// CHECK: %[[FWD:[^ ]+]]:5 = tttp.scan(%{{.*}}, %{{.*}}) over({{.*}}) : ({{.*}}tensor<2x2x2x2x16x4xf64>{{.*}}) -> (tensor<2x2x4x4xf64>, tensor<2x2x4xf64>, tensor<2x2x2x2x16x4xf64>, tensor<2x2x2x4x4xf64>, tensor<2x2x2x4xf64>)
// CHECK: tttp.scan
// CHECK: tttp.output "loss"
// The backward: reversed over the groups, fed the checkpoints.
// CHECK: tttp.scan({{.*}}) over(%[[FWD]]#3, %[[FWD]]#4, {{.*}}) {reverse}
// recompute the group forward, keeping the start carry of each step ...
// CHECK: tttp.scan
// CHECK: tttp.yield {{.*}}, {{.*}}, %arg{{[0-9]+}}, %arg{{[0-9]+}} :
// ... then the step VJPs in reverse: the closed-form gradient's rules and the dual form's.
// CHECK: tttp.scan({{.*}}) {reverse}
// CHECK: tttp.layer_norm_bwd
// CHECK: tttp.unary_bwd {{.*}} {kind = "rsqrt"}
// CHECK: tttp.matmul {{.*}} {transpose_a}
// CHECK: tttp.rope_bwd
// CHECK: tttp.causal_conv_bwd
// CHECK: tttp.rms_norm_bwd
// CHECK: tttp.embedding_bwd
// Gradients are accumulated where they become final; the last one closes the only bucket.
// ACC-LABEL: tttp.program "micro_step"
// ACC-DAG: tttp.accumulate_grad "embed" {{.*}} : tensor<32x8xf64>
// ACC-DAG: tttp.accumulate_grad "layers.0.ttt.W1" {{.*}} : tensor<2x4x4xf64>
// ACC-DAG: tttp.accumulate_grad "layers.0.ttt.token_idx" {{.*}} : tensor<16xf64>
// ACC-DAG: tttp.accumulate_grad "final_norm" {{.*}} : tensor<8xf64>
// ACC: tttp.bucket_ready 0 [
// ACC-NOT: tttp.bucket_ready
