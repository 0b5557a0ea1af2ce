#include "server/response_cache.h"

namespace ferry::server {
namespace {

// FNV-1a and a multiply-rotate hash: independent enough that a false hit needs both
// 64-bit values to collide.
struct Hasher {
  uint64_t a = 0xcbf29ce484222325ULL;
  uint64_t b = 0x243f6a8885a308d3ULL;
  void Add(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) {
      a = (a ^ p[i]) * 0x100000001b3ULL;
      b = ((b ^ p[i]) * 0xff51afd7ed558ccdULL);
      b = (b << 31) | (b >> 33);
    }
  }
  void Add(uint64_t v) { Add(&v, sizeof v); }
  void Add(std::string_view s) {
    Add(static_cast<uint64_t>(s.size()));
    Add(s.data(), s.size());
  }
};

size_t Bytes(const std::vector<Tensor>& outputs) {
  size_t n = 0;
  for (const auto& t : outputs) n += t.byte_size() + t.name.size() + 64;
  return n;
}

}  // namespace

ResponseCache::Key ResponseCache::MakeKey(uint64_t version_id, const std::vector<Tensor>& inputs,
                                          const std::vector<std::string>& outputs) {
  Hasher h;
  h.Add(version_id);
  for (const auto& t : inputs) {
    h.Add(t.name);
    h.Add(static_cast<uint64_t>(t.datatype));
    h.Add(static_cast<uint64_t>(t.shape.size()));
    for (int64_t d : t.shape) h.Add(static_cast<uint64_t>(d));
    h.Add(t.bytes());
  }
  for (const auto& o : outputs) h.Add(std::string_view(o));
  return Key{h.a, h.b};
}

std::optional<std::vector<Tensor>> ResponseCache::Lookup(const Key& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->outputs;
}

void ResponseCache::Insert(const Key& key, const std::vector<Tensor>& outputs) {
  size_t bytes = Bytes(outputs);
  if (bytes > capacity_) return;
  // Own copies: an output may borrow a whole batch's buffer, which the cache must not
  // keep alive behind a size that counts only this request's slice.
  std::vector<Tensor> owned;
  for (const Tensor& t : outputs) {
    Tensor c;
    c.name = t.name;
    c.datatype = t.datatype;
    c.shape = t.shape;
    c.Own(std::string(t.bytes()));
    owned.push_back(std::move(c));
  }
  std::lock_guard lock(mu_);
  if (index_.count(key)) return;
  lru_.push_front(Entry{key, std::move(owned), bytes});
  index_[key] = lru_.begin();
  bytes_ += bytes;
  while (bytes_ > capacity_ && !lru_.empty()) {
    bytes_ -= lru_.back().bytes;
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

size_t ResponseCache::size_bytes() const {
  std::lock_guard lock(mu_);
  return bytes_;
}

size_t ResponseCache::entries() const {
  std::lock_guard lock(mu_);
  return lru_.size();
}

}  // namespace ferry::server
