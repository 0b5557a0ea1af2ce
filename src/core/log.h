#pragma once

#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Process-wide minimum level; default kInfo. Safe to call from any thread.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool ParseLogLevel(std::string_view text, LogLevel* out);

// How lines are written. kText (default), logfmt:
//   ts=2026-11-25T20:57:16.123Z level=info msg="model loaded" model=add_sub version=1
// kJson, one object per line, every value a string:
//   {"ts":"2026-11-25T20:57:16.123Z","level":"info","msg":"model loaded","model":"add_sub","version":"1"}
// Process-wide; set it once at start-up, before other threads log.
enum class LogFormat { kText = 0, kJson = 1 };
void SetLogFormat(LogFormat format);
bool ParseLogFormat(std::string_view text, LogFormat* out);

// The key/value fields of a log line, in order.
class LogFields {
 public:
  template <typename T>
  LogFields& operator()(std::string_view key, const T& value) {
    std::ostringstream os;
    os << value;
    fields_.emplace_back(std::string(key), os.str());
    return *this;
  }
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Writes one line to stderr in the process's format.
// Thread-safe: each line is written with a single write().
void LogLine(LogLevel level, std::string_view msg, const LogFields& fields);
// The line LogLine writes, without the newline (for tests).
std::string FormatLogLine(LogFormat format, std::string_view ts, LogLevel level, std::string_view msg,
                          const LogFields& fields);

}  // namespace ferry

#define FERRY_LOG(level, msg, fields)                                              \
  do {                                                                             \
    if (::ferry::LogLevel::level >= ::ferry::GetLogLevel())                        \
      ::ferry::LogLine(::ferry::LogLevel::level, msg, (::ferry::LogFields() fields)); \
  } while (0)
