#include "runtime/checkpoint/Safetensors.h"

#include "runtime/checkpoint/AtomicFile.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors data is little-endian; this code copies it as host memory");

namespace ttt::checkpoint {
namespace {
using json = nlohmann::json;

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Product of the extents, or false when it overflows int64.
bool numelOf(const std::vector<int64_t> &shape, int64_t &numel) {
  numel = 1;
  for (int64_t d : shape) {
    if (d < 0)
      return false;
    if (d != 0 && numel > INT64_MAX / d)
      return false;
    numel *= d;
  }
  return true;
}

// Collapses a message to one line (nlohmann's parse errors can quote raw header text).
std::string oneLine(std::string s) {
  for (char &c : s)
    if (c == '\n' || c == '\r')
      c = ' ';
  return s;
}

template <typename T>
Tensor makeFloat(const std::string &name, DType dtype, std::vector<int64_t> shape,
                 const std::vector<T> &values) {
  Tensor t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(values.size() * dtypeSize(dtype));
  uint8_t *p = t.data.data();
  for (size_t i = 0; i < values.size(); ++i) {
    switch (dtype) {
    case DType::F64: {
      double v = double(values[i]);
      std::memcpy(p + 8 * i, &v, 8);
      break;
    }
    case DType::F32: {
      float v = float(values[i]);
      std::memcpy(p + 4 * i, &v, 4);
      break;
    }
    case DType::BF16: {
      uint16_t v = floatToBf16(float(values[i]));
      std::memcpy(p + 2 * i, &v, 2);
      break;
    }
    case DType::I32: {
      int32_t v = int32_t(values[i]);
      std::memcpy(p + 4 * i, &v, 4);
      break;
    }
    case DType::I64: {
      int64_t v = int64_t(values[i]);
      std::memcpy(p + 8 * i, &v, 8);
      break;
    }
    }
  }
  return t;
}
} // namespace

const char *dtypeName(DType d) {
  switch (d) {
  case DType::F64:
    return "F64";
  case DType::F32:
    return "F32";
  case DType::BF16:
    return "BF16";
  case DType::I32:
    return "I32";
  case DType::I64:
    return "I64";
  }
  return "?";
}

size_t dtypeSize(DType d) {
  switch (d) {
  case DType::F64:
  case DType::I64:
    return 8;
  case DType::F32:
  case DType::I32:
    return 4;
  case DType::BF16:
    return 2;
  }
  return 0;
}

bool parseDType(const std::string &name, DType &out) {
  for (DType d : {DType::F64, DType::F32, DType::BF16, DType::I32, DType::I64})
    if (name == dtypeName(d)) {
      out = d;
      return true;
    }
  return false;
}

uint16_t floatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if (std::isnan(f))
    return uint16_t((bits >> 16) | 0x0040u); // keep sign and payload top, force quiet
  uint32_t roundingBias = 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t((bits + roundingBias) >> 16);
}

