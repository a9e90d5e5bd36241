#include "runtime/data/Tokenizer.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace fs = std::filesystem;

namespace ttt::data {
namespace {

std::string envOr(const char *name, const std::string &fallback) {
  const char *v = std::getenv(name);
  return (v && *v) ? std::string(v) : fallback;
}

std::string home() { return envOr("HOME", "/"); }

// The Hugging Face hub cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub.
std::string hfHubCache() {
  std::string hfHome = envOr("HF_HOME", envOr("XDG_CACHE_HOME", home() + "/.cache") + "/huggingface");
  return envOr("HF_HUB_CACHE", hfHome + "/hub");
}

} // namespace

std::string Tokenizer::locate(const std::string &explicitPath, std::vector<std::string> *searched) {
  auto note = [&](const std::string &p) {
    if (searched)
      searched->push_back(p);
  };
  if (!explicitPath.empty()) {
    note(explicitPath);
    return fs::is_regular_file(explicitPath) ? explicitPath : "";
  }
  fs::path snapshots = fs::path(hfHubCache()) / "models--meta-llama--Llama-2-7b-hf" / "snapshots";
  note((snapshots / "*" / "tokenizer.model").string());
  std::error_code ec;
  if (fs::is_directory(snapshots, ec)) {
    std::vector<fs::path> found;
    for (const auto &entry : fs::directory_iterator(snapshots, ec))
      if (fs::is_regular_file(entry.path() / "tokenizer.model"))
        found.push_back(entry.path() / "tokenizer.model");
    std::sort(found.begin(), found.end()); // any snapshot has the same file; pick one stably
    if (!found.empty())
      return found.front().string();
  }
  std::string ttt = envOr("TTT_CACHE_DIR", envOr("XDG_CACHE_HOME", home() + "/.cache") + "/ttt");
  std::string setupCopy = ttt + "/tokenizer/llama-2/tokenizer.model";
  note(setupCopy);
  return fs::is_regular_file(setupCopy) ? setupCopy : "";
}

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string &explicitPath) {
  std::vector<std::string> searched;
  std::string path = locate(explicitPath, &searched);
  if (path.empty()) {
    std::string msg = "Llama-2 tokenizer.model not found; looked at:";
    for (const auto &s : searched)
      msg += "\n  " + s;
    msg += "\nPass --tokenizer PATH, download meta-llama/Llama-2-7b-hf with huggingface-cli, or run "
           "scripts/fetch_tokenizer.sh";
    throw std::runtime_error(msg);
  }
  std::unique_ptr<Tokenizer> tok(new Tokenizer);
  tok->path_ = path;
  tok->sp_ = std::make_unique<sentencepiece::SentencePieceProcessor>();
  auto status = tok->sp_->Load(path);
  if (!status.ok())
    throw std::runtime_error("cannot load tokenizer " + path + ": " + status.ToString());
  if (tok->sp_->GetPieceSize() != kVocab || tok->sp_->bos_id() != kBos || tok->sp_->eos_id() != kEos)
    throw std::runtime_error("tokenizer " + path + " is not the Llama-2 tokenizer (vocab " +
                             std::to_string(tok->sp_->GetPieceSize()) + ", bos " +
                             std::to_string(tok->sp_->bos_id()) + ", eos " +
                             std::to_string(tok->sp_->eos_id()) + "; expected 32000, 1, 2)");
  if (tok->encode("Hello world!") != std::vector<int>{15043, 3186, 29991})
    throw std::runtime_error("tokenizer " + path +
                             " does not encode \"Hello world!\" as 15043 3186 29991: not Llama-2's");
  return tok;
}

Tokenizer::~Tokenizer() = default;

std::vector<int> Tokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  auto status = sp_->Encode(text, &ids);
  if (!status.ok())
    throw std::runtime_error("sentencepiece: " + status.ToString());
  return ids;
}

void Tokenizer::appendDocument(std::string_view text, std::vector<uint16_t> &out) const {
  out.push_back(kBos);
  if (text.empty())
    return; // spec 4.4: EOS is only appended to non-empty text
  thread_local std::vector<int> ids; // reused: no allocation per document on a worker
  auto status = sp_->Encode(text, &ids);
  if (!status.ok())
    throw std::runtime_error("sentencepiece: " + status.ToString());
  out.insert(out.end(), ids.begin(), ids.end());
  out.push_back(kEos);
}

} // namespace ttt::data
