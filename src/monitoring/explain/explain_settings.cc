#include "monitoring/explain/explain_settings.h"

#include <charconv>

namespace ferry::monitoring::explain {
namespace {

constexpr std::string_view kPrefix = "explain.";

Status BadSetting(std::string_view key, const std::string& value, const std::string& why) {
  return InvalidArgument("monitoring." + std::string(key) + ": '" + value + "' " + why);
}

Result<int64_t> WholeNumber(std::string_view key, const std::string& value, int64_t lo, int64_t hi) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size()) return BadSetting(key, value, "is not a whole number");
  if (v < lo || v > hi) return BadSetting(key, value, "is not in " + std::to_string(lo) + ".." + std::to_string(hi));
  return v;
}

}  // namespace

Result<ExplainSettings> ParseExplainSettings(const std::map<std::string, std::string, std::less<>>& settings,
                                             const std::filesystem::path& model_dir) {
  ExplainSettings s;
  s.profile = model_dir / "profile.json";
  for (const auto& [key, value] : settings) {
    if (key.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    const std::string_view name = std::string_view(key).substr(kPrefix.size());
    if (name == "enabled") {
      if (value != "true" && value != "false") return BadSetting(key, value, "is not true or false");
      s.enabled = value == "true";
    } else if (name == "method") {
      if (value == "auto") s.method = MethodChoice::kAuto;
      else if (value == "tree_shap") s.method = MethodChoice::kTreeShap;
      else if (value == "kernel_shap") s.method = MethodChoice::kKernelShap;
      else if (value == "permutation") s.method = MethodChoice::kPermutation;
      else return BadSetting(key, value, "is not auto, tree_shap, kernel_shap or permutation");
    } else if (name == "max_rows") {
      FERRY_ASSIGN_OR_RETURN(s.max_rows, WholeNumber(key, value, 1, 10000));
    } else if (name == "max_evaluations") {
      FERRY_ASSIGN_OR_RETURN(s.max_evaluations, WholeNumber(key, value, 1, 10'000'000));
    } else if (name == "background_rows") {
      FERRY_ASSIGN_OR_RETURN(s.background_rows, WholeNumber(key, value, 1, 10000));
    } else if (name == "profile") {
      if (value.empty()) return BadSetting(key, value, "is empty");
      std::filesystem::path p(value);
      s.profile = p.is_absolute() ? p : model_dir / p;
    } else if (name == "timeout_ms") {
      FERRY_ASSIGN_OR_RETURN(int64_t t, WholeNumber(key, value, 1, 3'600'000));
      s.timeout_ms = static_cast<uint64_t>(t);
    } else if (name == "seed") {
      FERRY_ASSIGN_OR_RETURN(int64_t seed, WholeNumber(key, value, 0, INT64_MAX));
      s.seed = static_cast<uint64_t>(seed);
    } else if (name == "output") {
      s.output = value;
    } else {
      return InvalidArgument("monitoring." + key +
                             ": unknown setting (enabled, method, max_rows, max_evaluations, background_rows, profile, "
                             "timeout_ms, seed, output)");
    }
  }
  return s;
}

}  // namespace ferry::monitoring::explain
