#include "tools/ttt-run/PlanDump.h"

#include "runtime/dist/Shard.h"

#include "ttt/schema/plan_generated.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace ttt::run {
namespace {
using nlohmann::ordered_json;
namespace fb = ttt::plan;

std::string str(const flatbuffers::String *s) { return s ? s->str() : std::string(); }

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

uint64_t dtypeBytes(fb::DType t) {
  switch (t) {
  case fb::DType::f64:
    return 8;
  case fb::DType::bf16:
    return 2;
  default:
    return 4;
  }
}

uint64_t elementCount(const fb::Parameter &p) {
  uint64_t n = 1;
  if (p.shape())
    for (int64_t d : *p.shape())
      n *= d > 0 ? uint64_t(d) : 0;
  return n;
}

bool hasStd(fb::InitKind k) { return k == fb::InitKind::normal || k == fb::InitKind::truncated_normal; }

ordered_json provenanceJson(const fb::Provenance *p) {
  if (!p)
    return nullptr;
  ordered_json j;
  j["tttc_version"] = str(p->tttc_version());
  j["git_sha"] = str(p->git_sha());
  j["llvm_version"] = str(p->llvm_version());
  j["model_name"] = str(p->model_name());
  j["source_hash"] = str(p->source_hash());
  ordered_json flags = ordered_json::array();
  if (p->flags())
    for (const flatbuffers::String *f : *p->flags())
      flags.push_back(str(f));
  j["flags"] = flags;
  return j;
}

ordered_json configJson(const fb::ModelConfig *c) {
  if (!c)
    return nullptr;
  ordered_json j;
  j["vocab_size"] = c->vocab_size();
  j["hidden_size"] = c->hidden_size();
  j["intermediate_size"] = c->intermediate_size();
  j["num_layers"] = c->num_layers();
  j["num_heads"] = c->num_heads();
  j["head_dim"] = c->head_dim();
  j["conv_width"] = c->conv_width();
  j["rope_theta"] = c->rope_theta();
  j["rms_norm_eps"] = c->rms_norm_eps();
  j["initializer_range"] = c->initializer_range();
  j["tie_word_embeddings"] = c->tie_word_embeddings();
  j["share_qk"] = c->share_qk();
  j["use_gate"] = c->use_gate();
  j["pre_conv"] = c->pre_conv();
  j["bos_token_id"] = c->bos_token_id();
  j["eos_token_id"] = c->eos_token_id();
  return j;
}

ordered_json recipeJson(const fb::Recipe *r) {
  if (!r)
    return nullptr;
  ordered_json j;
  j["optimizer"] = str(r->optimizer());
  j["beta1"] = r->beta1();
  j["beta2"] = r->beta2();
  j["eps"] = r->eps();
  j["weight_decay"] = r->weight_decay();
  j["grad_clip"] = r->grad_clip();
  j["lr"] = r->lr();
  j["lr_end"] = r->lr_end();
  j["warmup_steps"] = r->warmup_steps();
  j["total_steps"] = r->total_steps();
  j["global_batch"] = r->global_batch();
  j["seq_len"] = r->seq_len();
  j["mini_batch"] = r->mini_batch();
  j["inner_base_lr"] = r->inner_base_lr();
  j["remat_group"] = r->remat_group();
  j["state_passing"] = r->state_passing();
  j["seed"] = r->seed();
  j["checkpoint_every"] = r->checkpoint_every();
  j["milestone_every"] = r->milestone_every();
  return j;
}

ordered_json compiledJson(const fb::Compiled *c) {
  if (!c)
    return nullptr;
  ordered_json j;
  j["per_device_batch"] = c->per_device_batch();
  j["seq_len"] = c->seq_len();
  j["precision"] = fb::EnumNamePrecision(c->precision());
  j["target"] = fb::EnumNameTarget(c->target());
  return j;
}

ordered_json parameterJson(const fb::Parameter &p) {
  ordered_json j;
  j["name"] = str(p.name());
  ordered_json shape = ordered_json::array();
  if (p.shape())
    for (int64_t d : *p.shape())
      shape.push_back(d);
  j["shape"] = shape;
  j["values"] = elementCount(p);
  j["dtype"] = fb::EnumNameDType(p.dtype());
  j["init"] = fb::EnumNameInitKind(p.init());
  j["init_std"] = p.init_std();
  j["weight_decay"] = p.weight_decay();
  j["hf_name"] = str(p.hf_name());
  j["hf_layout"] = fb::EnumNameHfLayout(p.hf_layout());
  j["kind"] = str(p.kind());
  j["layer"] = p.layer();
  return j;
}

std::string formatScalar(const ordered_json &v) {
  if (v.is_string())
    return v.get<std::string>();
  if (v.is_number_float())
    return formatDouble(v.get<double>());
  if (v.is_array()) {
    std::string s;
    for (const auto &e : v)
      s += (s.empty() ? "" : " ") + formatScalar(e);
    return s.empty() ? "(none)" : s;
  }
  return v.dump();
}

// "title" then one "  key   value" line per field, keys padded to one column.
void printSection(std::ostringstream &os, const std::string &title, const ordered_json &j) {
  os << "\n" << title << "\n";
  if (j.is_null()) {
    os << "  (absent from this plan)\n";
    return;
  }
  size_t width = 0;
  for (const auto &kv : j.items())
    width = std::max(width, kv.key().size());
  for (const auto &kv : j.items())
    os << "  " << kv.key() << std::string(width - kv.key().size() + 2, ' ') << formatScalar(kv.value())
       << "\n";
}

std::string shapeText(const ordered_json &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i].get<int64_t>());
  return s + "]";
}