float bf16ToFloat(uint16_t b) {
  uint32_t bits = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

double Tensor::at(int64_t i) const {
  const uint8_t *p = data.data() + size_t(i) * dtypeSize(dtype);
  switch (dtype) {
  case DType::F64: {
    double v;
    std::memcpy(&v, p, 8);
    return v;
  }
  case DType::F32: {
    float v;
    std::memcpy(&v, p, 4);
    return v;
  }
  case DType::BF16: {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return bf16ToFloat(v);
  }
  case DType::I32: {
    int32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
  case DType::I64: {
    int64_t v;
    std::memcpy(&v, p, 8);
    return double(v);
  }
  }
  return 0;
}

Tensor makeTensor(const std::string &name, DType dtype, std::vector<int64_t> shape,
                  const std::vector<double> &values) {
  return makeFloat(name, dtype, std::move(shape), values);
}
Tensor makeTensor(const std::string &name, DType dtype, std::vector<int64_t> shape,
                  const std::vector<float> &values) {
  return makeFloat(name, dtype, std::move(shape), values);
}
Tensor makeIntTensor(const std::string &name, DType dtype, std::vector<int64_t> shape,
                     const std::vector<int64_t> &values) {
  return makeFloat(name, dtype, std::move(shape), values);
}

const Tensor *SafetensorsFile::find(const std::string &name) const {
  for (const Tensor &t : tensors)
    if (t.name == name)
      return &t;
  return nullptr;
}

std::string encodeSafetensors(const SafetensorsFile &file, std::vector<uint8_t> &out) {
  std::vector<const Tensor *> order;
  std::set<std::string> names;
  for (const Tensor &t : file.tensors) {
    if (t.name.empty())
      return "safetensors: a tensor has an empty name";
    if (t.name == "__metadata__")
      return "safetensors: '__metadata__' is reserved and cannot name a tensor";
    if (!names.insert(t.name).second)
      return "safetensors: tensor '" + t.name + "' is given twice";
    int64_t numel;
    if (!numelOf(t.shape, numel) || uint64_t(numel) * dtypeSize(t.dtype) != t.data.size())
      return "safetensors: tensor '" + t.name + "': shape " + shapeString(t.shape) + " of " +
             dtypeName(t.dtype) + " does not match its " + std::to_string(t.data.size()) + " bytes";
    order.push_back(&t);
  }
  std::stable_sort(order.begin(), order.end(), [](const Tensor *a, const Tensor *b) {
    size_t sa = dtypeSize(a->dtype), sb = dtypeSize(b->dtype);
    return sa != sb ? sa > sb : a->name < b->name;
  });
  json header = json::object();
  uint64_t offset = 0;
  for (const Tensor *t : order) {
    header[t->name] = {{"dtype", dtypeName(t->dtype)},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->data.size()}}};
    offset += t->data.size();
  }
  if (!file.metadata.empty())
    header["__metadata__"] = file.metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  out.clear();
  out.reserve(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i)
    out.push_back(uint8_t(n >> (8 * i)));
  out.insert(out.end(), text.begin(), text.end());
  for (const Tensor *t : order)
    out.insert(out.end(), t->data.begin(), t->data.end());
  return "";
}

std::string writeSafetensors(const std::string &path, const SafetensorsFile &file) {
  std::vector<uint8_t> bytes;
  std::string err = encodeSafetensors(file, bytes);
  if (!err.empty())
    return path + ": " + err;
  return writeFileAtomically(path, bytes.data(), bytes.size());
}

