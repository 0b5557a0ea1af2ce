#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "core/data_type.h"
#include "core/shape.h"

namespace ferry {

// A named tensor whose bytes are either owned or borrowed.
//
// Bytes are little-endian, row-major and unpadded; BOOL is one byte per element;
// BYTES is the protocol's sequence of (uint32 little-endian length, bytes).
// A borrowed buffer is kept alive by `keepalive` (e.g. the HTTP request body or an
// ONNX Runtime output value), so a Tensor can be moved between threads freely.
// Thread-safety: a Tensor is a value; distinct threads may read one concurrently.
struct Tensor {
  std::string name;
  DataType datatype = DataType::kInvalid;
  Shape shape;

  const std::byte* data() const { return data_; }
  size_t byte_size() const { return size_; }
  std::string_view bytes() const { return {reinterpret_cast<const char*>(data_), size_}; }

  // Points at `size` bytes that stay valid while `keepalive` lives.
  void Borrow(const void* data, size_t size, std::shared_ptr<const void> keepalive) {
    data_ = static_cast<const std::byte*>(data);
    size_ = size;
    keepalive_ = std::move(keepalive);
  }
  // Takes ownership of `bytes`.
  void Own(std::string bytes) {
    auto owned = std::make_shared<const std::string>(std::move(bytes));
    data_ = reinterpret_cast<const std::byte*>(owned->data());
    size_ = owned->size();
    keepalive_ = std::move(owned);
  }

 private:
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<const void> keepalive_;
};

}  // namespace ferry
