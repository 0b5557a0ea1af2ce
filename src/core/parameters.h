#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>

namespace ferry {

// A request, tensor or response parameter as the protocol allows: bool, integer,
// floating point or string.
using ParameterValue = std::variant<bool, int64_t, double, std::string>;

// Ordered by key so encodings are deterministic.
using Parameters = std::map<std::string, ParameterValue, std::less<>>;

// Typed lookups: nullopt when absent or of another type.
std::optional<bool> GetBool(const Parameters& p, std::string_view key);
std::optional<int64_t> GetInt(const Parameters& p, std::string_view key);

}  // namespace ferry
