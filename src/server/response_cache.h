#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace ferry::server {

// A server-wide cache of inference results for models that enable it
// (`response_cache { enable: true }`), bounded in bytes and evicting the least recently
// used entries. Keys hash the loaded model version (a fresh id per load, so a reload
// never serves stale results), the inputs (names, datatypes, shapes, bytes) and the
// requested outputs, with two independent 64-bit hashes.
// Thread-safety: all methods are thread-safe (one mutex; lookups copy no tensor data).
class ResponseCache {
 public:
  struct Key {
    uint64_t a = 0, b = 0;
    bool operator==(const Key& o) const { return a == o.a && b == o.b; }
  };

  explicit ResponseCache(size_t capacity_bytes) : capacity_(capacity_bytes) {}

  static Key MakeKey(uint64_t version_id, const std::vector<Tensor>& inputs, const std::vector<std::string>& outputs);

  // The cached outputs (sharing the cached buffers), or nullopt.
  std::optional<std::vector<Tensor>> Lookup(const Key& key);
  // Stores `outputs` unless they alone exceed the capacity.
  void Insert(const Key& key, const std::vector<Tensor>& outputs);

  size_t size_bytes() const;
  size_t entries() const;

 private:
  struct KeyHash {
    size_t operator()(const Key& k) const { return static_cast<size_t>(k.a ^ (k.b * 0x9e3779b97f4a7c15ULL)); }
  };
  struct Entry {
    Key key;
    std::vector<Tensor> outputs;
    size_t bytes;
  };
  const size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // front: most recent; guarded by mu_
  std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index_;  // guarded by mu_
  size_t bytes_ = 0;  // guarded by mu_
};

}  // namespace ferry::server
