#include "runtime/exec/Weights.h"

#include "runtime/checkpoint/HfMapping.h"
#include "runtime/checkpoint/Safetensors.h"
#include "runtime/exec/Interpreter.h"
#include "runtime/init/Init.h"

namespace ttt::exec {
template <typename T> std::string initWeights(const plan::Plan &plan, uint64_t seed, Weights<T> &w) {
  // The init program: one instruction per parameter (plan.fbs), keyed by seed and name.
  const plan::Program *init = findProgram(plan, "init");
  if (!init)
    return "the plan has no init program; recompile it with this tttc";
  const auto &params = *plan.parameters();
  w.assign(params.size(), {});
  for (const plan::Instr *instr : *init->instrs()) {
    int64_t index = instr->ints()->Get(0);
    const plan::Parameter *p = params.Get(index);
    int64_t n = 1;
    for (int64_t d : *p->shape())
      n *= d;
    w[index].resize(size_t(n));
    if (std::string err = init::initParameter(*p, seed, 0, n, w[index].data()); !err.empty())
      return err;
  }
  return "";
}

template <typename T>
std::string loadWeights(const plan::Plan &plan, const std::string &path, Weights<T> &w) {
  checkpoint::SafetensorsFile file;
  if (std::string err = checkpoint::readSafetensors(path, file); !err.empty())
    return err;
  return checkpoint::importHf(plan, file, path, w);
}

template <typename T>
std::string saveWeights(const plan::Plan &plan, const Weights<T> &w, const std::string &path) {
  checkpoint::SafetensorsFile file;
  checkpoint::DType dtype = sizeof(T) == 8 ? checkpoint::DType::F64 : checkpoint::DType::F32;
  if (std::string err = checkpoint::exportHf(plan, w, dtype, file); !err.empty())
    return err;
  return checkpoint::writeSafetensors(path, file);
}

#define INSTANTIATE(T)                                                                             \
  template std::string initWeights<T>(const plan::Plan &, uint64_t, Weights<T> &);                 \
  template std::string loadWeights<T>(const plan::Plan &, const std::string &, Weights<T> &);      \
  template std::string saveWeights<T>(const plan::Plan &, const Weights<T> &, const std::string &);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE
} // namespace ttt::exec
