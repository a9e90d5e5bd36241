#include "runtime/train/Checkpoint.h"

#include "runtime/checkpoint/AtomicFile.h"
#include "runtime/checkpoint/Safetensors.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>
#include <unistd.h>

namespace fs = std::filesystem;

namespace ttt::train {
namespace {
std::string writeText(const std::string &path, const std::string &text) {
  return checkpoint::writeFileAtomically(path, reinterpret_cast<const uint8_t *>(text.data()),
                                         text.size());
}

std::string syncDirectory(const std::string &dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0)
    return dir + ": cannot open directory to sync: " + std::strerror(errno);
  int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? "" : dir + ": fsync failed: " + std::strerror(errno);
}

std::vector<int64_t> shapeOf(const plan::Parameter &p) {
  return std::vector<int64_t>(p.shape()->begin(), p.shape()->end());
}

int64_t numel(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}
} // namespace

std::map<std::string, std::vector<int64_t>> carriedStateShapes(const plan::Plan &plan) {
  std::map<std::string, std::vector<int64_t>> shapes;
  const plan::Program *micro = exec::findProgram(plan, "micro_step");
  if (!micro || !plan.recipe()->state_passing())
    return shapes;
  for (const plan::Instr *ins : *micro->instrs()) {
    if (ins->op()->str() != "input" || !ins->name())
      continue;
    const std::string name = ins->name()->str();
    const plan::Tensor *t = micro->tensors()->Get(ins->results()->Get(0));
    if (name.rfind("state:", 0) == 0 && name != "state:reset" && t->shape()->size() > 0)
      shapes[name].assign(t->shape()->begin() + 1, t->shape()->end());
  }
  return shapes;
}

nlohmann::json hfConfig(const plan::Plan &plan) {
  const plan::ModelConfig &c = *plan.config();
  const plan::Recipe &r = *plan.recipe();
  return nlohmann::json{
      {"architectures", {"TTTForCausalLM"}},
      {"model_type", "ttt"},
      {"vocab_size", c.vocab_size()},
      {"hidden_size", c.hidden_size()},
      {"intermediate_size", c.intermediate_size()},
      {"num_hidden_layers", c.num_layers()},
      {"num_attention_heads", c.num_heads()},
      {"hidden_act", "silu"},
      {"max_position_embeddings", plan.compiled()->seq_len()},
      {"initializer_range", c.initializer_range()},
      {"rms_norm_eps", c.rms_norm_eps()},
      {"use_cache", false},
      {"pad_token_id", nullptr},
      {"bos_token_id", c.bos_token_id()},
      {"eos_token_id", c.eos_token_id()},
      {"pretraining_tp", 1},
      {"tie_word_embeddings", c.tie_word_embeddings()},
      {"rope_theta", c.rope_theta()},
      {"use_gate", c.use_gate()},
      {"share_qk", c.share_qk()},
      {"ttt_layer_type", "linear"},
      {"ttt_base_lr", r.inner_base_lr()},
      {"mini_batch_size", r.mini_batch()},
      {"pre_conv", c.pre_conv()},
      {"conv_kernel", c.conv_width()},
      {"scan_checkpoint_group_size", 0},
      {"torch_dtype", "float32"},
  };
}

