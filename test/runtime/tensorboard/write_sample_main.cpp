// Writes the event file check_event_file.py reads back: for steps 1..STEPS the scalars
// train/loss = 10/step, train/lr = step * 1e-4, zero = 0, neg = -1.5 * step, at wall time
// 1.7e9 + step, flushing after each step as the trainer does.
#include "runtime/tensorboard/TensorBoard.h"

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s LOGDIR STEPS\n", argv[0]);
    return 2;
  }
  std::string error;
  auto writer = ttt::tensorboard::EventWriter::open(argv[1], error);
  if (!writer) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  int steps = std::atoi(argv[2]);
  for (int step = 1; step <= steps; ++step) {
    double wall = 1.7e9 + step;
    writer->scalar("train/loss", step, 10.0 / step, wall);
    writer->scalar("train/lr", step, step * 1e-4, wall);
    writer->scalar("zero", step, 0.0, wall);
    writer->scalar("neg", step, -1.5 * step, wall);
    error = writer->flush();
    if (!error.empty()) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 1;
    }
  }
  std::printf("%s\n", writer->path().c_str());
  return 0;
}
