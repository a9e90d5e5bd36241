// RUN: not ttt-opt %inputs/mini.mlir --ttt-expand 2>&1 | FileCheck %s --check-prefix=UNROLL
// RUN: not ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="seq-len=40" 2>&1 | FileCheck %s --check-prefix=SEQ
// RUN: not ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="dtype=f16" 2>&1 | FileCheck %s --check-prefix=DTYPE
// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand | FileCheck %s --check-prefix=DEFAULTS

// UNROLL: error: run ttt-unroll-repeat before ttt-expand
// SEQ: error: batch must be positive and seq-len a multiple of 16
// DTYPE: error: dtype must be f32 or f64, got 'f16'
// The recipe's seq_len (64), batch 1, f32 by default.
// DEFAULTS: tttp.input "tokens" : tensor<1x64xi32>
// DEFAULTS: tttp.param "embed" : tensor<32x8xf32>
