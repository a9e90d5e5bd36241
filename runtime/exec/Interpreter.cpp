#include "runtime/exec/Interpreter.h"

#include "runtime/backend/cpu/Backward.h"
#include "runtime/backend/cpu/Fused.h"
#include "runtime/backend/cpu/InnerLoop.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <cstring>
#include <functional>
#include <numeric>

namespace ttt::exec {
namespace {
using cpu::Shape;
using Instrs = flatbuffers::Vector<flatbuffers::Offset<plan::Instr>>;

std::string str(const flatbuffers::String *s) { return s ? s->str() : std::string(); }

template <typename T> class Interpreter {
public:
  explicit Interpreter(const plan::Program &program) : program_(program) {
    size_t n = program.tensors() ? program.tensors()->size() : 0;
    floats_.resize(n);
    ints_.resize(n);
    // The last top-level instruction reading each tensor (a scan's body reads count as the
    // scan's): after it the buffer is released, and a reshape there moves instead of copying.
    lastUse_.assign(n, -1);
    if (program.instrs())
      for (uint32_t i = 0; i < program.instrs()->size(); ++i)
        markUses(*program.instrs()->Get(i), int32_t(i));
  }

  std::string run(const NamedTensors<T> &params, const NamedInts &inputs,
                  NamedTensors<T> &outputs, const GradientSink<T> *gradients,
                  const NamedTensors<T> *floatInputs) {
    floatInputs_ = floatInputs;
    params_ = &params;
    inputs_ = &inputs;
    outputs_ = &outputs;
    gradients_ = gradients;
    std::vector<int32_t> yielded;
    return exec(program_.instrs(), yielded);
  }

  // TTT_PROFILE=1: seconds per instruction kind, printed to stderr when the runner is destroyed.
  struct Profile {
    std::map<std::string, double> seconds;
    ~Profile() {
      std::vector<std::pair<double, std::string>> rows;
      double total = 0;
      for (auto &[op, t] : seconds) {
        rows.push_back({t, op});
        total += t;
      }
      std::sort(rows.rbegin(), rows.rend());
      std::fprintf(stderr, "profile: %.3f s in kernels\n", total);
      for (auto &[t, op] : rows)
        std::fprintf(stderr, "  %-18s %8.3f s %5.1f%%\n", op.c_str(), t, 100 * t / total);
    }
  };
  std::unique_ptr<Profile> profile_{std::getenv("TTT_PROFILE") ? new Profile : nullptr};

private:
  const plan::Program &program_;
  const NamedTensors<T> *params_ = nullptr;
  const NamedInts *inputs_ = nullptr;
  NamedTensors<T> *outputs_ = nullptr;
  const GradientSink<T> *gradients_ = nullptr;
  const NamedTensors<T> *floatInputs_ = nullptr;
  std::vector<std::vector<T>> floats_;
  std::vector<int32_t> lastUse_; // per tensor: last top-level instruction reading it, -1 none
  int32_t current_ = -1;         // index of the top-level instruction running, -1 in a body
  std::vector<std::vector<int32_t>> ints_;

  Shape shape(int32_t id) const {
    auto *dims = program_.tensors()->Get(id)->shape();
    return dims ? Shape(dims->begin(), dims->end()) : Shape{};
  }
  int64_t size(int32_t id) const { return cpu::numElements(shape(id)); }
  std::vector<T> &out(int32_t id) {
    floats_[id].assign(size_t(size(id)), T(0));
    return floats_[id];
  }
  const T *in(int32_t id) const { return floats_[id].data(); }

  void markUses(const plan::Instr &ins, int32_t index) {
    if (ins.operands())
      for (int32_t id : *ins.operands())
        lastUse_[id] = index;
    if (ins.body())
      for (const plan::Instr *inner : *ins.body())
        markUses(*inner, index);
  }

  std::string exec(const Instrs *instrs, std::vector<int32_t> &yielded) {
    if (!instrs)
      return "";
    const bool top = instrs == program_.instrs();
    for (uint32_t index = 0; index < instrs->size(); ++index) {
      const plan::Instr *instr = instrs->Get(index);
      current_ = top ? int32_t(index) : -1;
      std::string op = str(instr->op());
      if (op == "yield") {
        yielded.assign(instr->operands()->begin(), instr->operands()->end());
        continue;
      }
      // Kernel errors name their kernel; the interpreter's own errors name the instruction.
      auto t0 = profile_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
      std::string err = op == "scan" ? scan(*instr) : step(op, *instr);
      if (profile_ && op != "scan")
        profile_->seconds[op] +=
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!err.empty())
        return err;
      if (top && instr->operands() && op != "output")
        for (int32_t id : *instr->operands())
          if (lastUse_[id] == int32_t(index))
            std::vector<T>().swap(floats_[id]); // dead: give the memory back
    }
    return "";
  }

