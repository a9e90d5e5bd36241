#include "DataTestUtil.h"

#include <fstream>

using namespace ttt::data;
using namespace ttt::data::testing;

TEST(Tokenizer, EncodesLikeLlama2) {
  TTT_REQUIRE_TOKENIZER();
  EXPECT_EQ(tokenizer()->encode("Hello world!"), (std::vector<int>{15043, 3186, 29991}));
}

TEST(Tokenizer, DocumentsGetBosAndEos) {
  TTT_REQUIRE_TOKENIZER();
  std::vector<uint16_t> ids;
  tokenizer()->appendDocument("Hello world!", ids);
  EXPECT_EQ(ids, (std::vector<uint16_t>{1, 15043, 3186, 29991, 2}));
  tokenizer()->appendDocument("", ids); // spec 4.4: an empty document is BOS only
  EXPECT_EQ(ids.size(), 6u);
  EXPECT_EQ(ids.back(), 1);
}

TEST(Tokenizer, MissingFileIsAClearError) {
  try {
    Tokenizer::load("/nonexistent/tokenizer.model");
    FAIL() << "expected an error";
  } catch (const std::runtime_error &e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
    EXPECT_NE(msg.find("/nonexistent/tokenizer.model"), std::string::npos) << msg;
    EXPECT_NE(msg.find("fetch_tokenizer.sh"), std::string::npos) << msg;
  }
}

TEST(Tokenizer, WrongFileIsAClearError) {
  std::string path = tempDir("badtok") + "/tokenizer.model";
  std::ofstream(path) << "this is not a sentencepiece model";
  try {
    Tokenizer::load(path);
    FAIL() << "expected an error";
  } catch (const std::runtime_error &e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, FindsTheHuggingFaceCache) {
  std::string hub = tempDir("hfcache");
  std::string snap = hub + "/models--meta-llama--Llama-2-7b-hf/snapshots/abc123";
  std::filesystem::create_directories(snap);
  std::ofstream(snap + "/tokenizer.model") << "x";
  setenv("HF_HUB_CACHE", hub.c_str(), 1);
  EXPECT_EQ(Tokenizer::locate("", nullptr), snap + "/tokenizer.model");
  unsetenv("HF_HUB_CACHE");
}
