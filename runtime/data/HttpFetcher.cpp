#include "runtime/data/HttpFetcher.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace fs = std::filesystem;

namespace ttt::data {
namespace {

struct Transfer {
  CURL *curl = nullptr;
  std::FILE *file = nullptr;
  std::string partPath;
  curl_off_t offset = 0;
  bool started = false;
  bool restarted = false; // the server ignored our Range and sent the whole file
  bool writeFailed = false;
};

size_t onData(char *data, size_t size, size_t n, void *user) {
  auto *t = static_cast<Transfer *>(user);
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code != 200 && code != 206)
    return size * n; // an error page: discarded, the status decides what happens
  if (!t->started) {
    t->started = true;
    if (code == 200 && t->offset > 0) {
      // no Range support: start the part file again instead of appending a second copy
      t->file = std::freopen(t->partPath.c_str(), "wb", t->file);
      t->offset = 0;
      t->restarted = true;
    }
  }
  if (!t->file || std::fwrite(data, size, n, t->file) != n) {
    t->writeFailed = true;
    return 0;
  }
  return size * n;
}

void globalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

} // namespace

void downloadFile(const std::string &url, const std::string &dest, const HttpOptions &opts) {
  if (fs::is_regular_file(dest))
    return;
  if (opts.offline)
    throw std::runtime_error("offline (HF_DATASETS_OFFLINE/HF_HUB_OFFLINE) and " + dest +
                             " is not in the cache");
  globalInit();
  fs::create_directories(fs::path(dest).parent_path());
  std::string part = dest + ".part";
  std::string lastError;
  for (int attempt = 0; attempt <= opts.retries; ++attempt) {
    if (attempt > 0) {
      double wait = opts.retryBaseSeconds * double(1 << std::min(attempt - 1, 6));
      if (opts.log)
        *opts.log << "ttt data: " << url << ": " << lastError << "; retry " << attempt << "/"
                  << opts.retries << " in " << wait << " s\n";
      std::this_thread::sleep_for(std::chrono::duration<double>(wait));
    }
    Transfer t;
    t.partPath = part;
    std::error_code ec;
    t.offset = fs::exists(part, ec) ? static_cast<curl_off_t>(fs::file_size(part, ec)) : 0;
    t.file = std::fopen(part.c_str(), "ab");
    if (!t.file)
      throw std::runtime_error("cannot write " + part);
    t.curl = curl_easy_init();
    CURL *c = t.curl;
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist *headers = nullptr;
    if (!opts.token.empty())
      headers = curl_slist_append(headers, ("Authorization: Bearer " + opts.token).c_str());
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, onData);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, opts.connectTimeoutSeconds);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, opts.stallSeconds);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "ttt-run");
    if (headers)
      curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (!opts.caBundle.empty())
      curl_easy_setopt(c, CURLOPT_CAINFO, opts.caBundle.c_str());
    if (t.offset > 0)
      curl_easy_setopt(c, CURLOPT_RESUME_FROM_LARGE, t.offset);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_off_t length = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (t.file)
      std::fclose(t.file);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    std::string what = errbuf[0] ? errbuf : curl_easy_strerror(rc);

    if (rc == CURLE_TOO_MANY_REDIRECTS)
      throw std::runtime_error(url + ": redirect loop (more than 10 redirects)");
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
        rc == CURLE_SSL_CERTPROBLEM)
      throw std::runtime_error(url + ": TLS certificate not trusted: " + what +
                               " (a CA bundle can be given with --ca-bundle)");
    if (t.writeFailed)
      throw std::runtime_error("cannot write " + part + " (disk full?)");
    if (rc == CURLE_OK && (code == 404 || code == 401 || code == 403 || code == 410))
      throw std::runtime_error(url + ": HTTP " + std::to_string(code) +
                               (code == 401 || code == 403 ? " (set HF_TOKEN?)" : ""));
    if (rc == CURLE_OK && code == 416) {
      fs::remove(part, ec); // our part is longer than the file: start over
      lastError = "HTTP 416 for a resumed download";
      continue;
    }
    if (rc != CURLE_OK || (code != 200 && code != 206)) {
      lastError = rc != CURLE_OK ? what : "HTTP " + std::to_string(code);
      continue;
    }
    curl_off_t have = static_cast<curl_off_t>(fs::file_size(part, ec));
    curl_off_t expected = length < 0 ? have : (code == 206 ? t.offset + length : length);
    if (have != expected) {
      lastError = "got " + std::to_string(have) + " bytes, server announced " +
                  std::to_string(expected);
      continue;
    }
    fs::rename(part, dest);
    return;
  }
  throw std::runtime_error(url + ": download failed after " + std::to_string(opts.retries) +
                           " retries: " + lastError);
}

} // namespace ttt::data
