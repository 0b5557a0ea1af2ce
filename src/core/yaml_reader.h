#pragma once

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"

namespace ferry {

using Millis = std::chrono::milliseconds;

// "500ms", "2s", "1.5m", "1h", or a bare number of seconds.
Result<Millis> ParseDuration(const std::string& text);

// Reads fields of a YAML document and turns every problem into
// "file:line:col: path: message", so a user's typo names the field and where it is. The
// line and column come from the node's Mark (0-based in yaml-cpp, shown 1-based).
// Optional fields left out keep the caller's default.
// Thread-safety: immutable; safe to share.
class YamlReader {
 public:
  explicit YamlReader(std::string file) : file_(std::move(file)) {}

  // Parses `text`; a syntax error names the file, line and column.
  Result<YAML::Node> Load(const std::string& text) const;

  Status Error(const YAML::Node& at, const std::string& path, const std::string& message) const;
  Status ExpectMap(const YAML::Node& n, const std::string& path) const;
  // Refuses keys outside `allowed`, so a typo is an error rather than a silent default.
  Status CheckKeys(const YAML::Node& map, const std::string& path, const std::set<std::string>& allowed) const;
  Result<std::string> Scalar(const YAML::Node& n, const std::string& path) const;
  // map[key] into *out when present.
  Status Int(const YAML::Node& map, const std::string& key, const std::string& path, int lo, int* out) const;
  Status Double(const YAML::Node& map, const std::string& key, const std::string& path, double lo_exclusive,
                double* out) const;
  Status Bool(const YAML::Node& map, const std::string& key, const std::string& path, bool* out) const;
  Status Duration(const YAML::Node& map, const std::string& key, const std::string& path, Millis* out) const;
  // A string or a list of strings.
  Result<std::vector<std::string>> Strings(const YAML::Node& n, const std::string& path) const;
  // A mapping of strings to strings (labels, annotations, environments), in file order.
  Result<std::vector<std::pair<std::string, std::string>>> StringMap(const YAML::Node& n,
                                                                     const std::string& path) const;

  const std::string& file() const { return file_; }
  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string Index(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }
  static std::string Format(double v);

 private:
  std::string file_;
};

}  // namespace ferry