  static std::vector<std::string> bucketMembers(const plan::Instr &ins) {
    // bucket_ready: the parameter names, newline-separated in `name` (plan.fbs).
    std::vector<std::string> names;
    std::string all = str(ins.name()), item;
    for (char c : all) {
      if (c == '\n') {
        names.push_back(item);
        item.clear();
      } else {
        item += c;
      }
    }
    if (!item.empty())
      names.push_back(item);
    return names;
  }

  std::string step(const std::string &op, const plan::Instr &ins) {
    auto arg = [&](int i) { return ins.operands()->Get(i); };
    auto res = [&](int i) { return ins.results()->Get(i); };
    auto ints = [&](int i) { return ins.ints()->Get(i); };
    auto flt = [&](int i) { return ins.floats()->Get(i); };
    std::string name = str(ins.name());

    if (op == "param") {
      auto it = params_->find(name);
      if (it == params_->end() || int64_t(it->second.size()) != size(res(0)))
        return "param: parameter '" + name + "' is missing or has the wrong size";
      floats_[res(0)] = it->second;
    } else if (op == "input") {
      if (program_.tensors()->Get(res(0))->dtype() != plan::DType::i32) {
        // Float inputs: state passing's carried states (NamedTensors given with the inputs).
        if (!floatInputs_ || !floatInputs_->count(name) ||
            int64_t(floatInputs_->at(name).size()) != size(res(0)))
          return "input: state '" + name + "' is missing or has the wrong size";
        floats_[res(0)] = floatInputs_->at(name);
        return "";
      }
      auto it = inputs_->find(name);
      if (it == inputs_->end() || int64_t(it->second.size()) != size(res(0)))
        return "input: input '" + name + "' is missing or has the wrong size";
      ints_[res(0)] = it->second;
    } else if (op == "output") {
      (*outputs_)[name] = floats_[arg(0)];
    } else if (op == "accumulate_grad") {
      if (!gradients_ || !gradients_->accumulators)
        return "accumulate_grad: this program needs gradient accumulators (run it as micro_step)";
      auto it = gradients_->accumulators->find(name);
      const std::vector<T> &g = floats_[arg(0)];
      if (it == gradients_->accumulators->end() || it->second.size() != g.size())
        return "accumulate_grad: no accumulator of the right size for '" + name + "'";
      const T scale = T(gradients_->scale);
      for (size_t i = 0; i < g.size(); ++i)
        it->second[i] += scale * g[i];
    } else if (op == "bucket_ready") {
      if (gradients_ && gradients_->onBucketReady)
        gradients_->onBucketReady(ins.ints()->Get(0), bucketMembers(ins));
    } else if (op == "embedding") {
      Shape table = shape(arg(1));
      return cpu::embedding<T>(ints_[arg(0)].data(), size(arg(0)), in(arg(1)), table[0], table[1],
                               out(res(0)).data());
    } else if (op == "matmul") {
      Shape a = shape(arg(0)), b = shape(arg(1));
      cpu::MatmulShape s;
      s.transA = ints(0) != 0;
      s.transB = ints(1) != 0;
      size_t ra = a.size(), rb = b.size();
      s.m = s.transA ? a[ra - 1] : a[ra - 2];
      s.k = s.transA ? a[ra - 2] : a[ra - 1];
      s.n = s.transB ? b[rb - 2] : b[rb - 1];
      s.batch = size(arg(0)) / (a[ra - 1] * a[ra - 2]);
      s.strideA = a[ra - 1] * a[ra - 2];
      s.strideB = rb == 2 ? 0 : b[rb - 1] * b[rb - 2];
      s.strideC = s.m * s.n;
      cpu::matmul<T>(s, T(1), in(arg(0)), in(arg(1)), false, out(res(0)).data());
    } else if (op == "rms_norm") {
      int64_t d = shape(arg(0)).back();
      cpu::rmsNorm<T>(in(arg(0)), in(arg(1)), size(arg(0)) / d, d, flt(0), out(res(0)).data());
    } else if (op == "layer_norm") {
      int64_t d = shape(arg(0)).back();
      cpu::layerNorm<T>(in(arg(0)), in(arg(1)), in(arg(2)), size(arg(0)) / d, d, flt(0),
                        out(res(0)).data());
    } else if (op == "causal_conv") {
      Shape x = shape(arg(0));
      cpu::causalConv<T>(in(arg(0)), in(arg(1)), in(arg(2)), x[0], x[1], x[2], shape(arg(1))[0],
                         out(res(0)).data(), ins.operands()->size() > 3 ? in(arg(3)) : nullptr);
    } else if (op == "rope") {
      Shape x = shape(arg(0));
      cpu::rope<T>(in(arg(0)), x[0], x[1], x[2], x[3], ints(0), flt(0), out(res(0)).data());
    } else if (op == "binary") {
      cpu::BinaryOp kind;
      if (!cpu::binaryOpByName(name, kind))
        return op + ": unknown kind '" + name + "'";
      cpu::binary<T>(kind, in(arg(0)), shape(arg(0)), in(arg(1)), shape(arg(1)),
                     out(res(0)).data());
    } else if (op == "unary" || op == "unary_bwd") {
      cpu::UnaryOp kind;
      if (!cpu::unaryOpByName(name, kind))
        return op + ": unknown kind '" + name + "'";
      if (op == "unary")
        cpu::unary<T>(kind, in(arg(0)), size(arg(0)), flt(0), out(res(0)).data());
      else
        cpu::unaryBackward<T>(kind, in(arg(0)), in(arg(1)), in(arg(2)), size(arg(0)), flt(0),
                              out(res(0)).data());
    } else if (op == "reduce") {
      cpu::ReduceOp kind;
      if (!cpu::reduceOpByName(name, kind))
        return op + ": unknown kind '" + name + "'";
      int64_t cols = shape(arg(0)).back();
      cpu::reduceLast<T>(kind, in(arg(0)), size(arg(0)) / cols, cols, out(res(0)).data());
    } else if (op == "transpose") {
      std::vector<int> perm(ins.ints()->begin(), ins.ints()->end());
      cpu::transpose<T>(in(arg(0)), shape(arg(0)), perm, out(res(0)).data());
    } else if (op == "reshape") {
      if (current_ >= 0 && lastUse_[arg(0)] == current_)
        floats_[res(0)].swap(floats_[arg(0)]); // the input dies here: a view, not a copy
      else
        floats_[res(0)] = floats_[arg(0)];
    } else if (op == "concat") {
      int axis = int(ints(0));
      Shape a = shape(arg(0)), c = shape(res(0));
      std::vector<T> &y = out(res(0));
      cpu::insert<T>(in(arg(0)), c, axis, 0, a[axis], y.data());
      cpu::insert<T>(in(arg(1)), c, axis, a[axis], c[axis] - a[axis], y.data());
    } else if (op == "slice") {
      int axis = int(ints(0));
      cpu::slice<T>(in(arg(0)), shape(arg(0)), axis, ints(1), shape(res(0))[axis],
                    out(res(0)).data());
    } else if (op == "tril") {
      int64_t n = shape(arg(0)).back();
      cpu::tril<T>(in(arg(0)), size(arg(0)) / (n * n), n, out(res(0)).data());
    } else if (op == "constant") {
      cpu::fill<T>(out(res(0)).data(), size(res(0)), flt(0));
    } else if (op == "iota") {
      std::vector<T> &y = out(res(0));
      for (size_t i = 0; i < y.size(); ++i)
        y[i] = T(flt(0) + double(i));
    } else if (op == "softmax_xent") {
      int64_t vocab = shape(arg(0)).back();
      std::vector<T> &loss = out(res(0));
      std::vector<T> &mask = out(res(1));
      return cpu::softmaxXent<T>(in(arg(0)), ints_[arg(1)].data(), size(arg(0)) / vocab, vocab,
                                 ints(0), loss.data(), mask.data());
    } else if (op == "masked_mean") {
      Shape s = shape(arg(0));
      cpu::maskedMean<T>(in(arg(0)), in(arg(1)), s[0], s[1], out(res(0)).data());
    } else if (op == "embedding_bwd") {
      Shape table = shape(res(0));
      return cpu::embeddingBackward<T>(ints_[arg(0)].data(), size(arg(0)), in(arg(1)), table[0],
                                       table[1], out(res(0)).data());
    } else if (op == "rms_norm_bwd") {
      int64_t d = shape(arg(0)).back();
      T *dw = out(res(1)).data();
      cpu::rmsNormBackward<T>(in(arg(0)), in(arg(1)), in(arg(2)), size(arg(0)) / d, d, flt(0),
                              out(res(0)).data(), dw);
    } else if (op == "layer_norm_bwd") {
      int64_t d = shape(arg(0)).back();
      T *dw = out(res(1)).data(), *db = out(res(2)).data();
      cpu::layerNormBackward<T>(in(arg(0)), in(arg(1)), in(arg(2)), size(arg(0)) / d, d, flt(0),
                                out(res(0)).data(), dw, db);
    } else if (op == "causal_conv_bwd") {
      Shape x = shape(arg(0));
      T *dk = out(res(1)).data(), *db = out(res(2)).data();
      cpu::causalConvBackward<T>(in(arg(0)), in(arg(1)), in(arg(2)), x[0], x[1], x[2],
                                 shape(arg(1))[0], out(res(0)).data(), dk, db,
                                 ins.operands()->size() > 3 ? in(arg(3)) : nullptr);
    } else if (op == "rope_bwd") {
      Shape x = shape(arg(0));
      cpu::ropeBackward<T>(in(arg(0)), x[0], x[1], x[2], x[3], ints(0), flt(0), out(res(0)).data());
    } else if (op == "sum_to") {
      cpu::sumToShape<T>(in(arg(0)), shape(arg(0)), shape(res(0)), out(res(0)).data());
    } else if (op == "softmax_xent_bwd") {
      int64_t vocab = shape(arg(0)).back();
      cpu::softmaxXentBackward<T>(in(arg(0)), ints_[arg(1)].data(), in(arg(2)),
                                  size(arg(0)) / vocab, vocab, ints(0), out(res(0)).data());
    } else if (op == "masked_mean_bwd") {
      Shape m = shape(arg(0));
      cpu::maskedMeanBackward<T>(in(arg(0)), floats_[arg(1)].at(0), m[0], m[1],
                                 out(res(0)).data());
    } else if (op == "inner_loop_fwd" || op == "inner_loop_bwd") {
      // The fused inner loop (InnerLoop.h): q is operand 2, floats [eps], ints [remat_group,
      // token_major] (older plans: no token_major). The inner-loop cache of bf16 GPU plans (a
      // 6th result of the forward, a 14th operand of the backward) is the CUDA kernels' own
      // record of each step: this backend recomputes instead and does not allocate it.
      Shape qs = shape(arg(2));
      if (qs.size() != 5)
        return op + ": q must have 5 dimensions";
      const cpu::InnerLoopShape s = cpu::InnerLoopShape::ofQ(
          qs.data(), ints(0), flt(0), ins.ints()->size() > 1 && ins.ints()->Get(1) != 0);
      std::vector<T *> r;
      const uint32_t made = op == "inner_loop_fwd" ? std::min<uint32_t>(ins.results()->size(), 5)
                                                   : ins.results()->size();
      for (uint32_t i = 0; i < made; ++i) // not the cache: never allocated here
        r.push_back(out(res(int(i))).data());
      if (op == "inner_loop_fwd")
        cpu::innerLoopForward<T>(s, in(arg(0)), in(arg(1)), in(arg(2)), in(arg(3)), in(arg(4)),
                                 in(arg(5)), in(arg(6)), in(arg(7)), in(arg(8)), in(arg(9)), r[0],
                                 r[1], r[2], r[3], r[4]);
      else
        cpu::innerLoopBackward<T>(s, in(arg(0)), in(arg(1)), in(arg(2)), in(arg(3)), in(arg(4)),
                                  in(arg(5)), in(arg(6)), in(arg(7)), in(arg(8)), in(arg(9)),
                                  in(arg(10)), in(arg(11)), in(arg(12)), r[0], r[1], r[2], r[3],
                                  r[4], r[5], r[6], r[7], r[8], r[9]);
    } else if (op == "fused_elementwise") {
      // Fused.h: name = the steps' ops, one per line; ints = 3 slots per step; floats = alphas.
      std::vector<cpu::FusedStep> steps;
      if (std::string err = cpu::parseFusedSteps(bucketMembers(ins), ins.ints()->data(),
                                                 ins.floats()->data(), ins.operands()->size(),
                                                 steps);
          !err.empty())
        return err;
      std::vector<const T *> inputs;
      std::vector<Shape> shapes;
      for (int32_t id : *ins.operands()) {
        inputs.push_back(in(id));
        shapes.push_back(shape(id));
      }
      cpu::fusedElementwise<T>(steps, inputs, shapes, shape(res(0)), out(res(0)).data());
    } else if (op == "lm_head_xent" || op == "lm_head_xent_bwd") {
      // Fused.h: hidden [..., D] (n rows), table [V, D]; ints [ignore_token, chunk].
      Shape e = shape(arg(1));
      int64_t n = size(arg(0)) / e[1];
      std::vector<T *> r;
      for (uint32_t i = 0; i < ins.results()->size(); ++i)
        r.push_back(out(res(int(i))).data());
      if (op == "lm_head_xent")
        return cpu::lmHeadXent<T>(in(arg(0)), in(arg(1)), ints_[arg(2)].data(), n, e[1], e[0],
                                  ints(0), ints(1), r[0], r[1], r[2]);
      cpu::lmHeadXentBackward<T>(in(arg(0)), in(arg(1)), ints_[arg(2)].data(), in(arg(3)),
                                 in(arg(4)), n, e[1], e[0], ints(0), ints(1), r[0], r[1]);
    } else {
      return op + ": no CPU kernel for this instruction (plan from a newer tttc?)";
    }
    return "";
  }

