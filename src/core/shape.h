#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ferry {

// A tensor shape; -1 marks a variable dimension in a model's declared shape.
using Shape = std::vector<int64_t>;

// Number of elements; nullopt if any dimension is negative or the product overflows.
std::optional<uint64_t> ElementCount(const Shape& shape);
// "[2,3]"
std::string ShapeToString(const Shape& shape);
// True when `actual` has the rank of `declared` and equals it wherever `declared` is not -1.
bool ShapeMatches(const Shape& declared, const Shape& actual);

}  // namespace ferry
