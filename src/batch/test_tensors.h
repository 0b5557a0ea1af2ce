#pragma once

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

}  // namespace ferry::batch::test_util
