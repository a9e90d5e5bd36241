// The Llama-2 SentencePiece tokenizer: locating tokenizer.model and encoding whole documents.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace ttt::data {

class Tokenizer {
public:
  static constexpr int kBos = 1;
  static constexpr int kEos = 2;
  static constexpr int kVocab = 32000;

  /// Finds tokenizer.model: `explicitPath` if given, else the Hugging Face cache
  /// (meta-llama/Llama-2-7b-hf), else the copy scripts/fetch_tokenizer.sh puts in the ttt cache.
  /// Returns "" when none exists; `searched` receives the places looked at, for the error message.
  static std::string locate(const std::string &explicitPath, std::vector<std::string> *searched);

  /// Loads and checks the model (vocab 32000, BOS 1, EOS 2, a known encoding). Throws
  /// std::runtime_error with what was searched or what is wrong.
  static std::unique_ptr<Tokenizer> load(const std::string &explicitPath = "");

  ~Tokenizer();

  /// Appends BOS, the pieces of `text`, and EOS when the text is non-empty (spec 4.4).
  /// Safe to call from several threads at once.
  void appendDocument(std::string_view text, std::vector<uint16_t> &out) const;
  std::vector<int> encode(std::string_view text) const;
  const std::string &path() const { return path_; }

private:
  Tokenizer() = default;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  std::string path_;
};

} // namespace ttt::data