std::string decodeSafetensors(const uint8_t *bytes, size_t size, const std::string &name,
                              SafetensorsFile &out) {
  out = SafetensorsFile();
  const std::string where = name + ": ";
  if (size < 8)
    return where + "truncated: " + std::to_string(size) +
           " bytes, too short for the 8-byte header size of a safetensors file";
  uint64_t headerSize = 0;
  for (int i = 0; i < 8; ++i)
    headerSize |= uint64_t(bytes[i]) << (8 * i);
  if (headerSize > kMaxHeaderSize)
    return where + "header size " + std::to_string(headerSize) + " exceeds the limit of " +
           std::to_string(kMaxHeaderSize) + " bytes: not a safetensors file?";
  if (headerSize > size - 8)
    return where + "truncated: header size " + std::to_string(headerSize) +
           " runs past the end of the file (" + std::to_string(size) + " bytes)";
  const char *text = reinterpret_cast<const char *>(bytes + 8);
  if (headerSize < 2 || text[0] != '{')
    return where + "header is not a JSON object (it must start with '{')";

  // Duplicate keys are an error (nlohmann would silently keep the last): a key set per object.
  std::vector<std::set<std::string>> open;
  std::string duplicate;
  json header;
  try {
    header =
        json::parse(text, text + headerSize, [&](int, json::parse_event_t event, json &parsed) {
          if (event == json::parse_event_t::object_start)
            open.emplace_back();
          else if (event == json::parse_event_t::object_end && !open.empty())
            open.pop_back();
          else if (event == json::parse_event_t::key && !open.empty() &&
                   !open.back().insert(parsed.get<std::string>()).second && duplicate.empty())
            duplicate = parsed.get<std::string>();
          return true;
        });
  } catch (const json::exception &e) {
    return where + "header is not valid JSON: " + oneLine(e.what());
  }
  if (!duplicate.empty())
    return where + "header gives the key '" + duplicate + "' twice";
  if (!header.is_object())
    return where + "header is not a JSON object";

  const uint64_t bufferSize = size - 8 - headerSize;
  struct Span {
    uint64_t begin, end;
    size_t index;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string &key = it.key();
    const json &entry = it.value();
    if (key == "__metadata__") {
      if (!entry.is_object())
        return where + "__metadata__ is not an object of strings";
      for (auto m = entry.begin(); m != entry.end(); ++m) {
        if (!m.value().is_string())
          return where + "__metadata__ value of '" + m.key() + "' is not a string";
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string at = where + "tensor '" + key + "': ";
    if (!entry.is_object())
      return at + "entry is not an object";
    for (auto f = entry.begin(); f != entry.end(); ++f)
      if (f.key() != "dtype" && f.key() != "shape" && f.key() != "data_offsets")
        return at + "unexpected field '" + f.key() + "'";
    auto dtypeIt = entry.find("dtype");
    if (dtypeIt == entry.end() || !dtypeIt->is_string())
      return at + "missing string field 'dtype'";
    Tensor t;
    t.name = key;
    if (!parseDType(dtypeIt->get<std::string>(), t.dtype))
      return at + "unknown dtype '" + dtypeIt->get<std::string>() +
             "' (supported: F64, F32, BF16, I32, I64)";
    auto shapeIt = entry.find("shape");
    if (shapeIt == entry.end() || !shapeIt->is_array())
      return at + "missing array field 'shape'";
    for (const json &d : *shapeIt) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > uint64_t(INT64_MAX))
        return at + "shape " + oneLine(shapeIt->dump()) +
               " has an extent that is not a "
               "non-negative integer";
      t.shape.push_back(int64_t(d.get<uint64_t>()));
    }
    auto offIt = entry.find("data_offsets");
    if (offIt == entry.end() || !offIt->is_array() || offIt->size() != 2 ||
        !(*offIt)[0].is_number_unsigned() || !(*offIt)[1].is_number_unsigned())
      return at + "data_offsets must be two non-negative integers [begin, end]";
    uint64_t begin = (*offIt)[0].get<uint64_t>(), end = (*offIt)[1].get<uint64_t>();
    std::string offs = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (end < begin)
      return at + offs + " end before begin";
    if (end > bufferSize)
      return at + offs + " out of range: the data buffer holds " + std::to_string(bufferSize) +
             " bytes";
    int64_t numel;
    if (!numelOf(t.shape, numel) || uint64_t(numel) > UINT64_MAX / dtypeSize(t.dtype))
      return at + "shape " + shapeString(t.shape) + " overflows";
    uint64_t need = uint64_t(numel) * dtypeSize(t.dtype);
    if (need != end - begin)
      return at + "shape " + shapeString(t.shape) + " of " + dtypeName(t.dtype) + " needs " +
             std::to_string(need) + " bytes but " + offs + " hold " + std::to_string(end - begin);
    spans.push_back({begin, end, out.tensors.size()});
    out.tensors.push_back(std::move(t));
  }

  std::sort(spans.begin(), spans.end(), [](const Span &a, const Span &b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  const Tensor *previous = nullptr;
  for (const Span &s : spans) {
    const Tensor &t = out.tensors[s.index];
    const std::string at = where + "tensor '" + t.name + "': ";
    if (s.begin < expected)
      return at + "data_offsets [" + std::to_string(s.begin) + ", " + std::to_string(s.end) +
             "] overlap tensor '" + (previous ? previous->name : std::string()) + "'";
    if (s.begin > expected)
      return at + "gap of " + std::to_string(s.begin - expected) +
             " unused bytes before its data_offsets [" + std::to_string(s.begin) + ", " +
             std::to_string(s.end) + "]";
    expected = s.end;
    previous = &t;
  }
  if (expected != bufferSize)
    return where + std::to_string(bufferSize - expected) + " trailing bytes after the last tensor" +
           (previous ? " '" + previous->name + "'" : std::string());

  std::vector<Tensor> ordered;
  ordered.reserve(spans.size());
  const uint8_t *data = bytes + 8 + headerSize;
  for (const Span &s : spans) {
    Tensor &t = out.tensors[s.index];
    t.data.assign(data + s.begin, data + s.end);
    ordered.push_back(std::move(t));
  }
  out.tensors = std::move(ordered);
  return "";
}

std::string readSafetensors(const std::string &path, SafetensorsFile &out) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in)
    return "cannot read '" + path + "': " + std::strerror(errno);
  std::streamoff size = in.tellg();
  std::vector<uint8_t> bytes(size_t(size > 0 ? size : 0));
  in.seekg(0);
  if (!bytes.empty() && !in.read(reinterpret_cast<char *>(bytes.data()), size))
    return "cannot read '" + path + "': " + std::strerror(errno);
  return decodeSafetensors(bytes.data(), bytes.size(), path, out);
}
} // namespace ttt::checkpoint
