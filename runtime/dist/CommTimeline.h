// The gradient reduction of one micro-step on a timeline (CUDA, several ranks): when the backward
// on the compute stream made each bucket final, when its reduction ran on the communication
// stream, and how much of that the backward hid. Written as a Chrome trace (chrome://tracing,
// ui.perfetto.dev) by `ttt-run --comm-timeline FILE`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ttt::dist {

struct BucketTiming {
  int64_t bucket = 0;            // the plan's bucket_ready index
  int64_t bytes = 0;             // gradient bytes it reduces on this rank's stream
  double readyMs = 0;            // the backward made it final (compute stream)
  double startMs = 0, endMs = 0; // its reduction (communication stream)
};

// Times in ms from the micro-step's start on the compute stream.
struct CommTimeline {
  int64_t step = 0, rank = 0, ranks = 1;
  double computeEndMs = 0; // the micro-step's last kernel on the compute stream
  std::vector<BucketTiming> buckets;

  double reduceMs() const;  // the reductions' total time (one stream: their sum)
  double hiddenMs() const;  // of that, the part before computeEndMs
  double exposedMs() const; // how long after computeEndMs the last reduction ended (>= 0)
  std::string summary(const std::string &file) const; // one line for the log
  std::string chromeTrace() const;                    // {"traceEvents": [...]} JSON
};

} // namespace ttt::dist