std::string percent(uint64_t part, uint64_t whole) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", whole ? 100.0 * double(part) / double(whole) : 0.0);
  return buf;
}

// Left-aligned columns; `right` marks the columns that hold numbers.
void printTable(std::ostringstream &os, const std::vector<std::vector<std::string>> &rows,
                const std::vector<bool> &right) {
  std::vector<size_t> width;
  for (const auto &row : rows)
    for (size_t c = 0; c < row.size(); ++c) {
      if (width.size() <= c)
        width.push_back(0);
      width[c] = std::max(width[c], row[c].size());
    }
  for (const auto &row : rows) {
    std::string line = " ";
    for (size_t c = 0; c < row.size(); ++c) {
      std::string pad(width[c] - row[c].size(), ' ');
      bool r = c < right.size() && right[c];
      line += (c ? "  " : " ") + (r ? pad + row[c] : row[c] + (c + 1 < row.size() ? pad : ""));
    }
    os << line << "\n";
  }
}

// Kernels and bytes moved per step of each program, without fusion and as compiled (null when
// the plan has no cost table).
ordered_json costJson(const fb::Plan &plan) {
  if (!plan.cost())
    return nullptr;
  ordered_json programs = ordered_json::array();
  for (const fb::ProgramCost *c : *plan.cost())
    programs.push_back(ordered_json{{"program", str(c->program())},
                                    {"kernels_unfused", c->kernels_unfused()},
                                    {"kernels", c->kernels()},
                                    {"bytes_unfused", c->bytes_unfused()},
                                    {"bytes", c->bytes()}});
  return programs;
}

// The plan's memory map per program (null when the plan has none), and what one device needs:
// programs run one at a time and share the largest arena; checkpoints are micro_step's.
// With ranks > 1 also "zero1": one device of a job of that many ranks with ZeRO-1, the AdamW
// moments a slice per rank and the parameter and gradient regions padded to equal slices, as the
// CUDA session lays them out (runtime/dist/Shard.h).
ordered_json memoryJson(const fb::Plan &plan, int ranks) {
  if (!plan.memory())
    return nullptr;
  ordered_json programs = ordered_json::array();
  uint64_t params = 0, grads = 0, moments = 0, checkpoints = 0, arena = 0;
  for (const fb::ProgramMemory *m : *plan.memory()) {
    ordered_json j;
    j["program"] = str(m->program());
    j["alignment"] = m->alignment();
    j["params_bytes"] = m->params_bytes();
    j["grads_bytes"] = m->grads_bytes();
    j["moments_bytes"] = m->moments_bytes();
    j["checkpoints_bytes"] = m->checkpoints_bytes();
    j["arena_bytes"] = m->arena_bytes();
    j["arena_peak_bytes"] = m->arena_peak_bytes();
    j["tensors"] = m->buffers() ? m->buffers()->size() : 0;
    programs.push_back(j);
    params = std::max<uint64_t>(params, m->params_bytes());
    grads = std::max<uint64_t>(grads, m->grads_bytes());
    moments = std::max<uint64_t>(moments, m->moments_bytes());
    checkpoints = std::max<uint64_t>(checkpoints, m->checkpoints_bytes());
    arena = std::max<uint64_t>(arena, m->arena_bytes());
  }
  ordered_json device;
  device["params_bytes"] = params;
  device["grads_bytes"] = grads;
  device["moments_bytes"] = moments;
  device["checkpoints_bytes"] = checkpoints;
  device["arena_bytes"] = arena;
  device["total_bytes"] = params + grads + moments + checkpoints + arena;
  ordered_json j;
  j["programs"] = programs;
  j["device"] = device;
  if (ranks > 1) {
    const ttt::dist::ShardLayout slice = ttt::dist::shardLayout(int64_t(params), ranks, 256);
    const uint64_t pad = uint64_t(slice.padded()) - params, m = 2 * uint64_t(slice.perRank);
    ordered_json z;
    z["ranks"] = ranks;
    z["params_bytes"] = params + pad;
    z["grads_bytes"] = grads + pad;
    z["moments_bytes"] = m;
    z["checkpoints_bytes"] = checkpoints;
    z["arena_bytes"] = arena;
    z["total_bytes"] = params + grads + 2 * pad + m + checkpoints + arena;
    j["zero1"] = z;
  }
  return j;
}

