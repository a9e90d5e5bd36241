// rms_norm and layer_norm backward against central differences of the forward kernels, float
// against double, and dx written over dy.
#include "runtime/backend/cpu/Backward.h"
#include "test/runtime/cpu/GradientTestUtil.h"

namespace ttt::cpu::test {
namespace {
struct NormCase {
  int64_t rows, dim;
  double eps, offset; // offset moves the mean of x away from zero
};
const NormCase kCases[] = {
    {3, 7, 1e-6, 0.0}, {1, 3, 1e-5, 0.0}, {2, 16, 1e-6, 0.0}, {4, 5, 1e-5, 10.0}};

struct NormInputs {
  std::vector<double> x, w, b, dy;
};
NormInputs inputs(const NormCase &c, uint64_t seed) {
  return {floatExact(c.rows * c.dim, seed, c.offset - 2.0, c.offset + 3.0),
          floatExact(c.dim, seed + 1, 0.5, 1.5), floatExact(c.dim, seed + 2),
          floatExact(c.rows * c.dim, seed + 3)};
}

TEST(NormsBackwardTest, RmsNormMatchesFiniteDifferences) {
  for (const NormCase &c : kCases) {
    NormInputs in = inputs(c, 300 + c.dim);
    std::vector<double> dx(in.x.size()), dw(c.dim);
    rmsNormBackward(in.x.data(), in.w.data(), in.dy.data(), c.rows, c.dim, c.eps, dx.data(),
                    dw.data());
    auto loss = [&] {
      std::vector<double> y(in.x.size());
      rmsNorm(in.x.data(), in.w.data(), c.rows, c.dim, c.eps, y.data());
      return dot(in.dy, y);
    };
    EXPECT_TRUE(closeByNorm(dx, centralDifferences(in.x, kStep, loss), kFiniteDifferenceTolerance))
        << "dx, rows=" << c.rows << " dim=" << c.dim;
    EXPECT_TRUE(closeByNorm(dw, centralDifferences(in.w, kStep, loss), kFiniteDifferenceTolerance))
        << "dw, rows=" << c.rows << " dim=" << c.dim;
  }
}

TEST(NormsBackwardTest, LayerNormMatchesFiniteDifferences) {
  for (const NormCase &c : kCases) {
    NormInputs in = inputs(c, 310 + c.dim);
    std::vector<double> dx(in.x.size()), dw(c.dim), db(c.dim);
    layerNormBackward(in.x.data(), in.w.data(), in.dy.data(), c.rows, c.dim, c.eps, dx.data(),
                      dw.data(), db.data());
    auto loss = [&] {
      std::vector<double> y(in.x.size());
      layerNorm(in.x.data(), in.w.data(), in.b.data(), c.rows, c.dim, c.eps, y.data());
      return dot(in.dy, y);
    };
    EXPECT_TRUE(closeByNorm(dx, centralDifferences(in.x, kStep, loss), kFiniteDifferenceTolerance))
        << "dx, rows=" << c.rows << " dim=" << c.dim;
    EXPECT_TRUE(closeByNorm(dw, centralDifferences(in.w, kStep, loss), kFiniteDifferenceTolerance))
        << "dw, rows=" << c.rows << " dim=" << c.dim;
    EXPECT_TRUE(closeByNorm(db, centralDifferences(in.b, kStep, loss), kFiniteDifferenceTolerance))
        << "db, rows=" << c.rows << " dim=" << c.dim;
  }
}

TEST(NormsBackwardTest, FloatMatchesDoubleAndDxMayBeDy) {
  for (const NormCase &c : kCases) {
    const NormInputs in = inputs(c, 320 + c.dim);
    expectFloatMatchesDouble(
        [&](auto tag) {
          using T = decltype(tag);
          const auto x = cast<T>(in.x), w = cast<T>(in.w), dy = cast<T>(in.dy);
          std::vector<T> dx(x.size()), dw(c.dim), db(c.dim), dwRms(c.dim);
          layerNormBackward(x.data(), w.data(), dy.data(), c.rows, c.dim, c.eps, dx.data(),
                            dw.data(), db.data());
          std::vector<T> dxRms(x.size());
          rmsNormBackward(x.data(), w.data(), dy.data(), c.rows, c.dim, c.eps, dxRms.data(),
                          dwRms.data());
          // In place: the result is written over the cotangent.
          auto inPlace = dy, inPlaceDw = dw, inPlaceDb = db;
          layerNormBackward(x.data(), w.data(), inPlace.data(), c.rows, c.dim, c.eps,
                            inPlace.data(), inPlaceDw.data(), inPlaceDb.data());
          EXPECT_TRUE(bitwiseEqual(inPlace, dx)) << "layer_norm dx over dy differs";
          inPlace = dy;
          rmsNormBackward(x.data(), w.data(), inPlace.data(), c.rows, c.dim, c.eps, inPlace.data(),
                          inPlaceDw.data());
          EXPECT_TRUE(bitwiseEqual(inPlace, dxRms)) << "rms_norm dx over dy differs";
          return std::vector<std::vector<T>>{dx, dw, db, dxRms, dwRms};
        },
        "dim=" + std::to_string(c.dim));
  }
}

// The finite-difference check is tight enough to fail: dx scaled by 1 + 1e-6.
TEST(NormsBackwardTest, FiniteDifferencesRejectAWrongGradient) {
  const NormCase c = kCases[0];
  NormInputs in = inputs(c, 330);
  std::vector<double> dx(in.x.size()), dw(c.dim), db(c.dim);
  layerNormBackward(in.x.data(), in.w.data(), in.dy.data(), c.rows, c.dim, c.eps, dx.data(),
                    dw.data(), db.data());
  auto loss = [&] {
    std::vector<double> y(in.x.size());
    layerNorm(in.x.data(), in.w.data(), in.b.data(), c.rows, c.dim, c.eps, y.data());
    return dot(in.dy, y);
  };
  const auto fd = centralDifferences(in.x, kStep, loss);
  auto wrong = dx;
  for (double &g : wrong)
    g *= 1.0 + 1e-6;
  EXPECT_FALSE(closeByNorm(wrong, fd, kFiniteDifferenceTolerance));
}
} // namespace
} // namespace ttt::cpu::test