template <typename T>
std::string saveCheckpoint(const plan::Plan &plan, const TrainState<T> &state,
                           const std::string &tokenizerPath, const std::string &dir) {
  fs::path target(dir);
  fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  fs::path tmp = parent / (".tmp-" + target.filename().string() + "-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec)
    return tmp.string() + ": cannot create: " + ec.message();

  const auto &params = *plan.parameters();
  if (std::string err = exec::saveWeights(plan, state.params, (tmp / "model.safetensors").string());
      !err.empty())
    return err;
  // Fault injection for the tests (test/e2e/signal_run.py, checkpoint_background.py), each
  // naming one checkpoint: TTT_FAULT_KILL_IN_SAVE kills the process (SIGKILL, no cleanup) halfway
  // through writing it, TTT_FAULT_SLOW_SAVE makes its write take 3 s longer, TTT_FAULT_FAIL_SAVE
  // fails it.
  auto fault = [&](const char *var) {
    const char *name = std::getenv(var);
    return name && target.filename() == name;
  };
  if (fault("TTT_FAULT_KILL_IN_SAVE"))
    ::raise(SIGKILL);
  if (fault("TTT_FAULT_SLOW_SAVE"))
    std::this_thread::sleep_for(std::chrono::seconds(3));
  if (fault("TTT_FAULT_FAIL_SAVE"))
    return dir + ": cannot write (TTT_FAULT_FAIL_SAVE)";
  checkpoint::SafetensorsFile opt;
  checkpoint::DType dtype = sizeof(T) == 8 ? checkpoint::DType::F64 : checkpoint::DType::F32;
  for (size_t i = 0; i < params.size(); ++i) {
    std::string name = params.Get(i)->name()->str();
    opt.tensors.push_back(checkpoint::makeTensor("m." + name, dtype, shapeOf(*params.Get(i)), state.m[i]));
    opt.tensors.push_back(checkpoint::makeTensor("v." + name, dtype, shapeOf(*params.Get(i)), state.v[i]));
  }
  opt.metadata["step"] = std::to_string(state.step);
  if (std::string err = checkpoint::writeSafetensors((tmp / "optimizer.safetensors").string(), opt);
      !err.empty())
    return err;
  if (!state.streams.empty()) {
    checkpoint::SafetensorsFile streams;
    for (const auto &[name, shape] : carriedStateShapes(plan)) {
      const int64_t perRow = numel(shape);
      auto it = state.streams.find(name);
      if (it == state.streams.end() || it->second.size() % size_t(perRow) != 0)
        return "internal error: no carried state '" + name + "' of whole rows to checkpoint";
      std::vector<int64_t> full{int64_t(it->second.size()) / perRow};
      full.insert(full.end(), shape.begin(), shape.end());
      streams.tensors.push_back(checkpoint::makeTensor(name, dtype, full, it->second));
    }
    streams.metadata["layout"] = "global rows";
    if (std::string err = checkpoint::writeSafetensors((tmp / "streams.safetensors").string(), streams);
        !err.empty())
      return err;
  }
  if (std::string err = writeText((tmp / "config.json").string(), hfConfig(plan).dump(2) + "\n");
      !err.empty())
    return err;
  nlohmann::json trainerState = {{"step", state.step},
                                 {"scheduler_count", state.step},
                                 {"data_cursor", state.dataCursor},
                                 {"args", state.args},
                                 {"model_name", plan.provenance()->model_name()->str()}};
  if (std::string err = writeText((tmp / "trainer_state.json").string(), trainerState.dump(2) + "\n");
      !err.empty())
    return err;
  if (!tokenizerPath.empty()) {
    std::ifstream in(tokenizerPath, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof())
      return tokenizerPath + ": cannot read the tokenizer to copy it into the checkpoint";
    if (std::string err = checkpoint::writeFileAtomically((tmp / "tokenizer.model").string(),
                                                          bytes.data(), bytes.size());
        !err.empty())
      return err;
  }
  if (std::string err = syncDirectory(tmp.string()); !err.empty())
    return err;
  // Replace an existing checkpoint of the same name only once the new one is complete.
  if (fs::exists(target)) {
    fs::path old = parent / (".old-" + target.filename().string() + "-" + std::to_string(::getpid()));
    fs::rename(target, old, ec);
    if (ec)
      return dir + ": cannot move the previous checkpoint aside: " + ec.message();
    fs::rename(tmp, target, ec);
    fs::remove_all(old);
  } else {
    fs::rename(tmp, target, ec);
  }
  if (ec)
    return dir + ": cannot rename the finished checkpoint into place: " + ec.message();
  return syncDirectory(parent.string());
}

template <typename T>
std::string loadCheckpoint(const plan::Plan &plan, const std::string &dir, TrainState<T> &state,
                           bool streams) {
  fs::path base(dir);
  for (const char *file : {"model.safetensors", "optimizer.safetensors", "trainer_state.json"})
    if (!fs::exists(base / file))
      return dir + ": not a ttt-run checkpoint (no " + file + "); pass a checkpoint-N or milestone-N directory";
  if (std::string err = exec::loadWeights(plan, (base / "model.safetensors").string(), state.params);
      !err.empty())
    return err;
  checkpoint::SafetensorsFile opt;
  if (std::string err = checkpoint::readSafetensors((base / "optimizer.safetensors").string(), opt);
      !err.empty())
    return err;
  const auto &params = *plan.parameters();
  state.m.assign(params.size(), {});
  state.v.assign(params.size(), {});
  for (size_t i = 0; i < params.size(); ++i) {
    std::string name = params.Get(i)->name()->str();
    for (auto [prefix, dst] : {std::pair{"m.", &state.m[i]}, std::pair{"v.", &state.v[i]}}) {
      const checkpoint::Tensor *t = opt.find(prefix + name);
      if (!t || t->numel() != int64_t(state.params[i].size()))
        return dir + "/optimizer.safetensors: missing or mis-sized '" + prefix + name +
               "'; the checkpoint belongs to another model";
      dst->resize(size_t(t->numel()));
      for (int64_t j = 0; j < t->numel(); ++j)
        (*dst)[size_t(j)] = T(t->at(j));
    }
  }
  // State passing: every row's carried states, [global batch, per-row shape]. Checkpoints of
  // earlier versions (one rank only) hold them per micro-batch slot ("slot<k>/<name>", flat),
  // which in slot order is the same global row order.
  state.streams.clear();
  if (streams && plan.recipe()->state_passing()) {
    const std::string file = dir + "/streams.safetensors";
    checkpoint::SafetensorsFile carried;
    if (std::string err = checkpoint::readSafetensors(file, carried); !err.empty())
      return err + " (the plan passes states between steps; the checkpoint must have them)";
    int64_t rows = -1;
    for (const auto &[name, shape] : carriedStateShapes(plan)) {
      const int64_t perRow = numel(shape);
      std::vector<const checkpoint::Tensor *> parts;
      if (const checkpoint::Tensor *t = carried.find(name))
        parts.push_back(t);
      else
        for (int k = 0;
             const checkpoint::Tensor *t = carried.find("slot" + std::to_string(k) + "/" + name);
             ++k)
          parts.push_back(t);
      if (parts.empty())
        return file + ": no carried state '" + name +
               "'; the checkpoint belongs to another model or to a run without state passing";
      std::vector<T> &values = state.streams[name];
      for (const checkpoint::Tensor *t : parts) {
        const bool flat = t->shape.size() == 1; // the per-slot layout of earlier versions
        if (t->numel() % perRow != 0 ||
            (!flat &&
             !std::equal(shape.begin(), shape.end(), t->shape.begin() + 1, t->shape.end())))
          return file + ": state '" + name + "' is mis-shaped for this plan's model";
        for (int64_t j = 0; j < t->numel(); ++j)
          values.push_back(T(t->at(j)));
      }
      const int64_t n = int64_t(values.size()) / perRow;
      if (rows >= 0 && n != rows)
        return file + ": the states carry different numbers of rows (" + std::to_string(rows) +
               " and " + std::to_string(n) + "); the file is damaged";
      rows = n;
    }
  }
  std::ifstream in(base / "trainer_state.json");
  nlohmann::json js = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (js.is_discarded() || !js.contains("step") || !js.contains("data_cursor"))
    return dir + "/trainer_state.json: not valid JSON with step and data_cursor";
  std::string model = js.value("model_name", "");
  if (model != plan.provenance()->model_name()->str())
    return dir + ": checkpoint of model '" + model + "', this plan is '" +
           plan.provenance()->model_name()->str() + "'";
  state.step = js["step"].get<int64_t>();
  state.dataCursor = js["data_cursor"].get<std::string>();
  state.args = js.value("args", nlohmann::json::object());
  return "";
}

void pruneCheckpoints(const std::string &outputDir, int keep) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (const auto &entry : fs::directory_iterator(outputDir, ec)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind("checkpoint-", 0) == 0) {
      char *end = nullptr;
      long long step = std::strtoll(name.c_str() + 11, &end, 10);
      if (end && *end == '\0')
        found.push_back({step, entry.path()});
    }
  }
  std::sort(found.begin(), found.end());
  for (size_t i = 0; i + size_t(std::max(keep, 0)) < found.size(); ++i)
    fs::remove_all(found[i].second, ec);
}

#define INSTANTIATE(T)                                                                             \
  template std::string saveCheckpoint<T>(const plan::Plan &, const TrainState<T> &,                \
                                         const std::string &, const std::string &);                \
  template std::string loadCheckpoint<T>(const plan::Plan &, const std::string &, TrainState<T> &, \
                                         bool);
INSTANTIATE(float)
INSTANTIATE(double)
#undef INSTANTIATE
} // namespace ttt::train
