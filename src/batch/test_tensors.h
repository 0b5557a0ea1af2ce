#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

// Test helpers shared by the batch unit tests.
namespace ferry::batch::test_util {

// A tensor that owns a copy of `values` (bools as one byte each, as V2 BOOL).
template <typename T>
Tensor MakeTensor(const std::string& name, DataType type, Shape shape, std::vector<T> values) {
  Tensor t;
  t.name = name;
  t.datatype = type;
  t.shape = std::move(shape);
  std::string bytes(values.size() * sizeof(T), '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  t.Own(std::move(bytes));
  return t;
}

// A BYTES tensor of `values` (each a 4-byte little-endian length, then the bytes).
inline Tensor MakeBytesTensor(const std::string& name, Shape shape, const std::vector<std::string>& values) {
  Tensor t;
  t.name = name;
  t.datatype = DataType::kBytes;
  t.shape = std::move(shape);
  std::string bytes;
  for (const auto& v : values) {
    const auto n = static_cast<uint32_t>(v.size());
    bytes.append(reinterpret_cast<const char*>(&n), 4);
    bytes += v;
  }
  t.Own(std::move(bytes));
  return t;
}

// The elements of a BYTES tensor's bytes (4-byte little-endian length, then the bytes).
inline std::vector<std::string> Elements(const std::string& bytes) {
  std::vector<std::string> out;
  for (size_t at = 0; at + 4 <= bytes.size();) {
    uint32_t n;
    std::memcpy(&n, bytes.data() + at, 4);
    out.push_back(bytes.substr(at + 4, n));
    at += 4 + n;
  }
  return out;
}

}  // namespace ferry::batch::test_util
