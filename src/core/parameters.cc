#include "core/parameters.h"

namespace ferry {

std::optional<bool> GetBool(const Parameters& p, std::string_view key) {
  auto it = p.find(key);
  if (it == p.end()) return std::nullopt;
  if (auto* b = std::get_if<bool>(&it->second)) return *b;
  return std::nullopt;
}

std::optional<int64_t> GetInt(const Parameters& p, std::string_view key) {
  auto it = p.find(key);
  if (it == p.end()) return std::nullopt;
  if (auto* i = std::get_if<int64_t>(&it->second)) return *i;
  return std::nullopt;
}

}  // namespace ferry
