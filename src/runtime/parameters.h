#pragma once

#include <string>

#include "repository/model_config.pb.h"

namespace ferry::runtime {

// The integer value of the config parameter `key` (Triton's `parameters` map, string
// values), or `fallback` when it is absent or not an integer. Runtimes read their
// thread settings with it (intra_op_thread_count, nthread, ...).
int IntParameter(const inference::ModelConfig& config, const std::string& key, int fallback);

}  // namespace ferry::runtime
