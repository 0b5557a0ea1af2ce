#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace ferry {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Process-wide minimum level; default kInfo. Safe to call from any thread.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool ParseLogLevel(std::string_view text, LogLevel* out);

// Writes one structured line to stderr:
//   ts=2026-11-25T20:57:16.123Z level=info msg="model loaded" model=add_sub version=1
// Thread-safe: each line is written with a single write().
void LogLine(LogLevel level, std::string_view msg, std::string_view fields);

// Builds the key=value field list of a log line; values with spaces are quoted.
class LogFields {
 public:
  template <typename T>
  LogFields& operator()(std::string_view key, const T& value) {
    std::ostringstream os;
    os << value;
    Add(key, os.str());
    return *this;
  }
  const std::string& str() const { return s_; }

 private:
  void Add(std::string_view key, const std::string& value);
  std::string s_;
};

}  // namespace ferry

#define FERRY_LOG(level, msg, fields)                                              \
  do {                                                                             \
    if (::ferry::LogLevel::level >= ::ferry::GetLogLevel())                        \
      ::ferry::LogLine(::ferry::LogLevel::level, msg, (::ferry::LogFields() fields).str()); \
  } while (0)