  // Runs the body once per index of the leading dimension of the scanned inputs (plan.fbs).
  std::string scan(const plan::Instr &ins) {
    const auto &operands = *ins.operands();
    const auto &results = *ins.results();
    const auto &args = *ins.body_args();
    const size_t carried = size_t(ins.ints()->Get(0));
    const bool reverse = ins.ints()->size() > 1 && ins.ints()->Get(1) != 0;
    const size_t scanned = operands.size() - carried;
    const int64_t count = shape(operands.Get(carried))[0];
    for (size_t i = 0; i < carried; ++i)
      floats_[args.Get(i)] = floats_[operands.Get(i)];
    for (size_t r = carried; r < results.size(); ++r)
      out(results.Get(r));
    for (int64_t step = 0; step < count; ++step) {
      const int64_t s = reverse ? count - 1 - step : step;
      for (size_t j = 0; j < scanned; ++j) {
        int32_t x = operands.Get(carried + j), slice = args.Get(carried + j);
        int64_t n = size(slice);
        floats_[slice].assign(floats_[x].begin() + s * n, floats_[x].begin() + (s + 1) * n);
      }
      std::vector<int32_t> yielded;
      if (std::string err = exec(ins.body(), yielded); !err.empty())
        return err;
      if (yielded.size() != results.size())
        return "scan: the body yields " + std::to_string(yielded.size()) + " values, expected " +
               std::to_string(results.size());
      // Stacked outputs first: a yielded value may be a block argument (the step's start
      // carry) that the carried update below overwrites. The new carry is gathered before it is
      // stored, since one carried value may yield another's argument.
      for (size_t r = carried; r < results.size(); ++r) {
        const std::vector<T> &y = floats_[yielded[r]];
        std::copy(y.begin(), y.end(), floats_[results.Get(r)].begin() + s * int64_t(y.size()));
      }
      std::vector<std::vector<T>> next(carried);
      for (size_t i = 0; i < carried; ++i)
        next[i] = floats_[yielded[i]];
      for (size_t i = 0; i < carried; ++i)
        floats_[args.Get(i)] = std::move(next[i]);
    }
    for (size_t i = 0; i < carried; ++i)
      floats_[results.Get(i)] = floats_[args.Get(i)];
    return "";
  }
};
} // namespace

