//===- Passes.td - ttt compiler passes -------------------------*- tablegen -*-===//

#ifndef TTT_PASSES_TD
#define TTT_PASSES_TD

include "mlir/Pass/PassBase.td"

def TTTUnrollRepeat : Pass<"ttt-unroll-repeat", "::ttt::ModelOp"> {
  let summary = "Unrolls ttt.repeat into one copy of the layer per layer index";
  let description = [{
    Replaces each `ttt.repeat N` by N copies of its body, threading the residual stream, and
    turns every `ttt.param` of the body into N model-level parameters named `layers.<i>.<name>`
    with `{i}` in the Hugging Face name replaced by i. The parameter set (names, shapes,
    initializers, Hugging Face names) is unchanged, so the unrolled model is equivalent.

    Example:
    ```mlir
    %out = ttt.repeat 2 times(%h0) : tensor<?x?x64xf32> {
    ^bb0(%h: tensor<?x?x64xf32>):
      %w = ttt.param "norm" ones hf("model.layers.{i}.seq_norm.weight") : tensor<64xf32>
      ...
    }
    // becomes
    %w0 = ttt.param "layers.0.norm" ones hf("model.layers.0.seq_norm.weight") : tensor<64xf32>
    ...
    %w1 = ttt.param "layers.1.norm" ones hf("model.layers.1.seq_norm.weight") : tensor<64xf32>
    ```
  }];
}

def TTTExpand : Pass<"ttt-expand", "::mlir::ModuleOp"> {
  let summary = "Expands the (unrolled) model into the eval_step program of tensor primitives";
  let description = [{
    Writes `tttp.program "eval_step"` next to the `ttt.model`: every layer op becomes tensor
    primitives with static shapes (`batch` x `seq-len`, element type from `dtype`), and the TTT
    inner loop becomes a `tttp.scan` over mini-batches whose body is the dual form of spec 2.6:
    RoPE at position t mod mini_batch with interleaved pairs, the LR gate reading the full hidden
    vector, eta = tau_i * eta_lr_j with tau_i = max(0, 1/i + delta_i), the LayerNorm + L2 gradient
    in closed form (spec 2.4), W/b carried across mini-batches and started from W1/b1 for every
    sequence. Run `ttt-unroll-repeat` first.

    With the recipe's `state_passing`, each TTT layer's initial (W, b) and each causal conv's
    history (its last `width - 1` inputs) are program inputs `state:<name>` (with `state:reset`
    choosing W1/b1 and zero history for rows that start a stream) and the final ones outputs
    `state_out:<name>`; being inputs, they carry no gradient (truncated BPTT).

    Example: `ttt-opt model.mlir --ttt-unroll-repeat --ttt-expand="batch=2 seq-len=64 dtype=f64"`
  }];
  let dependentDialects = ["::ttt::prim::PrimDialect"];
  let options = [
    Option<"batch", "batch", "int64_t", "1", "sequences per batch">,
    Option<"seqLen", "seq-len", "int64_t", "0", "tokens per sequence (0: the recipe's)">,
    Option<"dtype", "dtype", "std::string", "\"f32\"", "element type: f32 or f64">,
  ];
}

def TTTAutodiff : Pass<"ttt-autodiff", "::mlir::ModuleOp"> {
  let summary = "Reverse-mode autodiff: eval_step -> micro_step (loss and every parameter's gradient)";
  let description = [{
    Writes `tttp.program "micro_step"`: the forward of `eval_step`, its `loss` output, then the
    backward built from each primitive's VJP rule (`VJPOpInterface`) in reverse order, and one
    `tttp.accumulate_grad` per parameter. Only values that depend on a parameter get
    cotangents. A `tttp.scan` is reversed generically: the forward runs in groups of
    `remat-group` steps and keeps the carried state at every group start; the backward is a
    reversed scan over the groups that recomputes the group's forward from its checkpoint, then
    runs the step body's VJP in reverse over the group, accumulating the gradients of the values
    the body reads from outside (closure) as carried state.

    Each parameter's gradient goes to `tttp.accumulate_grad` as soon as it is final, and
    `tttp.bucket_ready` marks where a bucket of about `bucket-mb` megabytes of gradients is
    complete (the data-parallel reduction points).

    Example: `ttt-opt m.mlir --ttt-unroll-repeat --ttt-expand=dtype=f64 --ttt-autodiff=remat-group=4`
  }];
  let dependentDialects = ["::ttt::prim::PrimDialect"];
  let options = [
    Option<"rematGroup", "remat-group", "int64_t", "4",
           "scan steps per rematerialization group (the recipe's remat_group)">,
    Option<"bucketMb", "bucket-mb", "double", "25.0",
           "megabytes of gradients per reduction bucket">,
  ];
}

