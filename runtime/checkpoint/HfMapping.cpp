#include "runtime/checkpoint/HfMapping.h"

#include <cstring>
#include <map>
#include <set>

namespace ttt::checkpoint {
namespace {
std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

const char *layoutName(plan::HfLayout l) {
  const char *n = plan::EnumNameHfLayout(l);
  return n && *n ? n : "unknown";
}

std::vector<int64_t> shapeOf(const plan::Parameter &p) {
  std::vector<int64_t> s;
  if (p.shape())
    s.assign(p.shape()->begin(), p.shape()->end());
  return s;
}

int64_t numelOf(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string nameOf(const flatbuffers::String *s) { return s ? s->str() : std::string(); }

// transpose and conv are both a 2-D transpose of ours [rows, cols]; conv only reshapes the result.
template <typename T>
void reorder(plan::HfLayout layout, const std::vector<int64_t> &ours, const T *src, T *dst,
             bool toHf) {
  int64_t n = numelOf(ours);
  if ((layout == plan::HfLayout::transpose || layout == plan::HfLayout::conv) && ours.size() == 2) {
    int64_t rows = ours[0], cols = ours[1];
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        if (toHf)
          dst[c * rows + r] = src[r * cols + c];
        else
          dst[r * cols + c] = src[c * rows + r];
      }
    return;
  }
  std::memcpy(dst, src, size_t(n) * sizeof(T));
}

bool isTiedLmHeadImplicit(const plan::Plan &plan) {
  if (!plan.config() || !plan.config()->tie_word_embeddings())
    return false;
  if (plan.parameters())
    for (const plan::Parameter *p : *plan.parameters())
      if (nameOf(p->hf_name()) == kHfLmHeadName)
        return false;
  return true;
}

std::string listNames(const std::vector<std::string> &names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 5; ++i)
    s += (i ? ", " : "") + names[i];
  if (names.size() > 5)
    s += ", ... (" + std::to_string(names.size() - 5) + " more)";
  return s;
}

template <typename T>
std::string exportImpl(const plan::Plan &plan, const std::vector<std::vector<T>> &values,
                       DType fileDtype, SafetensorsFile &out) {
  out = SafetensorsFile();
  if (fileDtype != DType::F64 && fileDtype != DType::F32 && fileDtype != DType::BF16)
    return std::string("export: parameters are written as F64, F32 or BF16, not ") +
           dtypeName(fileDtype);
  size_t count = plan.parameters() ? plan.parameters()->size() : 0;
  if (values.size() != count)
    return "export: " + std::to_string(values.size()) + " value arrays for the plan's " +
           std::to_string(count) + " parameters";
  std::set<std::string> seen;
  for (size_t i = 0; i < count; ++i) {
    const plan::Parameter &p = *plan.parameters()->Get(flatbuffers::uoffset_t(i));
    std::string name = nameOf(p.name()), hfName = nameOf(p.hf_name());
    if (hfName.empty())
      return "export: parameter '" + name + "' has no Hugging Face name";
    if (!seen.insert(hfName).second)
      return "export: Hugging Face name '" + hfName + "' is used by two parameters";
    std::vector<int64_t> ours = shapeOf(p), hf;
    std::string err = hfShape(ours, p.hf_layout(), hf);
    if (!err.empty())
      return "export: parameter '" + name + "': " + err;
    if (int64_t(values[i].size()) != numelOf(ours))
      return "export: parameter '" + name + "' of shape " + shapeString(ours) + " has " +
             std::to_string(values[i].size()) + " values";
    std::vector<T> reordered(values[i].size());
    reorder(p.hf_layout(), ours, values[i].data(), reordered.data(), true);
    out.tensors.push_back(makeTensor(hfName, fileDtype, hf, reordered));
  }
  out.metadata["format"] = "pt";
  return "";
}

template <typename T>
std::string importImpl(const plan::Plan &plan, const SafetensorsFile &file,
                       const std::string &fileName, std::vector<std::vector<T>> &values,
                       const HfImportOptions &options, HfImportReport *report) {
  const std::string where = fileName + ": ";
  HfImportReport local;
  HfImportReport &rep = report ? *report : local;
  rep = HfImportReport();
  std::map<std::string, const Tensor *> byName;
  for (const Tensor &t : file.tensors)
    byName[t.name] = &t;

  size_t count = plan.parameters() ? plan.parameters()->size() : 0;
  values.assign(count, {});
  std::set<std::string> used;
  std::vector<std::string> missing;
  for (size_t i = 0; i < count; ++i) {
    const plan::Parameter &p = *plan.parameters()->Get(flatbuffers::uoffset_t(i));
    std::string name = nameOf(p.name()), hfName = nameOf(p.hf_name());
    auto it = byName.find(hfName);
    if (hfName.empty() || it == byName.end()) {
      missing.push_back(hfName.empty() ? "(parameter '" + name + "' has no HF name)" : hfName);
      continue;
    }
    used.insert(hfName);
    const Tensor &t = *it->second;
    std::vector<int64_t> ours = shapeOf(p), hf;
    std::string err = hfShape(ours, p.hf_layout(), hf);
    if (!err.empty())
      return where + "parameter '" + name + "': " + err;
    if (t.dtype != DType::F64 && t.dtype != DType::F32 && t.dtype != DType::BF16)
      return where + "tensor '" + hfName + "': dtype " + dtypeName(t.dtype) + " where parameter '" +
             name + "' needs F64, F32 or BF16";
    if (t.shape != hf)
      return where + "tensor '" + hfName + "': shape " + shapeString(t.shape) + " but parameter '" +
             name + "' " + shapeString(ours) + " (layout " + layoutName(p.hf_layout()) +
             ") needs " + shapeString(hf);
    int64_t n = numelOf(ours);
    std::vector<T> inHf(size_t(n), T(0));
    for (int64_t k = 0; k < n; ++k)
      inHf[size_t(k)] = T(t.at(k));
    values[i].resize(size_t(n));
    reorder(p.hf_layout(), ours, inHf.data(), values[i].data(), false);
  }
  if (!missing.empty())
    return where + std::to_string(missing.size()) +
           " tensor(s) the plan expects are missing: " + listNames(missing);

  if (isTiedLmHeadImplicit(plan)) {
    auto head = byName.find(kHfLmHeadName);
    if (head != byName.end()) {
      used.insert(kHfLmHeadName);
      auto embed = byName.find(kHfEmbeddingName);
      if (embed == byName.end())
        return where + "tensor '" + std::string(kHfLmHeadName) + "' is present but '" +
               kHfEmbeddingName + "', which the plan ties it to, is not";
      const Tensor &h = *head->second, &e = *embed->second;
      if (h.shape != e.shape)
        return where + "tensor '" + std::string(kHfLmHeadName) + "': shape " +
               shapeString(h.shape) + " but the tied embedding is " + shapeString(e.shape);
      if (h.dtype == DType::I32 || h.dtype == DType::I64)
        return where + "tensor '" + std::string(kHfLmHeadName) + "': dtype " + dtypeName(h.dtype) +
               " where a float tensor is expected";
      for (int64_t k = 0, n = h.numel(); k < n; ++k)
        if (h.at(k) != e.at(k))
          return where + "tensor '" + std::string(kHfLmHeadName) + "' differs from '" +
                 kHfEmbeddingName + "' at element " + std::to_string(k) + " (" +
                 std::to_string(h.at(k)) + " vs " + std::to_string(e.at(k)) +
                 ") but the plan ties them";
      rep.tiedLmHeadChecked = true;
    }
  }

  for (const Tensor &t : file.tensors)
    if (!used.count(t.name))
      rep.unexpected.push_back(t.name);
  if (!rep.unexpected.empty() && !options.allowUnexpected)
    return where + std::to_string(rep.unexpected.size()) +
           " tensor(s) the plan does not use: " + listNames(rep.unexpected);
  return "";
}
} // namespace

