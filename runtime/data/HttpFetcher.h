// Downloads one file over HTTP(S) with libcurl: resume by Range, retries with backoff, size check.
#pragma once

#include <ostream>
#include <string>

namespace ttt::data {

struct HttpOptions {
  std::string caBundle; // PEM file; empty: the system's CA store
  std::string token;    // sent as "Authorization: Bearer" (HF_TOKEN)
  int retries = 5;
  double retryBaseSeconds = 1.0;
  long connectTimeoutSeconds = 30;
  long stallSeconds = 60; // a transfer slower than 1 byte/s for this long is dropped and resumed
  bool offline = false;   // cache only
  std::ostream *log = nullptr;
};

/// Makes `dest` a complete copy of `url`. Partial data is kept in `dest`.part and resumed with a
/// Range request; `dest` appears (by rename) only once the size matches what the server announced.
/// Throws std::runtime_error for what retrying cannot fix (404, a redirect loop, an untrusted
/// certificate, offline without a cached copy) and when the retries are exhausted.
void downloadFile(const std::string &url, const std::string &dest, const HttpOptions &opts);

} // namespace ttt::data
