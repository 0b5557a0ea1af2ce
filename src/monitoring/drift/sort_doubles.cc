#include "monitoring/drift/sort_doubles.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace ferry::monitoring::drift {
namespace {

// Below this a comparison sort wins (the radix sort's fixed cost is its histograms).
constexpr size_t kRadixMin = 128;

// The order-preserving key: flip every bit of a negative value, only the sign of a
// positive one, so unsigned order is numeric order.
uint64_t Key(double v) {
  uint64_t u;
  std::memcpy(&u, &v, sizeof u);
  return u ^ ((u >> 63) != 0 ? ~uint64_t{0} : uint64_t{1} << 63);
}

}  // namespace

void SortDoubles(std::vector<double>* values, std::vector<double>* scratch) {
  std::vector<double>& v = *values;
  const size_t n = v.size();
  if (n < kRadixMin) {
    std::sort(v.begin(), v.end());
    return;
  }
  // Every pass's histogram in one read of the input.
  std::array<std::array<uint32_t, 256>, 8> counts{};
  for (double x : v) {
    const uint64_t k = Key(x);
    for (int b = 0; b < 8; ++b) ++counts[b][(k >> (8 * b)) & 0xFF];
  }
  scratch->resize(n);
  double* from = v.data();
  double* to = scratch->data();
  for (int b = 0; b < 8; ++b) {
    auto& c = counts[b];
    if (c[(Key(from[0]) >> (8 * b)) & 0xFF] == n) continue;  // one byte value: nothing moves
    uint32_t sum = 0;
    for (uint32_t& x : c) {
      const uint32_t here = x;
      x = sum;
      sum += here;
    }
    for (size_t i = 0; i < n; ++i) to[c[(Key(from[i]) >> (8 * b)) & 0xFF]++] = from[i];
    std::swap(from, to);
  }
  if (from != v.data()) std::memcpy(v.data(), from, n * sizeof(double));
}

}  // namespace ferry::monitoring::drift
