#pragma once

#include <bit>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/tensor.h"

namespace ferry::monitoring {

// Feature values copied out of answered requests on the request threads, for a consumer
// that reads only numbers of a version's tensors (drift): instead of a record per request
// (its tensors kept alive, queued, handed to the monitoring thread one by one), the
// request thread appends a few doubles to a staging block of its own, and the monitoring
// thread takes whole blocks (MonitoringHub::OfferRows).
//
// A block holds, per request in the order answered: its row count R (as a double), then
// R rows of `width` values each. A value is a number, NaN (a missing value: counts as
// missing) or kAbsentValue (the feature has no value in this row: its tensor is absent,
// shorter or unreadable; not counted at all).

// A NaN with a payload of its own, which no arithmetic produces and no reader of a
// tensor returns (ElementAsDouble's NaNs are quiet NaNs without payload).
inline constexpr uint64_t kAbsentValueBits = 0x7ff4'0000'0000'a65eull;
inline bool IsAbsentValue(double x) { return std::bit_cast<uint64_t>(x) == kAbsentValueBits; }
inline double AbsentValue() { return std::bit_cast<double>(kAbsentValueBits); }

struct FeatureRowBlock {
  std::vector<double> values;  // per request: R, then R * width values
  uint64_t requests = 0;
  uint64_t rows = 0;
  // Features of the block's requests whose tensor or column the request did not have
  // (one per feature and request, as RecordFeatures counts them).
  uint64_t unmapped = 0;
  void clear() {
    values.clear();
    requests = rows = unmapped = 0;
  }
};

// Reads one version's feature values out of a request's tensors, on the request threads.
// Made by the consumer when the version is attached (RecordConsumer::RowsFor).
// Thread-safety: Append is const and thread-safe; each thread passes its own Cache.
class FeatureRowExtractor {
 public:
  // What an extractor may remember between the requests one thread hands it (e.g. which
  // tensor each feature reads, for requests whose tensors have the same names).
  struct Cache {
    virtual ~Cache() = default;
  };
  virtual ~FeatureRowExtractor() = default;
  // Values per row.
  virtual size_t width() const = 0;
  virtual std::unique_ptr<Cache> NewCache() const = 0;
  // Appends the request's R and R * width values to `block` (and counts it: requests,
  // rows, unmapped). `cache` is this thread's, from NewCache.
  virtual void Append(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, Cache* cache,
                      FeatureRowBlock* block) const = 0;
};

}  // namespace ferry::monitoring
