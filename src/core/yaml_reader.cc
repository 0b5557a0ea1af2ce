#include "core/yaml_reader.h"

#include <charconv>
#include <cmath>
#include <sstream>

namespace ferry {

Result<Millis> ParseDuration(const std::string& text) {
  const std::string& s = text;
  size_t i = 0;
  while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) ++i;
  const auto bad = [&] { return InvalidArgument("'" + text + "' is not a duration (such as 500ms, 2s, 1m)"); };
  if (i == 0) return bad();
  char* end = nullptr;
  const std::string number = s.substr(0, i);
  double v = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size()) return bad();
  const std::string unit = s.substr(i);
  double ms;
  if (unit == "ms") ms = v;
  else if (unit == "s" || unit.empty()) ms = v * 1000;
  else if (unit == "m") ms = v * 60000;
  else if (unit == "h") ms = v * 3600000;
  else return InvalidArgument("'" + text + "': unknown unit '" + unit + "' (use ms, s, m or h)");
  if (ms > 1e12) return InvalidArgument("'" + text + "' is too long");
  return Millis(static_cast<int64_t>(std::llround(ms)));
}

Result<YAML::Node> YamlReader::Load(const std::string& text) const {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file_ + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                           ": invalid YAML: " + e.msg);
  }
}

Status YamlReader::Error(const YAML::Node& at, const std::string& path, const std::string& message) const {
  std::ostringstream os;
  os << file_;
  if (at.IsDefined() && at.Mark().line >= 0) os << ":" << at.Mark().line + 1 << ":" << at.Mark().column + 1;
  os << ": " << path << ": " << message;
  return InvalidArgument(os.str());
}

Status YamlReader::ExpectMap(const YAML::Node& n, const std::string& path) const {
  if (!n.IsMap()) return Error(n, path, "must be a mapping");
  return Status::Ok();
}

Status YamlReader::CheckKeys(const YAML::Node& map, const std::string& path,
                             const std::set<std::string>& allowed) const {
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (!it->first.IsScalar()) return Error(it->first, path, "keys must be strings");
    const std::string key = it->first.Scalar();
    if (!allowed.count(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return Error(it->first, Join(path, key), "unknown field (expected one of: " + list + ")");
    }
  }
  return Status::Ok();
}

Result<std::string> YamlReader::Scalar(const YAML::Node& n, const std::string& path) const {
  if (!n.IsScalar()) return Error(n, path, "must be a scalar");
  return n.Scalar();
}

Status YamlReader::Int(const YAML::Node& map, const std::string& key, const std::string& path, int lo,
                       int* out) const {
  YAML::Node n = map[key];
  if (!n) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(std::string s, Scalar(n, Join(path, key)));
  long v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 1000000)
    return Error(n, Join(path, key), "must be an integer, got '" + s + "'");
  if (v < lo) return Error(n, Join(path, key), "must be at least " + std::to_string(lo) + ", got " + s);
  *out = static_cast<int>(v);
  return Status::Ok();
}

Status YamlReader::Double(const YAML::Node& map, const std::string& key, const std::string& path,
                          double lo_exclusive, double* out) const {
  YAML::Node n = map[key];
  if (!n) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(std::string s, Scalar(n, Join(path, key)));
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(v))
    return Error(n, Join(path, key), "must be a number, got '" + s + "'");
  if (v <= lo_exclusive)
    return Error(n, Join(path, key), "must be greater than " + Format(lo_exclusive) + ", got " + s);
  *out = v;
  return Status::Ok();
}

Status YamlReader::Bool(const YAML::Node& map, const std::string& key, const std::string& path, bool* out) const {
  YAML::Node n = map[key];
  if (!n) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(std::string s, Scalar(n, Join(path, key)));
  if (s == "true") *out = true;
  else if (s == "false") *out = false;
  else return Error(n, Join(path, key), "must be true or false, got '" + s + "'");
  return Status::Ok();
}

Status YamlReader::Duration(const YAML::Node& map, const std::string& key, const std::string& path,
                            Millis* out) const {
  YAML::Node n = map[key];
  if (!n) return Status::Ok();
  FERRY_ASSIGN_OR_RETURN(std::string s, Scalar(n, Join(path, key)));
  auto d = ParseDuration(s);
  if (!d.ok()) return Error(n, Join(path, key), d.status().message());
  *out = *d;
  return Status::Ok();
}

Result<std::vector<std::string>> YamlReader::Strings(const YAML::Node& n, const std::string& path) const {
  std::vector<std::string> out;
  if (n.IsScalar()) {
    out.push_back(n.Scalar());
    return out;
  }
  if (!n.IsSequence()) return Error(n, path, "must be a string or a list of strings");
  for (size_t i = 0; i < n.size(); ++i) {
    FERRY_ASSIGN_OR_RETURN(std::string s, Scalar(n[i], Index(path, i)));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<std::pair<std::string, std::string>>> YamlReader::StringMap(const YAML::Node& n,
                                                                               const std::string& path) const {
  if (!n.IsMap()) return Error(n, path, "must be a mapping of names to strings");
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = n.begin(); it != n.end(); ++it) {
    if (!it->first.IsScalar()) return Error(it->first, path, "keys must be strings");
    FERRY_ASSIGN_OR_RETURN(std::string v, Scalar(it->second, Join(path, it->first.Scalar())));
    out.emplace_back(it->first.Scalar(), std::move(v));
  }
  return out;
}

std::string YamlReader::Format(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

}  // namespace ferry