template <typename T> struct ProgramRunner<T>::State {
  const plan::Program &program;
  Interpreter<T> interpreter;
};

template <typename T>
ProgramRunner<T>::ProgramRunner(const plan::Program &program)
    : state_(new State{program, Interpreter<T>(program)}) {}

template <typename T> ProgramRunner<T>::~ProgramRunner() { delete state_; }

template <typename T>
std::string ProgramRunner<T>::run(const NamedTensors<T> &params, const NamedInts &inputs,
                                  NamedTensors<T> &outputs, const GradientSink<T> *gradients,
                                  const NamedTensors<T> *states) {
  std::string err = state_->interpreter.run(params, inputs, outputs, gradients, states);
  return err.empty() ? err : "program " + str(state_->program.name()) + ": " + err;
}

template <typename T>
std::string runProgram(const plan::Program &program, const NamedTensors<T> &params,
                       const NamedInts &inputs, NamedTensors<T> &outputs,
                       const GradientSink<T> *gradients, const NamedTensors<T> *states) {
  return ProgramRunner<T>(program).run(params, inputs, outputs, gradients, states);
}

template <typename T> NamedTensors<T> freshStates(const plan::Program &program) {
  NamedTensors<T> states;
  for (const plan::Instr *ins : *program.instrs()) {
    if (str(ins->op()) != "input")
      continue;
    const plan::Tensor *t = program.tensors()->Get(ins->results()->Get(0));
    if (t->dtype() == plan::DType::i32)
      continue;
    int64_t n = 1;
    for (int64_t d : *t->shape())
      n *= d;
    states[str(ins->name())].assign(size_t(n), str(ins->name()) == "state:reset" ? T(1) : T(0));
  }
  return states;
}
template NamedTensors<float> freshStates<float>(const plan::Program &);
template NamedTensors<double> freshStates<double>(const plan::Program &);

