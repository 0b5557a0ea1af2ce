#include "monitoring/drift/drift_settings.h"

#include <charconv>
#include <cmath>

namespace ferry::monitoring::drift {

namespace {

Status Bad(const std::string& key, const std::string& value, const std::string& why) {
  return InvalidArgument("monitoring." + key + ": '" + value + "' " + why);
}

Result<uint64_t> ParseCount(const std::string& key, const std::string& value, uint64_t lo, uint64_t hi) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size()) return Bad(key, value, "is not a whole number");
  if (v < lo || v > hi) {
    return Bad(key, value, "is not in " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return v;
}

Result<double> ParseNumber(const std::string& key, const std::string& value) {
  double v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(v)) {
    return Bad(key, value, "is not a number");
  }
  return v;
}

// A whole number with an optional unit: "1000" -> (1000, 0); "30s", "5m", "1h",
// "250ms" -> (n, nanoseconds per unit).
struct Amount {
  uint64_t n = 0;
  uint64_t unit_ns = 0;  // 0: no unit
};

Result<Amount> ParseAmount(const std::string& key, const std::string& value, uint64_t lo, const char* not_a_number) {
  size_t digits = 0;
  while (digits < value.size() && value[digits] >= '0' && value[digits] <= '9') ++digits;
  const std::string unit = value.substr(digits);
  if (digits == 0) return Bad(key, value, not_a_number);
  Amount a;
  FERRY_ASSIGN_OR_RETURN(a.n, ParseCount(key, value.substr(0, digits), lo, uint64_t{1} << 40));
  if (unit.empty()) return a;
  if (unit == "ms") a.unit_ns = 1'000'000;
  if (unit == "s") a.unit_ns = 1'000'000'000;
  if (unit == "m") a.unit_ns = 60'000'000'000;
  if (unit == "h") a.unit_ns = 3'600'000'000'000;
  if (a.unit_ns == 0) return Bad(key, value, "has an unknown unit (ms, s, m, h)");
  if (a.n > (uint64_t{1} << 62) / a.unit_ns) return Bad(key, value, "is too long");
  return a;
}

// "1000" -> rows; "30s", "5m", "1h", "250ms" -> nanoseconds.
Status ParseWindow(const std::string& key, const std::string& value, DriftSettings* s) {
  FERRY_ASSIGN_OR_RETURN(Amount a, ParseAmount(key, value, 1, "is neither a row count nor a duration (30s, 5m, 1h)"));
  if (a.unit_ns == 0) {
    if (a.n < 10) return Bad(key, value, "is below 10 rows");
    s->window_is_time = false;
    s->window_rows = a.n;
    return Status::Ok();
  }
  s->window_is_time = true;
  s->window_ns = a.n * a.unit_ns;
  return Status::Ok();
}

// "0" (every step) or a duration ("1s", "250ms", "5m").
Result<uint64_t> ParseInterval(const std::string& key, const std::string& value) {
  FERRY_ASSIGN_OR_RETURN(Amount a, ParseAmount(key, value, 0, "is not a duration (1s, 250ms, 5m) or 0"));
  if (a.unit_ns == 0 && a.n != 0) return Bad(key, value, "has no unit (ms, s, m, h; only 0 needs none)");
  return a.n * a.unit_ns;
}

Result<bool> ParseBool(const std::string& key, const std::string& value) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  return Bad(key, value, "is not true or false");
}

}  // namespace

Result<DriftSettings> ParseDriftSettings(const std::map<std::string, std::string, std::less<>>& settings,
                                         const std::filesystem::path& model_dir) {
  DriftSettings s;
  s.profile = model_dir / "profile.json";
  for (const auto& [key, value] : settings) {
    if (key.rfind("drift.", 0) != 0) continue;
    if (key == "drift.enabled") {
      FERRY_ASSIGN_OR_RETURN(s.enabled, ParseBool(key, value));
    } else if (key == "drift.profile") {
      if (value.empty()) return Bad(key, value, "is empty");
      std::filesystem::path p(value);
      s.profile = p.is_absolute() ? p : model_dir / p;
    } else if (key == "drift.window") {
      FERRY_RETURN_IF_ERROR(ParseWindow(key, value, &s));
    } else if (key == "drift.eval_interval") {
      FERRY_ASSIGN_OR_RETURN(s.eval_interval_ns, ParseInterval(key, value));
    } else if (key == "drift.buckets") {
      FERRY_ASSIGN_OR_RETURN(uint64_t v, ParseCount(key, value, 1, 64));
      s.buckets = static_cast<uint32_t>(v);
    } else if (key == "drift.min_rows") {
      FERRY_ASSIGN_OR_RETURN(s.min_rows, ParseCount(key, value, 1, uint64_t{1} << 40));
    } else if (key == "drift.max_features") {
      FERRY_ASSIGN_OR_RETURN(uint64_t v, ParseCount(key, value, 1, 100000));
      s.max_features = static_cast<uint32_t>(v);
    } else if (key == "drift.metrics_top_k") {
      FERRY_ASSIGN_OR_RETURN(uint64_t v, ParseCount(key, value, 0, 10000));
      s.metrics_top_k = static_cast<uint32_t>(v);
    } else if (key == "drift.sketch_k") {
      FERRY_ASSIGN_OR_RETURN(uint64_t v, ParseCount(key, value, 8, 65536));
      s.sketch_k = static_cast<uint32_t>(v);
    } else if (key == "drift.alpha") {
      FERRY_ASSIGN_OR_RETURN(double v, ParseNumber(key, value));
      if (!(v > 0 && v < 1)) return Bad(key, value, "is not in (0, 1)");
      s.test.alpha = v;
    } else if (key == "drift.psi_threshold") {
      FERRY_ASSIGN_OR_RETURN(double v, ParseNumber(key, value));
      if (!(v > 0)) return Bad(key, value, "is not above 0");
      s.test.psi_threshold = v;
    } else if (key == "drift.correction") {
      if (value == "bonferroni") {
        s.test.correction = Correction::kBonferroni;
      } else if (value == "fdr") {
        s.test.correction = Correction::kFdr;
      } else if (value == "none") {
        s.test.correction = Correction::kNone;
      } else {
        return Bad(key, value, "is not bonferroni, fdr or none");
      }
    } else if (key == "drift.test.numeric") {
      if (value == "ks") {
        s.test.numeric_test = DriftTest::kKs;
      } else if (value == "psi") {
        s.test.numeric_test = DriftTest::kPsi;
      } else if (value == "chi2") {
        s.test.numeric_test = DriftTest::kChi2;
      } else {
        return Bad(key, value, "is not ks, chi2 or psi");
      }
    } else if (key == "drift.test.categorical") {
      if (value == "chi2") {
        s.test.categorical_test = DriftTest::kChi2;
      } else if (value == "psi") {
        s.test.categorical_test = DriftTest::kPsi;
      } else {
        return Bad(key, value, "is not chi2 or psi");
      }
    } else {
      return InvalidArgument("monitoring." + key + ": unknown drift setting");
    }
  }
  return s;
}

}  // namespace ferry::monitoring::drift
