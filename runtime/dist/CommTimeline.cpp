// The reduction timeline's arithmetic and its Chrome trace (CommTimeline.h).
#include "runtime/dist/CommTimeline.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace ttt::dist {

double CommTimeline::reduceMs() const {
  double t = 0;
  for (const BucketTiming &b : buckets)
    t += std::max(0.0, b.endMs - b.startMs);
  return t;
}

double CommTimeline::hiddenMs() const {
  double t = 0;
  for (const BucketTiming &b : buckets)
    t += std::max(0.0, std::min(b.endMs, computeEndMs) - b.startMs);
  return t;
}

double CommTimeline::exposedMs() const {
  double last = computeEndMs;
  for (const BucketTiming &b : buckets)
    last = std::max(last, b.endMs);
  return last - computeEndMs;
}

std::string CommTimeline::summary(const std::string &file) const {
  int64_t bytes = 0;
  for (const BucketTiming &b : buckets)
    bytes += b.bytes;
  const double reduce = reduceMs(), hidden = hiddenMs();
  char line[512];
  std::snprintf(line, sizeof line,
                "comm timeline (rank %lld of %lld, step %lld's last micro-step): %zu buckets, "
                "%.1f MB; reductions %.2f ms, %.2f ms (%.0f%%) while the backward ran, the last "
                "one ended %.2f ms after it (backward %.2f ms)%s%s",
                static_cast<long long>(rank), static_cast<long long>(ranks),
                static_cast<long long>(step), buckets.size(), double(bytes) / 1e6, reduce, hidden,
                reduce > 0 ? 100.0 * hidden / reduce : 0.0, exposedMs(), computeEndMs,
                file.empty() ? "" : "; ", file.c_str());
  return line;
}

std::string CommTimeline::chromeTrace() const {
  using nlohmann::json;
  auto us = [](double ms) { return ms * 1000.0; };
  json events = json::array();
  const int pid = int(rank);
  events.push_back({{"name", "process_name"},
                    {"ph", "M"},
                    {"pid", pid},
                    {"args", {{"name", "rank " + std::to_string(rank)}}}});
  events.push_back({{"name", "thread_name"},
                    {"ph", "M"},
                    {"pid", pid},
                    {"tid", 1},
                    {"args", {{"name", "compute stream"}}}});
  events.push_back({{"name", "thread_name"},
                    {"ph", "M"},
                    {"pid", pid},
                    {"tid", 2},
                    {"args", {{"name", "NCCL stream"}}}});
  events.push_back({{"name", "micro_step (forward + backward)"},
                    {"ph", "X"},
                    {"pid", pid},
                    {"tid", 1},
                    {"ts", 0.0},
                    {"dur", us(computeEndMs)}});
  for (const BucketTiming &b : buckets) {
    const std::string name = "bucket " + std::to_string(b.bucket);
    events.push_back({{"name", name + " ready"},
                      {"ph", "i"},
                      {"s", "t"},
                      {"pid", pid},
                      {"tid", 1},
                      {"ts", us(b.readyMs)}});
    events.push_back({{"name", name + " reduce"},
                      {"ph", "X"},
                      {"pid", pid},
                      {"tid", 2},
                      {"ts", us(b.startMs)},
                      {"dur", us(std::max(0.0, b.endMs - b.startMs))},
                      {"args", {{"bytes", b.bytes}}}});
  }
  json doc = {{"traceEvents", events},
              {"displayTimeUnit", "ms"},
              {"otherData",
               {{"step", step},
                {"rank", rank},
                {"ranks", ranks},
                {"reduce_ms", reduceMs()},
                {"hidden_ms", hiddenMs()},
                {"exposed_ms", exposedMs()},
                {"backward_end_ms", computeEndMs}}}};
  return doc.dump(1) + "\n";
}

} // namespace ttt::dist
