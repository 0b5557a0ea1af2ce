#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ferry::monitoring {

// FNV-1a over the id, then splitmix64's finaliser: ids that differ in one character
// (req-1, req-2, ...) land far apart.
// It runs on the request path for every monitored request (a 36-character generated id):
// eight bytes a step, so the loop's own test and increment come once per eight bytes.
inline uint64_t RequestIdHash(std::string_view id) {
  constexpr uint64_t kPrime = 0x100000001b3ull;
  uint64_t h = 0xcbf29ce484222325ull;
  const auto* p = reinterpret_cast<const unsigned char*>(id.data());
  size_t i = 0;
  for (; i + 8 <= id.size(); i += 8) {
    h = (h ^ p[i]) * kPrime;
    h = (h ^ p[i + 1]) * kPrime;
    h = (h ^ p[i + 2]) * kPrime;
    h = (h ^ p[i + 3]) * kPrime;
    h = (h ^ p[i + 4]) * kPrime;
    h = (h ^ p[i + 5]) * kPrime;
    h = (h ^ p[i + 6]) * kPrime;
    h = (h ^ p[i + 7]) * kPrime;
  }
  for (; i < id.size(); ++i) h = (h ^ p[i]) * kPrime;
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBull;
  return h ^ (h >> 31);
}

// Whether the request with this id is in a sample of `rate` (0..1): a hash of the id
// against the rate, so the decision is the same wherever and whenever it is taken (the
// request path, the payload log, a retried request, a replica, the feedback join). A
// sample at a lower rate lies inside the sample at any higher rate.
inline bool Sampled(std::string_view request_id, double rate) {
  if (rate >= 1) return true;
  if (!(rate > 0)) return false;
  // The top 53 bits as a uniform number in [0, 1).
  return static_cast<double>(RequestIdHash(request_id) >> 11) * 0x1.0p-53 < rate;
}

}  // namespace ferry::monitoring
