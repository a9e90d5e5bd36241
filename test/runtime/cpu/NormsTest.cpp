// rms_norm and layer_norm against long-double references, in place too.
#include "runtime/backend/cpu/Kernels.h"
#include "test/runtime/cpu/KernelTestUtil.h"

namespace ttt::cpu::test {
namespace {
template <typename T> class NormsTest : public ::testing::Test {};
TYPED_TEST_SUITE(NormsTest, FloatTypes);

template <typename T>
std::vector<Real> rmsReference(const std::vector<T> &x, const std::vector<T> &w, int64_t rows,
                               int64_t dim, double eps) {
  std::vector<Real> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    Real ms = 0;
    for (int64_t i = 0; i < dim; ++i)
      ms += Real(x[r * dim + i]) * Real(x[r * dim + i]);
    ms /= dim;
    for (int64_t i = 0; i < dim; ++i)
      y[r * dim + i] = Real(w[i]) * Real(x[r * dim + i]) / std::sqrt(ms + Real(eps));
  }
  return y;
}

template <typename T>
std::vector<Real> layerReference(const std::vector<T> &x, const std::vector<T> &w,
                                 const std::vector<T> &b, int64_t rows, int64_t dim, double eps) {
  std::vector<Real> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    Real mean = 0, var = 0;
    for (int64_t i = 0; i < dim; ++i)
      mean += x[r * dim + i];
    mean /= dim;
    for (int64_t i = 0; i < dim; ++i)
      var += (Real(x[r * dim + i]) - mean) * (Real(x[r * dim + i]) - mean);
    var /= dim;
    for (int64_t i = 0; i < dim; ++i)
      y[r * dim + i] =
          Real(w[i]) * (Real(x[r * dim + i]) - mean) / std::sqrt(var + Real(eps)) + Real(b[i]);
  }
  return y;
}

TYPED_TEST(NormsTest, RmsNormAgainstReference) {
  using T = TypeParam;
  for (auto [rows, dim, eps] :
       {std::tuple{6, 37, 1e-6}, std::tuple{1, 1, 1e-5}, std::tuple{4, 256, 1e-6}}) {
    const auto x = randomVector<T>(rows * dim, 50 + dim, -2.0, 3.0);
    const auto w = randomVector<T>(dim, 51 + dim, 0.5, 1.5);
    std::vector<T> y(x.size());
    rmsNorm(x.data(), w.data(), rows, dim, eps, y.data());
    EXPECT_TRUE(closeByNorm(y, rmsReference(x, w, rows, dim, eps), tolerance<T>()))
        << "rows=" << rows << " dim=" << dim;
    auto inPlace = x;
    rmsNorm(inPlace.data(), w.data(), rows, dim, eps, inPlace.data());
    EXPECT_TRUE(bitwiseEqual(inPlace, y)) << "in place differs";
  }
}

TYPED_TEST(NormsTest, LayerNormAgainstReferenceWithLargeMean) {
  using T = TypeParam;
  for (auto [rows, dim, eps] :
       {std::tuple{6, 37, 1e-6}, std::tuple{3, 2, 1e-5}, std::tuple{4, 256, 1e-6}}) {
    // A mean far from zero checks the centred (two-pass) variance.
    const auto x = randomVector<T>(rows * dim, 60 + dim, 99.0, 101.0);
    const auto w = randomVector<T>(dim, 61 + dim, -1.0, 1.0);
    const auto b = randomVector<T>(dim, 62 + dim, -1.0, 1.0);
    std::vector<T> y(x.size());
    layerNorm(x.data(), w.data(), b.data(), rows, dim, eps, y.data());
    EXPECT_TRUE(closeByNorm(y, layerReference(x, w, b, rows, dim, eps), tolerance<T>()))
        << "rows=" << rows << " dim=" << dim;
    auto inPlace = x;
    layerNorm(inPlace.data(), w.data(), b.data(), rows, dim, eps, inPlace.data());
    EXPECT_TRUE(bitwiseEqual(inPlace, y)) << "in place differs";
  }
}

TYPED_TEST(NormsTest, ConstantRowGivesBiasOnly) {
  using T = TypeParam;
  const int64_t dim = 8;
  const std::vector<T> x(dim, T(4)), w(dim, T(2));
  const auto b = randomVector<T>(dim, 63);
  std::vector<T> y(dim);
  layerNorm(x.data(), w.data(), b.data(), 1, dim, 1e-6, y.data());
  for (int64_t i = 0; i < dim; ++i)
    EXPECT_EQ(y[i], b[i]);
}
} // namespace
} // namespace ttt::cpu::test
