#include "monitoring/alert_rules.h"

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "core/yaml_reader.h"

namespace ferry::monitoring {
namespace {

bool MetricName(const std::string& s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

Status ParseSelector(const YamlReader& r, const YAML::Node& n, const std::string& path, bool top,
                     SeriesSelector* s) {
  if (!top) {
    FERRY_RETURN_IF_ERROR(r.ExpectMap(n, path));
    FERRY_RETURN_IF_ERROR(r.CheckKeys(n, path, {"metric", "match", "function", "window"}));
  }
  YAML::Node m = n["metric"];
  if (!m) return r.Error(n, YamlReader::Join(path, "metric"), "is required");
  FERRY_ASSIGN_OR_RETURN(s->metric, r.Scalar(m, YamlReader::Join(path, "metric")));
  if (!MetricName(s->metric))
    return r.Error(m, YamlReader::Join(path, "metric"), "'" + s->metric + "' is not a metric name");
  if (YAML::Node match = n["match"]) {
    FERRY_ASSIGN_OR_RETURN(s->match, r.StringMap(match, YamlReader::Join(path, "match")));
  }
  if (YAML::Node f = n["function"]) {
    FERRY_ASSIGN_OR_RETURN(std::string fn, r.Scalar(f, YamlReader::Join(path, "function")));
    if (fn == "value") s->function = SeriesSelector::Function::kValue;
    else if (fn == "rate") s->function = SeriesSelector::Function::kRate;
    else if (fn == "increase") s->function = SeriesSelector::Function::kIncrease;
    else return r.Error(f, YamlReader::Join(path, "function"), "must be value, rate or increase, got '" + fn + "'");
  }
  FERRY_RETURN_IF_ERROR(r.Duration(n, "window", path, &s->window));
  if (s->window.count() <= 0) return r.Error(n["window"], YamlReader::Join(path, "window"), "must be positive");
  return Status::Ok();
}

Status ParseCondition(const YamlReader& r, const YAML::Node& n, const std::string& path, AlertRule* rule) {
  FERRY_ASSIGN_OR_RETURN(std::string c, r.Scalar(n, path));
  static const std::pair<const char*, AlertRule::Op> kOps[] = {
      {">=", AlertRule::Op::kGe}, {"<=", AlertRule::Op::kLe}, {"==", AlertRule::Op::kEq},
      {"!=", AlertRule::Op::kNe}, {">", AlertRule::Op::kGt},  {"<", AlertRule::Op::kLt}};
  size_t i = c.find_first_not_of(' ');
  for (const auto& [text, op] : kOps) {
    const size_t len = std::char_traits<char>::length(text);
    if (i != std::string::npos && c.compare(i, len, text) == 0) {
      const std::string number = c.substr(i + len);
      char* end = nullptr;
      const double v = std::strtod(number.c_str(), &end);
      while (end && *end == ' ') ++end;
      if (number.find_first_not_of(' ') == std::string::npos || *end != '\0' || !std::isfinite(v)) break;
      rule->op = op;
      rule->threshold = v;
      return Status::Ok();
    }
  }
  return r.Error(n, path, "'" + c + "' is not a condition (an operator > >= < <= == != and a number, such as \"> 0.05\")");
}

}  // namespace

Result<std::vector<AlertRule>> ParseAlertRules(const std::string& text, const std::string& file) {
  YamlReader r(file);
  FERRY_ASSIGN_OR_RETURN(YAML::Node root, r.Load(text));
  std::vector<AlertRule> rules;
  try {
    if (!root || root.IsNull()) return r.Error(root, "rules", "the rules file is empty");
    FERRY_RETURN_IF_ERROR(r.ExpectMap(root, "(top level)"));
    FERRY_RETURN_IF_ERROR(r.CheckKeys(root, "", {"rules"}));
    YAML::Node list = root["rules"];
    if (!list) return r.Error(root, "rules", "is required");
    if (!list.IsSequence()) return r.Error(list, "rules", "must be a list");
    std::set<std::string> names;
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node n = list[i];
      const std::string path = YamlReader::Index("rules", i);
      FERRY_RETURN_IF_ERROR(r.ExpectMap(n, path));
      FERRY_RETURN_IF_ERROR(r.CheckKeys(n, path,
                                        {"alert", "metric", "match", "function", "window", "by", "divide_by",
                                         "condition", "for", "labels", "annotations"}));
      AlertRule rule;
      rule.line = n.Mark().line + 1;
      if (!n["alert"]) return r.Error(n, path + ".alert", "is required");
      FERRY_ASSIGN_OR_RETURN(rule.name, r.Scalar(n["alert"], path + ".alert"));
      if (!MetricName(rule.name) || rule.name.find(':') != std::string::npos)
        return r.Error(n["alert"], path + ".alert", "'" + rule.name + "' must be letters, digits and _");
      if (!names.insert(rule.name).second)
        return r.Error(n["alert"], path + ".alert", "alert '" + rule.name + "' is defined twice");
      FERRY_RETURN_IF_ERROR(ParseSelector(r, n, path, /*top=*/true, &rule.expr));
      if (YAML::Node d = n["divide_by"]) {
        SeriesSelector den;
        FERRY_RETURN_IF_ERROR(ParseSelector(r, d, path + ".divide_by", /*top=*/false, &den));
        rule.divide_by = std::move(den);
      }
      if (YAML::Node by = n["by"]) {
        FERRY_ASSIGN_OR_RETURN(rule.by, r.Strings(by, path + ".by"));
      }
      if (!n["condition"]) return r.Error(n, path + ".condition", "is required");
      FERRY_RETURN_IF_ERROR(ParseCondition(r, n["condition"], path + ".condition", &rule));
      FERRY_RETURN_IF_ERROR(r.Duration(n, "for", path, &rule.for_));
      if (YAML::Node l = n["labels"]) {
        FERRY_ASSIGN_OR_RETURN(rule.labels, r.StringMap(l, path + ".labels"));
        for (const auto& [k, v] : rule.labels)
          if (k == "alertname") return r.Error(l, path + ".labels.alertname", "is set from the alert field");
      }
      if (YAML::Node a = n["annotations"]) {
        FERRY_ASSIGN_OR_RETURN(rule.annotations, r.StringMap(a, path + ".annotations"));
      }
      rules.push_back(std::move(rule));
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return rules;
}

Result<std::vector<AlertRule>> LoadAlertRulesFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("cannot read the alert rules file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseAlertRules(ss.str(), path);
}

}  // namespace ferry::monitoring