def TTTPlanMemory : Pass<"ttt-plan-memory", "::mlir::ModuleOp"> {
  let summary = "Static memory plan: every tensor of every program gets a region and an offset";
  let description = [{
    Runs over every `tttp.program` after `ttt-autodiff`. Each tensor (SSA value, including the
    block arguments of scan bodies) gets one buffer `[region, offset, size]` (bytes) in one of
    five regions:

    | index | region | what lives there |
    |---|---|---|
    | 0 | `params` | the values of `tttp.param`: they alias the master parameters, one slot per parameter in the model's declaration order (two reads of one parameter share it) |
    | 1 | `grads` | the gradient accumulators, same layout as `params`: the values of `tttp.output "grad:<name>"` go to the slot of parameter `<name>` (a gradient added by `tttp.accumulate_grad` is a transient in the arena; its accumulator is that slot) |
    | 2 | `moments` | AdamW's m and v (2 x the `params` size); no program value lives there |
    | 3 | `checkpoints` | the inner-loop checkpoints: results of a top-level forward scan (or `tttp.inner_loop_fwd`) read only as scanned inputs of top-level reversed scans (or by `tttp.inner_loop_bwd`): the carry at each remat group start; one slot each |
    | 4 | `arena` | every other tensor, packed by liveness |

    `tttp.reshape` is a view (row-major: the same bytes): its result gets exactly its operand's
    buffer (same region, offset and size), so a chain of reshapes shares one buffer, planned as
    one value live from the first definition to the last use of any of them. A reshape of a
    parameter stays in the parameter's slot, of an input in the input's buffer, of a block
    argument in the argument's; a forward result read only through reshapes by the backward
    scans is still a checkpoint, its reshapes in its slot; a gradient output that reshapes an
    arena value puts that value (and its views) in the parameter's grads slot. The one exception
    is a gradient output that reshapes a parameter, an input, a block argument or another
    gradient: it keeps a buffer of its own (the runtime copies). Views are safe in scan bodies
    because the runtime writes a body's arguments only between iterations (the new carry
    through temporaries), never while a view of them is read.

    Liveness, in program order (ops numbered in a pre-order walk; a scan spans its body): a value
    lives from its definition to its last use, a use inside a scan body counting until that scan
    ends; block arguments and values defined in a scan body live for the whole scan
    (conservative: the body runs many times); inputs live from the start, values read by
    `tttp.output` until the end of the program. Arena packing is greedy by size with best fit
    (TFLite's and Triton's arena planners work this way): buffers in decreasing size order, each
    takes the smallest gap that fits between the already placed buffers whose lifetimes overlap
    its own, else goes on top of them. Every slot and offset is aligned to 256 bytes, so region
    sizes are sums of sizes rounded up to 256. Element sizes: f32 and i32 4, f64 8, bf16 2 (bf16
    plans still compute activations in f32 in this version).

    Attributes written:
    - on every op with results, `tttp.buffers = [[region, offset, size], ...]`, one per result;
    - on `tttp.scan`, also `tttp.arg_buffers` for its body's block arguments;
    - on `tttp.program`, `tttp.memory = {alignment, arena, arena_peak, checkpoints, grads,
      moments, params}`: region sizes in bytes; `arena_peak` is the most bytes (aligned sizes)
      live at any one position, a lower bound for any packing of the same intervals, to compare
      with `arena`.

    Example:
    ```mlir
    tttp.program "micro_step" attributes {tttp.memory = {alignment = 256, arena = 1536,
        arena_peak = 1280, checkpoints = 512, grads = 2048, moments = 4096, params = 2048}} {
      %w = tttp.param "w" {tttp.buffers = [[0, 1024, 256]]} : tensor<8x8xf32>
      %y = tttp.matmul %x, %w {tttp.buffers = [[4, 512, 256]]} : ...
      tttp.output "grad:w" %dw : tensor<8x8xf32>   // %dw has tttp.buffers = [[1, 1024, 256]]
    }
    ```
  }];
}

