#include "runtime/parameters.h"

namespace ferry::runtime {

int IntParameter(const inference::ModelConfig& config, const std::string& key, int fallback) {
  auto it = config.parameters().find(key);
  if (it == config.parameters().end()) return fallback;
  try {
    return std::stoi(it->second.string_value());
  } catch (...) {
    return fallback;
  }
}

}  // namespace ferry::runtime