uint64_t masterBytes(const fb::Plan &plan) {
  uint64_t bytes = 0;
  if (plan.parameters())
    for (const fb::Parameter *p : *plan.parameters())
      bytes += elementCount(*p) * dtypeBytes(p->dtype());
  return bytes;
}
} // namespace

ParameterCounts countParameters(const fb::Plan &plan) {
  ParameterCounts counts;
  if (!plan.parameters())
    return counts;
  for (const fb::Parameter *p : *plan.parameters()) {
    std::string kind = p->kind() && p->kind()->size() ? p->kind()->str() : "(no kind)";
    auto it = std::find_if(counts.byKind.begin(), counts.byKind.end(),
                           [&](const KindCount &k) { return k.kind == kind; });
    if (it == counts.byKind.end())
      it = counts.byKind.insert(counts.byKind.end(), KindCount{kind, 0, 0});
    uint64_t n = elementCount(*p);
    it->tensors += 1;
    it->values += n;
    counts.tensors += 1;
    counts.values += n;
  }
  return counts;
}

std::string humanBytes(uint64_t bytes) {
  static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024)
    return std::to_string(bytes) + " B";
  double v = double(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 5) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  // Three significant digits: 1.50 KiB would claim more precision than "1.5 KiB" means.
  std::snprintf(buf, sizeof buf, v < 10 ? "%.2f" : v < 100 ? "%.1f" : "%.0f", v);
  std::string num = buf;
  if (num.find('.') != std::string::npos) {
    while (num.back() == '0')
      num.pop_back();
    if (num.back() == '.')
      num.pop_back();
  }
  return num + " " + units[u];
}

std::string groupDigits(uint64_t value) {
  std::string digits = std::to_string(value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0)
      out += ',';
    out += digits[i];
  }
  return out;
}

std::string formatDouble(double value) {
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, value);
    if (std::strtod(buf, nullptr) == value)
      break;
  }
  // Whole numbers read better without an exponent: rope_theta 10000, not 1e+04.
  if (value == double(int64_t(value)) && value > -1e15 && value < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", value);
  return buf;
}

ordered_json planToJson(const fb::PlanFile &file, const std::string &name, int ranks) {
  const fb::Plan &plan = *file.plan();
  ordered_json j;
  j["file"] = name;
  ordered_json header;
  header["magic"] = std::string(fb::kMagic, 4);
  header["format_major"] = file.major();
  header["format_minor"] = file.minor();
  header["runtime_format"] = std::to_string(fb::kFormatMajor) + "." + std::to_string(fb::kFormatMinor);
  header["file_bytes"] = file.fileSize();
  header["payload_bytes"] = file.fileSize() - fb::kHeaderSize;
  header["checksum"] = "fnv1a64:" + hex64(file.checksum());
  header["checksum_verified"] = true;  // a PlanFile only exists once every check passed
  j["header"] = header;
  j["provenance"] = provenanceJson(plan.provenance());
  j["config"] = configJson(plan.config());
  j["recipe"] = recipeJson(plan.recipe());
  j["compiled"] = compiledJson(plan.compiled());
  ordered_json params = ordered_json::array();
  if (plan.parameters())
    for (const fb::Parameter *p : *plan.parameters())
      params.push_back(parameterJson(*p));
  j["parameters"] = params;
  ParameterCounts counts = countParameters(plan);
  ordered_json byKind = ordered_json::array();
  for (const KindCount &k : counts.byKind)
    byKind.push_back(ordered_json{{"kind", k.kind}, {"tensors", k.tensors}, {"values", k.values}});
  ordered_json countsJson;
  countsJson["by_kind"] = byKind;
  countsJson["tensors"] = counts.tensors;
  countsJson["values"] = counts.values;
  countsJson["master_bytes"] = masterBytes(plan);
  j["parameter_counts"] = countsJson;
  j["memory"] = memoryJson(plan, ranks);
  j["fusion"] = costJson(plan);
  return j;
}