def TTTVerifyMemory : Pass<"ttt-verify-memory", "::mlir::ModuleOp"> {
  let summary = "Rejects a memory plan with overlapping live buffers or missing assignments";
  let description = [{
    Checks what `ttt-plan-memory` recorded on every `tttp.program`, recomputing the liveness
    intervals independently of the packing: every op result and scan body argument has a buffer
    (`tttp.buffers`, `tttp.arg_buffers`) whose size is its tensor's byte size, inside its region
    (sizes from `tttp.memory`) and 256-aligned; and no two buffers of the same region (except
    `params`, whose slots are the master parameters, aliased on purpose) are live at the same
    time and share a byte. The one overlap it accepts is a view: a `tttp.reshape` whose buffer
    is exactly its operand's (same region, offset, size) shares that buffer, the two (and the
    views of views) checked as one buffer live for the union of their lifetimes; a reshape with
    a buffer of its own is a copy, checked like any other value; any other overlap of live
    buffers, a partial one by a reshape included, is an error. Each error is reported at the op
    that owns the buffer, with a note at the other one. On success the program is marked `tttp.memory_verified`, so a pipeline's
    output shows that the check ran (tttc runs it on every plan).

    Example: `ttt-opt m.mlir ... --ttt-autodiff --ttt-plan-memory --ttt-verify-memory`
  }];
}

