#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "core/result.h"

namespace ferry::monitoring::explain {

// Which attributions a model's explanations use.
enum class MethodChoice {
  kAuto,         // the runtime's own (tree_shap) when it has one, else kernel_shap when all
                 // coalitions fit max_evaluations, else permutation
  kTreeShap,     // the runtime's own only; a runtime without one is refused
  kKernelShap,   // exact over all coalitions; refused when they do not fit
  kPermutation,  // sampled orders, as many as fit
};

// A model version's explanation settings: its monitoring settings whose keys start
// with "explain." (config.pbtxt parameters monitoring.explain.*, model.yaml's
// monitoring: explain: block, model-settings.json parameters.extra). Defaults in the
// comments; the table is in docs/explain.md.
struct ExplainSettings {
  bool enabled = false;                      // explain.enabled
  MethodChoice method = MethodChoice::kAuto;  // explain.method: auto | tree_shap | kernel_shap | permutation
  int64_t max_rows = 16;                     // explain.max_rows: rows one request may explain, 1..10000
  // explain.max_evaluations: model rows a model-agnostic method may run per explained
  // row (coalitions x background rows), 1..10000000.
  int64_t max_evaluations = 20000;
  int64_t background_rows = 32;  // explain.background_rows: drawn from the profile, 1..10000
  std::filesystem::path profile;  // explain.profile: default <model dir>/profile.json
  uint64_t timeout_ms = 10000;   // explain.timeout_ms: deadline of one explanation, 1..3600000
  uint64_t seed = 0;             // explain.seed: background draw and permutation orders
  std::string output;            // explain.output: the output explained; default the model's first
};

// INVALID_ARGUMENT naming the setting ("monitoring.explain.max_rows: '0' is not in
// 1..10000") for a bad value or an unknown explain.* key; other keys are ignored.
Result<ExplainSettings> ParseExplainSettings(const std::map<std::string, std::string, std::less<>>& settings,
                                             const std::filesystem::path& model_dir);

}  // namespace ferry::monitoring::explain