std::string formatPlanText(const fb::PlanFile &file, const std::string &name, int ranks) {
  ordered_json j = planToJson(file, name, ranks);
  std::ostringstream os;
  const ordered_json &h = j["header"];
  uint64_t fileBytes = h["file_bytes"].get<uint64_t>(), payload = h["payload_bytes"].get<uint64_t>();
  os << "plan " << name << "\n";
  os << "  format    " << file.major() << "." << file.minor() << " (this ttt-run reads " << fb::kFormatMajor
     << ".x up to " << h["runtime_format"].get<std::string>() << ")\n";
  os << "  size      " << humanBytes(fileBytes) << " (" << groupDigits(fileBytes) << " bytes: "
     << fb::kHeaderSize << "-byte header + " << groupDigits(payload) << "-byte payload)\n";
  os << "  checksum  " << h["checksum"].get<std::string>() << " (verified)\n";

  printSection(os, "provenance", j["provenance"]);
  printSection(os, "model config", j["config"]);
  printSection(os, "recipe", j["recipe"]);
  printSection(os, "compiled for", j["compiled"]);

  const ordered_json &params = j["parameters"];
  const ordered_json &counts = j["parameter_counts"];
  uint64_t total = counts["values"].get<uint64_t>();
  os << "\nparameters (" << groupDigits(counts["tensors"].get<uint64_t>()) << " tensors, "
     << groupDigits(total) << " values)\n";
  if (!params.empty()) {
    std::vector<std::vector<std::string>> rows = {
        {"name", "shape", "values", "dtype", "init", "std", "decay", "hf_name", "hf_layout", "kind", "layer"}};
    for (const ordered_json &p : params) {
      bool withStd = p["init"] == "normal" || p["init"] == "truncated_normal";
      int layer = p["layer"].get<int>();
      rows.push_back({p["name"].get<std::string>(), shapeText(p["shape"]), groupDigits(p["values"].get<uint64_t>()),
                      p["dtype"].get<std::string>(), p["init"].get<std::string>(),
                      withStd ? formatDouble(p["init_std"].get<double>()) : "-",
                      p["weight_decay"].get<bool>() ? "yes" : "no", p["hf_name"].get<std::string>(),
                      p["hf_layout"].get<std::string>(), p["kind"].get<std::string>(),
                      layer < 0 ? "-" : std::to_string(layer)});
    }
    printTable(os, rows, {false, false, true, false, false, true, false, false, false, false, true});
  }

  os << "\nparameters by kind\n";
  std::vector<std::vector<std::string>> rows = {{"kind", "tensors", "values", "share"}};
  for (const ordered_json &k : counts["by_kind"]) {
    uint64_t values = k["values"].get<uint64_t>();
    rows.push_back({k["kind"].get<std::string>(), groupDigits(k["tensors"].get<uint64_t>()), groupDigits(values),
                    percent(values, total)});
  }
  rows.push_back({"total", groupDigits(counts["tensors"].get<uint64_t>()), groupDigits(total), percent(total, total)});
  printTable(os, rows, {false, true, true, true});
  os << "  master copy " << humanBytes(counts["master_bytes"].get<uint64_t>()) << " ("
     << groupDigits(counts["master_bytes"].get<uint64_t>()) << " bytes)\n";

  if (const ordered_json &fusion = j["fusion"]; !fusion.is_null()) {
    os << "\nkernels and bytes moved per step, before -> after fusion\n";
    std::vector<std::vector<std::string>> cost = {
        {"program", "kernels unfused", "kernels", "bytes unfused", "bytes", "bytes/unfused"}};
    for (const ordered_json &c : fusion) {
      uint64_t before = c["bytes_unfused"].get<uint64_t>(), after = c["bytes"].get<uint64_t>();
      cost.push_back({c["program"].get<std::string>(),
                      groupDigits(c["kernels_unfused"].get<uint64_t>()),
                      groupDigits(c["kernels"].get<uint64_t>()), humanBytes(before),
                      humanBytes(after), before ? percent(after, before) : "-"});
    }
    printTable(os, cost, {false, true, true, true, true, true});
  }

  const ordered_json &memory = j["memory"];
  os << "\nmemory plan";
  if (memory.is_null()) {
    os << "\n  (absent from this plan)\n";
    return os.str();
  }
  auto bytes = [](const ordered_json &v) { return humanBytes(v.get<uint64_t>()); };
  const ordered_json &programs = memory["programs"];
  if (!programs.empty())
    os << " (buffers aligned to " << programs[0]["alignment"].get<int64_t>() << " B)";
  os << "\n";
  std::vector<std::vector<std::string>> mem = {
      {"program", "tensors", "params", "grads", "moments", "checkpoints", "arena", "arena peak",
       "peak/arena"}};
  for (const ordered_json &m : programs) {
    uint64_t arena = m["arena_bytes"].get<uint64_t>(), peak = m["arena_peak_bytes"].get<uint64_t>();
    mem.push_back({m["program"].get<std::string>(), groupDigits(m["tensors"].get<uint64_t>()),
                   bytes(m["params_bytes"]), bytes(m["grads_bytes"]), bytes(m["moments_bytes"]),
                   bytes(m["checkpoints_bytes"]), bytes(m["arena_bytes"]),
                   bytes(m["arena_peak_bytes"]), arena ? percent(peak, arena) : "-"});
  }
  printTable(os, mem, {false, true, true, true, true, true, true, true, true});
  const ordered_json &d = memory["device"];
  os << "  per device  params " << bytes(d["params_bytes"]) << " + grads " << bytes(d["grads_bytes"])
     << " + moments " << bytes(d["moments_bytes"]) << " + checkpoints "
     << bytes(d["checkpoints_bytes"]) << " + arena " << bytes(d["arena_bytes"])
     << " (the largest program's) = " << bytes(d["total_bytes"]) << " ("
     << groupDigits(d["total_bytes"].get<uint64_t>()) << " bytes)\n";
  if (memory.contains("zero1")) {
    const ordered_json &z = memory["zero1"];
    os << "  ZeRO-1 x " << z["ranks"].get<int>() << "  params " << bytes(z["params_bytes"])
       << " + grads " << bytes(z["grads_bytes"]) << " + moments " << bytes(z["moments_bytes"])
       << " (this rank's slice) + checkpoints " << bytes(z["checkpoints_bytes"]) << " + arena "
       << bytes(z["arena_bytes"]) << " = " << bytes(z["total_bytes"]) << " ("
       << groupDigits(z["total_bytes"].get<uint64_t>()) << " bytes) per device\n";
  }
  return os.str();
}

