#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace ferry::monitoring::quality {

// One scalar of a true value: a number (booleans read as 0 and 1) or a text label.
struct TargetScalar {
  bool is_text = false;
  double number = 0;
  std::string text;
};

// One element of a feedback body: a request id and its true value, flattened (nested
// arrays read row by row).
struct FeedbackItem {
  std::string id;
  std::vector<TargetScalar> target;
};

// Parses the body of POST /v2/models/{m}[/versions/{v}]/feedback:
//   {"feedback": [{"id": "req-1", "target": 1}, {"id": "req-2", "target": [0.5, 2.0]}]}
// INVALID_ARGUMENT naming the field ("feedback[2].target: expected a number, a string
// or an array of them, got an object") when the body is not of that form. At most
// `max_items` items.
Result<std::vector<FeedbackItem>> ParseFeedbackBody(std::string_view body, size_t max_items);

}  // namespace ferry::monitoring::quality