def TTTFuseInnerLoop : Pass<"ttt-fuse-inner-loop", "::mlir::ModuleOp"> {
  let summary = "Replaces the inner loop's scans by tttp.inner_loop_fwd / tttp.inner_loop_bwd";
  let description = [{
    In every program, recognizes the TTT inner loop as `ttt-expand` and `ttt-autodiff` build it
    and replaces it by one fused op whose kernel is a direct implementation (InnerLoop.h):

    * the plain forward scan of `eval_step` (carry (W, b), scanned q, k, v, eta, body = the
      dual-form step), and the grouped forward of `micro_step` (an outer scan over groups whose
      body is the inner scan of the step, yielding the group's start carry as checkpoints) ->
      `tttp.inner_loop_fwd` (with `remat_group` = the group size, the count for a plain scan);
    * the reversed scan of the backward (fed that forward's checkpoints; its body recomputes the
      group forward, then runs the reversed step scan: the step recomputed, then its VJP) ->
      `tttp.inner_loop_bwd`, its closure accumulators mapped to d(tau), d(tau_last), d(gamma),
      d(lambda).

    A step body must equal the dual-form step emitted afresh for its shapes (op by op, same
    attributes and wiring, closure values from outside the scan); the structure around it must
    be exactly that of the passes above. Any other scan is left untouched, so the pass is
    optional: the program computes the same with or without it (tttc `--no-fuse-inner-loop`).

    With `cache` (tttc: bf16 plans for sm_90, unless `--no-inner-loop-cache`), each forward
    that has a backward also returns the inner-loop cache and its backward reads it, for the
    shapes the GPU's tensor-core kernels take (mini-batch 16, head dim 64 or 96, f32): memory
    for the backward's recomputation (`tttp.inner_loop_fwd`).

    Example: `ttt-opt m.mlir --ttt-unroll-repeat --ttt-expand=dtype=f64 --ttt-autodiff --ttt-fuse-inner-loop`
  }];
  let options = [
    Option<"cache", "cache", "bool", "false",
           "give each forward with a backward the inner-loop cache (tensor-core shapes only)">,
  ];
  let dependentDialects = ["::ttt::prim::PrimDialect"];
}

def TTTFuseElementwise : Pass<"ttt-fuse-elementwise", "::mlir::ModuleOp"> {
  let summary = "Fuses elementwise chains and the tied lm_head + cross-entropy into single kernels";
  let description = [{
    Runs after `ttt-autodiff` (and `ttt-fuse-inner-loop`) on every program, scan bodies
    included. Two rewrites:

    * **lm_head + cross-entropy** (`lm-head`): `softmax_xent(reshape(matmul(h, E)
      {transpose_b}))` -> `tttp.lm_head_xent h, E, targets` (loss, mask and the rows'
      log-sum-exp), the vocabulary processed `chunk` columns at a time, so the `[N, V]` logits
      never exist. In micro_step its backward as `ttt-autodiff` builds it (`softmax_xent_bwd`,
      the reshape, then the matmul VJP: `dh = dC E`, `dE = reshape(dC)^T reshape(h)`) ->
      `tttp.lm_head_xent_bwd h, E, targets, lse, dloss` (dh, dE), recomputing the logits chunk
      by chunk. Matched only if the logits have no other reader.
    * **elementwise chains**: every `tttp.binary`, `tttp.unary` or `tttp.unary_bwd` (last first)
      roots a group that absorbs, transitively, the producers of its operands that are
      `binary`, `unary`, `unary_bwd` or `reshape` (a view), in the same block, whose result
      has a single use and as many elements as the root's, and whose smaller (broadcast)
      operands broadcast against the root's shape. A group of two or more ops becomes one
      `tttp.fused_elementwise` (its expression program: one step per op, reshapes vanish);
      values with several uses stay materialized (group boundaries).

    Fused and unfused programs compute the same values (each step rounded as the unfused
    primitive rounds it; the lm_head only sums in a different order): tttc runs the pass for
    plans, `--no-fuse-elementwise` leaves it out (test/e2e/fuse-elementwise-agreement.test).

    Example: `ttt-opt m.mlir --ttt-unroll-repeat --ttt-expand --ttt-autodiff --ttt-fuse-elementwise`
  }];
  let dependentDialects = ["::ttt::prim::PrimDialect"];
  let options = [
    Option<"lmHead", "lm-head", "bool", "true", "fuse the lm_head with the cross-entropy">,
    Option<"chunk", "chunk", "int64_t", "4096", "vocabulary columns per chunk of the lm_head">,
  ];
}

def TTTRecordCost : Pass<"ttt-record-cost", "::mlir::ModuleOp"> {
  let summary = "Records each program's kernels and bytes moved per step (before fusion)";
  let description = [{
    Sets `tttp.cost_unfused = {bytes, kernels}` on every `tttp.program`: the instructions that
    run a kernel (all but param, input, output, yield, bucket_ready and the scan itself; a scan
    body's counted once per iteration) and the bytes they read and write (operand + result
    sizes, times the trip count inside scans). tttc runs it before the fusion passes; the plan
    stores these numbers next to the fused program's (ttt-run --dump shows both). The fused
    count is taken after `ttt-plan-memory` and counts a reshape that shares its operand's
    buffer (a view) as no kernel and no bytes; this one, before planning, counts every reshape
    as a copy.
  }];
}

def TTTStoreBf16 : Pass<"ttt-store-bf16", "::mlir::ModuleOp"> {
  let summary = "Stores values that only matmuls read as bf16 (bf16 plans)";
  let description = [{
    tttc runs it for `--precision bf16` plans after the fusion passes (`--no-bf16-storage`
    leaves it out). At the top level of every program, a `tttp.rms_norm`, `tttp.binary` or
    `tttp.fused_elementwise` whose f32 result is read only by matmuls (either operand) or as the
    hidden operand of `tttp.lm_head_xent(_bwd)`, directly or through reshapes, gets the unit
    attribute `tttp.store_bf16`, and so do those reshapes. Such a value is stored as bf16: the
    memory plan gives it 2 bytes per element, the plan's tensor table says `bf16`, the CUDA
    kernel that produces it writes it rounded to bf16 (round to nearest even), and the matmuls
    read it as their bf16 operand instead of casting it first. The results are the same bits:
    a bf16 plan's matmul rounds its operands to bf16 in any case. The CPU backend, which runs
    bf16 plans in fp32, ignores the attribute.

    Example: `%u = tttp.rms_norm %x, %w {eps = 1.0e-06} {tttp.store_bf16}` when `%u` feeds only
    the q, v and gate projections and their weight gradients.
  }];
}

#endif // TTT_PASSES_TD
