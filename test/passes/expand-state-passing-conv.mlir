// RUN: sed 's/state_passing = false/state_passing = true/' %inputs/mini.mlir | ttt-opt --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=32 dtype=f64" | FileCheck %s
// State passing: each causal conv reads its carried history (the last K - 1 inputs of the step
// before, zeroed at a stream reset) as its fourth operand instead of a concatenation with x, and
// the next step's history is the last K - 1 rows of x itself.

// CHECK-LABEL: tttp.program "eval_step"
// CHECK: %[[T:[^ ]+]] = tttp.input "state:layers.0.conv.tail" : tensor<2x3x8xf64>
// CHECK: %[[H:[^ ]+]] = tttp.binary %[[T]], %{{[^ ]+}} {kind = "mul"}
// CHECK: %[[N:[^ ]+]] = tttp.slice %[[X:[^ ]+]] {axis = 1 : i64, start = 29 : i64} : (tensor<2x32x8xf64>) -> tensor<2x3x8xf64>
// CHECK: tttp.causal_conv %[[X]], %{{[^ ]+}}, %{{[^ ]+}}, %[[H]] : (tensor<2x32x8xf64>, tensor<4x8xf64>, tensor<8xf64>, tensor<2x3x8xf64>) -> tensor<2x32x8xf64>
// CHECK-NOT: tttp.concat
// CHECK: tttp.output "state_out:layers.0.conv.tail" %[[N]]
