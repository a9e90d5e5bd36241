// The HTTPS source against nginx on 127.0.0.1 (self-signed certificate, Range, redirects), and a
// connection dropped mid-file by a tiny local server. No test here needs the network.
#include "DataTestUtil.h"

#include "runtime/data/HttpFetcher.h"
#include "runtime/data/Loader.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <thread>

using namespace ttt::data;
using namespace ttt::data::testing;

namespace {

std::string slurp(const std::string &p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

class Https : public ::testing::Test {
protected:
  static inline std::string dir, base, cert, shards;
  static inline bool up = false;

  static void SetUpTestSuite() {
    dir = tempDir("nginx");
    shards = syntheticC4("nginx-shards", 2, 50);
    std::filesystem::create_directories(dir + "/www/files");
    for (const auto &e : std::filesystem::directory_iterator(shards))
      std::filesystem::copy_file(e.path(), dir + "/www/files/" + e.path().filename().string());
    std::string cmd = std::string(TTT_NGINX_FIXTURE) + " start " + dir + " > " + dir + "/port";
    up = std::system(cmd.c_str()) == 0;
    std::string port = slurp(dir + "/port");
    while (!port.empty() && port.back() == '\n')
      port.pop_back();
    base = "https://127.0.0.1:" + port;
    cert = dir + "/cert.pem";
  }
  static void TearDownTestSuite() {
    std::system((std::string(TTT_NGINX_FIXTURE) + " stop " + dir).c_str());
  }
  void SetUp() override {
    if (!up)
      GTEST_FAIL() << "nginx/openssl not available: run scripts/setup.sh (scripts/apt-packages.txt)";
  }
  HttpOptions http() const {
    HttpOptions o;
    o.caBundle = cert;
    o.retries = 2;
    o.retryBaseSeconds = 0.01;
    return o;
  }
  SourceOptions source(const std::string &path, const std::string &cache) const {
    SourceOptions o;
    o.data = base + path;
    o.cacheDir = cache;
    o.caBundle = cert;
    o.trainShards = 2;
    o.validationShards = 1;
    o.retries = 1;
    o.retryBaseSeconds = 0.01;
    return o;
  }
  static std::string errorOf(const std::function<void()> &f) {
    try {
      f();
    } catch (const std::exception &e) {
      return e.what();
    }
    return "";
  }
};

} // namespace

TEST_F(Https, ShardsOverHttpsGiveTheSameBatchesAsLocalOnes) {
  TTT_REQUIRE_TOKENIZER();
  std::string cache = tempDir("https-cache");
  LoaderOptions lo;
  lo.seqLen = 32;
  lo.globalBatch = 4;
  lo.threads = 2;
  SourceOptions local;
  local.data = shards;
  ShardSource a(local), b(source("/redirect", cache)); // through a 302, as the hub does
  DataReport ra, rb;
  TrainLoader la(a, *tokenizer(), lo, ra), lb(b, *tokenizer(), lo, rb);
  Batch x, y;
  for (int i = 0; i < 20; ++i) {
    la.next(x);
    lb.next(y);
    ASSERT_EQ(batchDigest(x), batchDigest(y)) << "step " << i;
  }
  EXPECT_EQ(slurp(b.train()[1].localPath), slurp(shards + "/c4-train.00001-of-00002.json.gz"));
}

TEST_F(Https, ResumesAPartialDownloadWithARangeRequest) {
  std::string cache = tempDir("https-range");
  std::string name = "c4-train.00000-of-00002.json.gz";
  std::string whole = slurp(shards + "/" + name);
  ASSERT_GT(whole.size(), 2000u);
  std::ofstream(cache + "/x.gz.part", std::ios::binary) << whole.substr(0, 1000);
  downloadFile(base + "/files/" + name, cache + "/x.gz", http());
  EXPECT_EQ(slurp(cache + "/x.gz"), whole);
  EXPECT_FALSE(std::filesystem::exists(cache + "/x.gz.part"));
  // nginx logs a request after answering it: wait for the line rather than race it
  std::string want = "/files/" + name + " HTTP/1.1\" 206 " + std::to_string(whole.size() - 1000);
  std::string log;
  for (int i = 0; i < 200 && log.find(want) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    log = slurp(dir + "/access.log");
  }
  EXPECT_NE(log.find(want), std::string::npos) << log;
}

TEST_F(Https, FatalErrorsAreClear) {
  std::string cache = tempDir("https-errors");
  EXPECT_NE(errorOf([&] { downloadFile(base + "/files/nope.gz", cache + "/a", http()); })
                .find("HTTP 404"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { downloadFile(base + "/loop/x.gz", cache + "/b", http()); })
                .find("redirect loop"),
            std::string::npos);
  HttpOptions untrusted = http();
  untrusted.caBundle = "";
  std::string tls = errorOf([&] {
    downloadFile(base + "/files/c4-train.00000-of-00002.json.gz", cache + "/c", untrusted);
  });
  EXPECT_NE(tls.find("certificate"), std::string::npos) << tls;
  EXPECT_FALSE(std::filesystem::exists(cache + "/a"));
  // a source whose listing names a shard the server does not have fails, it does not skip it
  SourceOptions o = source("/files", cache);
  o.trainShards = 3; // c4-train.*-of-00003 do not exist
  ShardSource src(o);
  EXPECT_NE(errorOf([&] { src.localFile(src.train()[0]); }).find("404"), std::string::npos);
}

TEST_F(Https, TokenAndOfflineFollowHuggingFaceConventions) {
  std::string cache = tempDir("https-env");
  std::string url = base + "/auth/c4-validation.00000-of-00001.json.gz";
  EXPECT_NE(errorOf([&] { downloadFile(url, cache + "/v", http()); }).find("401"), std::string::npos);
  HttpOptions withToken = http();
  withToken.token = "sekrit";
  downloadFile(url, cache + "/v", withToken);
  EXPECT_EQ(slurp(cache + "/v"), slurp(shards + "/c4-validation.00000-of-00001.json.gz"));

  setenv("HF_DATASETS_OFFLINE", "1", 1);
  SourceOptions o = source("/files", tempDir("https-offline"));
  ShardSource offline(o);
  std::string err = errorOf([&] { offline.localFile(offline.validation()[0]); });
  unsetenv("HF_DATASETS_OFFLINE");
  EXPECT_NE(err.find("offline"), std::string::npos) << err;
}

TEST(HttpDrop, ConnectionDroppedMidFileIsResumed) {
  // A server that sends half the body and closes, then answers the Range request properly.
  std::string body(100000, 'x');
  for (size_t i = 0; i < body.size(); ++i)
    body[i] = static_cast<char>('a' + (i * 31) % 26);
  int srv = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(srv, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  getsockname(srv, reinterpret_cast<sockaddr *>(&addr), &len);
  listen(srv, 4);
  std::atomic<int> connections{0};
  std::string rangeSeen;
  std::thread server([&] {
    for (int c = 0; c < 2; ++c) {
      int fd = accept(srv, nullptr, nullptr);
      if (fd < 0)
        return;
      connections++;
      char req[4096];
      ssize_t n = recv(fd, req, sizeof(req) - 1, 0);
      std::string request(req, n > 0 ? n : 0);
      std::string reply;
      auto at = request.find("Range: bytes=");
      if (at == std::string::npos) {
        reply = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\nConnection: close\r\n\r\n" + body.substr(0, body.size() / 2);
      } else {
        size_t from = std::stoul(request.substr(at + 13));
        rangeSeen = std::to_string(from);
        reply = "HTTP/1.1 206 Partial Content\r\nContent-Length: " +
                std::to_string(body.size() - from) + "\r\nContent-Range: bytes " +
                std::to_string(from) + "-" + std::to_string(body.size() - 1) + "/" +
                std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body.substr(from);
      }
      send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
      close(fd);
    }
  });
  std::string cache = tempDir("drop");
  HttpOptions o;
  o.retries = 3;
  o.retryBaseSeconds = 0.01;
  std::ostringstream log;
  o.log = &log;
  std::string err;
  try {
    downloadFile("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/s.gz",
                 cache + "/s.gz", o);
  } catch (const std::exception &e) {
    err = e.what();
  }
  shutdown(srv, SHUT_RDWR);
  close(srv);
  server.join();
  EXPECT_EQ(err, "");
  EXPECT_EQ(connections.load(), 2);
  EXPECT_EQ(rangeSeen, std::to_string(body.size() / 2));
  EXPECT_EQ(slurp(cache + "/s.gz"), body);
  EXPECT_NE(log.str().find("retry 1/3"), std::string::npos) << log.str();
}
