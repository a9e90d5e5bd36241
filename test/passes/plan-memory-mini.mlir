// RUN: ttt-opt %inputs/mini.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=64 dtype=f32" --ttt-autodiff=remat-group=2 --ttt-plan-memory --ttt-verify-memory | FileCheck %s
// The memory plan of the mini model (unfused): parameters alias their master slots in the
// model's declaration order (embed first, 32x8 f32 = 1 KiB), the scan's checkpoints (the carried
// W [2,2,2,4,4] and b [2,2,2,4] at each of the 2 group starts) get the checkpoints region, every
// other tensor the arena, a reshape its operand's buffer; each program carries its summary and
// the verifier's mark.

// CHECK-LABEL: tttp.program "eval_step" attributes {tttp.memory = {alignment = 256 : i64, arena = 86016 : i64, arena_peak = 86016 : i64, checkpoints = 0 : i64, grads = 8448 : i64, moments = 16896 : i64, params = 8448 : i64}, tttp.memory_verified}
// CHECK: tttp.input "tokens" {tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 512]]} : tensor<2x64xi32>
// CHECK: tttp.param "embed" {tttp.buffers = {{\[\[}}0, 0, 1024]]}
// CHECK: tttp.param "layers.0.conv.norm" {tttp.buffers = {{\[\[}}0, 1024, 32]]}
// CHECK: tttp.scan({{.*}}) over({{.*}}) {tttp.arg_buffers = {{\[\[}}4, {{[0-9]+}}, 256], [4, [[B:[0-9]+]], 64], [4, {{[0-9]+}}, 1024], [4, {{[0-9]+}}, 1024], [4, {{[0-9]+}}, 1024], [4, [[ETA:[0-9]+]], 256]], tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 256], [4, {{[0-9]+}}, 64], [4, {{[0-9]+}}, 4096]]}
// A reshape in the body views its block argument's buffer (the carried b, the eta slice).
// CHECK: tttp.reshape %arg1 {tttp.buffers = {{\[\[}}4, [[B]], 64]]}
// CHECK: tttp.reshape %arg5 {tttp.buffers = {{\[\[}}4, [[ETA]], 256]]}

// CHECK-LABEL: tttp.program "micro_step" attributes {tttp.memory = {alignment = 256 : i64, arena = 244480 : i64, arena_peak = 244480 : i64, checkpoints = 768 : i64, grads = 8448 : i64, moments = 16896 : i64, params = 8448 : i64}, tttp.memory_verified}
// CHECK: tttp.param "embed" {tttp.buffers = {{\[\[}}0, 0, 1024]]}
// CHECK: tttp.scan({{.*}}tttp.buffers = {{\[\[}}4, {{[0-9]+}}, 256], [4, {{[0-9]+}}, 64], [4, {{[0-9]+}}, 4096], [3, 0, 512], [3, 512, 128]]}
// CHECK: tttp.scan({{.*}}) {reverse, tttp.arg_buffers