std::string hfShape(const std::vector<int64_t> &ours, plan::HfLayout layout,
                    std::vector<int64_t> &hf) {
  hf.clear();
  switch (layout) {
  case plan::HfLayout::same:
    hf = ours;
    return "";
  case plan::HfLayout::transpose:
    if (ours.size() != 2)
      return "layout transpose needs a 2-D shape, not " + shapeString(ours);
    hf = {ours[1], ours[0]};
    return "";
  case plan::HfLayout::conv:
    if (ours.size() != 2)
      return "layout conv needs a 2-D [width, channels] shape, not " + shapeString(ours);
    hf = {ours[1], 1, ours[0]};
    return "";
  case plan::HfLayout::unsqueeze1:
    if (ours.empty())
      return "layout unsqueeze1 needs at least one axis";
    hf = ours;
    hf.insert(hf.begin() + 1, 1);
    return "";
  }
  return "unknown Hugging Face layout " + std::to_string(int(layout));
}

void toHfLayout(plan::HfLayout layout, const std::vector<int64_t> &ours, const double *src,
                double *dst) {
  reorder(layout, ours, src, dst, true);
}
void toHfLayout(plan::HfLayout layout, const std::vector<int64_t> &ours, const float *src,
                float *dst) {
  reorder(layout, ours, src, dst, true);
}
void fromHfLayout(plan::HfLayout layout, const std::vector<int64_t> &ours, const double *src,
                  double *dst) {
  reorder(layout, ours, src, dst, false);
}
void fromHfLayout(plan::HfLayout layout, const std::vector<int64_t> &ours, const float *src,
                  float *dst) {
  reorder(layout, ours, src, dst, false);
}

std::string exportHf(const plan::Plan &plan, const std::vector<std::vector<double>> &values,
                     DType fileDtype, SafetensorsFile &out) {
  return exportImpl(plan, values, fileDtype, out);
}
std::string exportHf(const plan::Plan &plan, const std::vector<std::vector<float>> &values,
                     DType fileDtype, SafetensorsFile &out) {
  return exportImpl(plan, values, fileDtype, out);
}
std::string importHf(const plan::Plan &plan, const SafetensorsFile &file,
                     const std::string &fileName, std::vector<std::vector<double>> &values,
                     const HfImportOptions &options, HfImportReport *report) {
  return importImpl(plan, file, fileName, values, options, report);
}
std::string importHf(const plan::Plan &plan, const SafetensorsFile &file,
                     const std::string &fileName, std::vector<std::vector<float>> &values,
                     const HfImportOptions &options, HfImportReport *report) {
  return importImpl(plan, file, fileName, values, options, report);
}
} // namespace ttt::checkpoint
