#include "runtime/exec/Evaluate.h"

#include "runtime/exec/CudaRunner.h"
#include "runtime/exec/Weights.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

namespace ttt::exec {
std::string readBatchFile(const std::string &path, int64_t batch, int64_t seqLen, NamedInts &out) {
  std::ifstream in(path);
  if (!in)
    return path + ": cannot open batch file: " + std::strerror(errno);
  std::vector<int32_t> tokens, targets;
  std::string line;
  int64_t lineNo = 0, rows = 0;
  const std::string shapeHint =
      " (this plan takes " + (batch >= 0 ? std::to_string(batch) + " sequences" : "sequences") +
      " of " + std::to_string(seqLen + 1) +
      " tokens; recompile with tttc --per-device-batch/--seq-len to change)";
  while (std::getline(in, line)) {
    ++lineNo;
    size_t first = line.find_first_not_of(" \t\r");
    if (first == std::string::npos || line[first] == '#')
      continue;
    std::istringstream fields(line);
    std::vector<int64_t> ids;
    std::string word;
    while (fields >> word) {
      char *end = nullptr;
      errno = 0;
      long long v = std::strtoll(word.c_str(), &end, 10);
      if (*end != '\0' || errno != 0 || v < 0 || v > INT32_MAX)
        return path + ":" + std::to_string(lineNo) + ": '" + word + "' is not a token id";
      ids.push_back(v);
    }
    if (int64_t(ids.size()) != seqLen + 1)
      return path + ":" + std::to_string(lineNo) + ": " + std::to_string(ids.size()) +
             " tokens" + shapeHint;
    if (++rows > batch && batch >= 0)
      return path + ":" + std::to_string(lineNo) + ": more than " + std::to_string(batch) +
             " sequences" + shapeHint;
    tokens.insert(tokens.end(), ids.begin(), ids.end() - 1);
    targets.insert(targets.end(), ids.begin() + 1, ids.end());
  }
  if (batch >= 0 ? rows != batch : rows == 0)
    return path + ": " + std::to_string(rows) + " sequences" + shapeHint;
  out["tokens"] = std::move(tokens);
  out["targets"] = std::move(targets);
  return "";
}

namespace {
template <typename T>
std::string evaluate(const plan::Plan &plan, const NamedInts &batch, const EvalOptions &options,
                     EvalResult &result) {
  const auto &params = *plan.parameters();
  Weights<T> values;
  std::string err = options.weights.empty()
                        ? initWeights(plan, options.seed.value_or(uint64_t(plan.recipe()->seed())),
                                      values)
                        : loadWeights(plan, options.weights, values);
  if (err.empty() && !options.saveWeights.empty())
    err = saveWeights(plan, values, options.saveWeights);
  if (!err.empty())
    return err;
  NamedTensors<T> named;
  for (size_t i = 0; i < params.size(); ++i)
    named[params.Get(i)->name()->str()] = std::move(values[i]);

  const char *programName = options.saveGrads.empty() ? "eval_step" : "micro_step";
  const plan::Program *eval = findProgram(plan, programName);
  if (!eval)
    return std::string("the plan has no ") + programName + " program; recompile it with this tttc";
  NamedTensors<T> outputs, accumulators;
  for (size_t i = 0; i < params.size(); ++i)
    accumulators[params.Get(i)->name()->str()].assign(named[params.Get(i)->name()->str()].size(),
                                                      T(0));
  GradientSink<T> sink{&accumulators, 1.0, nullptr};
  auto start = std::chrono::steady_clock::now();
  NamedTensors<T> states = freshStates<T>(*eval); // state passing: every row starts a stream
  BackendRunner<T> runner(plan, *eval, options.backend);
  if (std::string err = runner.run(named, batch, outputs, &sink, &states); !err.empty())
    return err;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.loss = double(outputs.at("loss").at(0));
  if (!options.saveGrads.empty()) {
    Weights<T> grads(params.size());
    double sumSquares = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      grads[i] = std::move(accumulators[params.Get(i)->name()->str()]);
      for (T g : grads[i])
        sumSquares += double(g) * double(g);
    }
    result.gradNorm = std::sqrt(sumSquares);
    if (std::string err = saveWeights(plan, grads, options.saveGrads); !err.empty())
      return err;
  }
  result.tokens = 0;
  for (int32_t t : batch.at("targets"))
    result.tokens += t != int32_t(plan.config()->bos_token_id());
  result.precision = sizeof(T) == 8                                           ? "fp64"
                     : plan.compiled()->precision() == plan::Precision::bf16 ? "bf16"
                                                                             : "fp32";
  return "";
}
} // namespace

std::string evaluateLoss(const plan::Plan &plan, const std::string &batchFile,
                         const EvalOptions &options, EvalResult &result) {
  const plan::Compiled *compiled = plan.compiled();
  NamedInts batch;
  if (std::string err =
          readBatchFile(batchFile, compiled->per_device_batch(), compiled->seq_len(), batch);
      !err.empty())
    return err;
  if (compiled->precision() == plan::Precision::fp64)
    return evaluate<double>(plan, batch, options, result);
  return evaluate<float>(plan, batch, options, result);
}
} // namespace ttt::exec