std::string formatPlanSummary(const fb::PlanFile &file, const std::string &name) {
  const fb::Plan &plan = *file.plan();
  std::ostringstream os;
  os << name << ": plan format " << file.major() << "." << file.minor() << ", " << humanBytes(file.fileSize())
     << ", checksum verified\n";
  const fb::Provenance *prov = plan.provenance();
  const fb::ModelConfig *c = plan.config();
  os << "  model       " << (prov && prov->model_name() ? prov->model_name()->str() : std::string("(unnamed)"));
  if (c)
    os << ": " << c->num_layers() << " layers, hidden " << c->hidden_size() << ", " << c->num_heads()
       << " heads, vocab " << c->vocab_size();
  os << "\n";
  if (const fb::Compiled *k = plan.compiled())
    os << "  compiled    per-device batch " << k->per_device_batch() << " x seq_len " << k->seq_len() << ", "
       << fb::EnumNamePrecision(k->precision()) << ", target " << fb::EnumNameTarget(k->target()) << "\n";
  if (const fb::Recipe *r = plan.recipe())
    os << "  recipe      " << str(r->optimizer()) << ", lr " << formatDouble(r->lr()) << ", "
       << groupDigits(uint64_t(std::max<int64_t>(r->total_steps(), 0))) << " steps, global batch "
       << r->global_batch() << "\n";
  ParameterCounts counts = countParameters(plan);
  os << "  parameters  " << groupDigits(counts.values) << " (" << humanBytes(masterBytes(plan))
     << " master copy) in " << groupDigits(counts.tensors) << " tensors\n";
  if (prov)
    os << "  compiled by tttc " << str(prov->tttc_version()) << " (" << str(prov->git_sha()) << ")\n";
  return os.str();
}
} // namespace ttt::run