template class ProgramRunner<float>;
template class ProgramRunner<double>;
template std::string runProgram<float>(const plan::Program &, const NamedTensors<float> &,
                                       const NamedInts &, NamedTensors<float> &,
                                       const GradientSink<float> *, const NamedTensors<float> *);
template std::string runProgram<double>(const plan::Program &, const NamedTensors<double> &,
                                        const NamedInts &, NamedTensors<double> &,
                                        const GradientSink<double> *,
                                        const NamedTensors<double> *);

const plan::Program *findProgram(const plan::Plan &plan, const std::string &name) {
  if (plan.programs())
    for (const plan::Program *p : *plan.programs())
      if (str(p->name()) == name)
        return p;
  return nullptr;
}

double innerLoopCacheBytes(const plan::Plan &plan) {
  const plan::Program *micro = findProgram(plan, "micro_step");
  if (!micro || !micro->instrs() || !micro->tensors())
    return 0;
  double bytes = 0;
  for (const plan::Instr *ins : *micro->instrs())
    if (str(ins->op()) == "inner_loop_fwd" && ins->results() && ins->results()->size() > 5) {
      double n = 4;
      if (auto *dims = micro->tensors()->Get(uint32_t(ins->results()->Get(5)))->shape())
        for (int64_t d : *dims)
          n *= double(d);
      bytes += n;
    }
  return bytes;
}
} // namespace ttt::exec
