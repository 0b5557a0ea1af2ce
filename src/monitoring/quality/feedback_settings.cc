#include "monitoring/quality/feedback_settings.h"

#include <charconv>
#include <cmath>

namespace ferry::monitoring::quality {
namespace {

Status Bad(const std::string& key, const std::string& value, const std::string& why) {
  return InvalidArgument("monitoring." + key + ": '" + value + "' " + why);
}

Result<double> Number(const std::string& key, const std::string& value) {
  double v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || !std::isfinite(v))
    return Bad(key, value, "is not a number");
  return v;
}

Result<uint64_t> Whole(const std::string& key, const std::string& value, uint64_t lo, uint64_t hi) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size()) return Bad(key, value, "is not a whole number");
  if (v < lo || v > hi) return Bad(key, value, "is not in " + std::to_string(lo) + ".." + std::to_string(hi));
  return v;
}

Result<bool> Flag(const std::string& key, const std::string& value) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  return Bad(key, value, "is not true or false");
}

// "1000" rows, or "90s", "10m", "1h", "500ms".
Status Window(const std::string& key, const std::string& value, FeedbackSettings* s) {
  size_t digits = 0;
  while (digits < value.size() && value[digits] >= '0' && value[digits] <= '9') ++digits;
  if (digits == 0) return Bad(key, value, "is neither a row count nor a duration (90s, 10m, 1h)");
  FERRY_ASSIGN_OR_RETURN(uint64_t n, Whole(key, value.substr(0, digits), 1, FeedbackSettings::kMaxWindowRows));
  const std::string unit = value.substr(digits);
  if (unit.empty()) {
    s->window_is_time = false;
    s->window_rows = n;
    return Status::Ok();
  }
  const uint64_t scale = unit == "ms" ? 1'000'000
                         : unit == "s" ? 1'000'000'000
                         : unit == "m" ? 60'000'000'000
                         : unit == "h" ? 3'600'000'000'000
                                       : 0;
  if (scale == 0) return Bad(key, value, "has an unknown unit (ms, s, m, h)");
  s->window_is_time = true;
  s->window_ns = n * scale;
  return Status::Ok();
}

}  // namespace

Result<FeedbackSettings> ParseFeedbackSettings(const std::map<std::string, std::string, std::less<>>& settings,
                                               const std::filesystem::path& model_dir) {
  FeedbackSettings s;
  for (const auto& [key, value] : settings) {
    if (key.rfind("feedback.", 0) != 0) continue;
    if (key == "feedback.enabled") {
      FERRY_ASSIGN_OR_RETURN(s.enabled, Flag(key, value));
    } else if (key == "feedback.output") {
      s.output = value;
    } else if (key == "feedback.task") {
      if (value == "auto") {
        s.task = Task::kAuto;
      } else if (value == "classification") {
        s.task = Task::kClassification;
      } else if (value == "regression") {
        s.task = Task::kRegression;
      } else {
        return Bad(key, value, "is not auto, classification or regression");
      }
    } else if (key == "feedback.max_pending") {
      FERRY_ASSIGN_OR_RETURN(s.max_pending, Whole(key, value, 1, 100'000'000));
    } else if (key == "feedback.ttl_s") {
      FERRY_ASSIGN_OR_RETURN(double v, Number(key, value));
      if (!(v > 0 && v <= 30 * 86400.0)) return Bad(key, value, "is not in (0, 2592000] seconds");
      s.ttl_ns = static_cast<uint64_t>(v * 1e9);
    } else if (key == "feedback.window") {
      FERRY_RETURN_IF_ERROR(Window(key, value, &s));
    } else if (key == "feedback.threshold") {
      FERRY_ASSIGN_OR_RETURN(double v, Number(key, value));
      if (!(v > 0 && v < 1)) return Bad(key, value, "is not in (0, 1)");
      s.threshold = v;
    } else if (key == "feedback.classes") {
      s.classes.clear();
      size_t start = 0;
      while (start <= value.size()) {
        size_t comma = value.find(',', start);
        if (comma == std::string::npos) comma = value.size();
        std::string name = value.substr(start, comma - start);
        if (name.empty()) return Bad(key, value, "has an empty class name");
        s.classes.push_back(std::move(name));
        start = comma + 1;
      }
    } else if (key == "feedback.calibration") {
      if (value.empty()) return Bad(key, value, "is empty");
      const std::filesystem::path path(value);
      s.calibration = path.is_absolute() ? path : model_dir / path;
    } else if (key == "feedback.estimate") {
      FERRY_ASSIGN_OR_RETURN(s.estimate, Flag(key, value));
    } else {
      return InvalidArgument("monitoring." + key + ": unknown feedback setting");
    }
  }
  return s;
}

}  // namespace ferry::monitoring::quality
