#include "monitoring/quality/feedback_body.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <cmath>

namespace ferry::monitoring::quality {
namespace {

const char* TypeName(const rapidjson::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "a boolean";
  if (v.IsObject()) return "an object";
  if (v.IsArray()) return "an array";
  if (v.IsString()) return "a string";
  return "a number";
}

Status Flatten(const rapidjson::Value& v, const std::string& field, int depth, std::vector<TargetScalar>* out) {
  if (v.IsArray()) {
    if (depth > 8) return InvalidArgument(field + ": arrays nested deeper than 8");
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i)
      FERRY_RETURN_IF_ERROR(Flatten(v[i], field + "[" + std::to_string(i) + "]", depth + 1, out));
    return Status::Ok();
  }
  TargetScalar s;
  if (v.IsNumber()) {
    s.number = v.GetDouble();
    if (!std::isfinite(s.number)) return InvalidArgument(field + ": not a finite number");
  } else if (v.IsBool()) {
    s.number = v.GetBool() ? 1 : 0;
  } else if (v.IsString()) {
    s.is_text = true;
    s.text.assign(v.GetString(), v.GetStringLength());
  } else {
    return InvalidArgument(field + ": expected a number, a string, a boolean or an array of them, got " +
                           TypeName(v));
  }
  out->push_back(std::move(s));
  return Status::Ok();
}

}  // namespace

Result<std::vector<FeedbackItem>> ParseFeedbackBody(std::string_view body, size_t max_items) {
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError()) {
    return InvalidArgument(std::string("body: not JSON (") + rapidjson::GetParseError_En(doc.GetParseError()) +
                           " at offset " + std::to_string(doc.GetErrorOffset()) + ")");
  }
  if (!doc.IsObject()) return InvalidArgument(std::string("body: expected an object, got ") + TypeName(doc));
  auto list = doc.FindMember("feedback");
  if (list == doc.MemberEnd()) return InvalidArgument("feedback: missing (expected an array of {\"id\", \"target\"})");
  if (!list->value.IsArray())
    return InvalidArgument(std::string("feedback: expected an array, got ") + TypeName(list->value));
  for (auto m = doc.MemberBegin(); m != doc.MemberEnd(); ++m) {
    std::string name(m->name.GetString(), m->name.GetStringLength());
    if (name != "feedback") return InvalidArgument(name + ": unknown field (expected only 'feedback')");
  }
  const auto& items = list->value;
  if (items.Empty()) return InvalidArgument("feedback: empty");
  if (items.Size() > max_items)
    return InvalidArgument("feedback: " + std::to_string(items.Size()) + " items, more than " +
                           std::to_string(max_items) + " per request");
  std::vector<FeedbackItem> out;
  out.reserve(items.Size());
  for (rapidjson::SizeType i = 0; i < items.Size(); ++i) {
    const std::string at = "feedback[" + std::to_string(i) + "]";
    const auto& item = items[i];
    if (!item.IsObject()) return InvalidArgument(at + ": expected an object, got " + TypeName(item));
    FeedbackItem f;
    bool have_id = false, have_target = false;
    for (auto m = item.MemberBegin(); m != item.MemberEnd(); ++m) {
      std::string name(m->name.GetString(), m->name.GetStringLength());
      if (name == "id") {
        if (!m->value.IsString()) return InvalidArgument(at + ".id: expected a string, got " + TypeName(m->value));
        f.id.assign(m->value.GetString(), m->value.GetStringLength());
        if (f.id.empty()) return InvalidArgument(at + ".id: empty");
        have_id = true;
      } else if (name == "target") {
        FERRY_RETURN_IF_ERROR(Flatten(m->value, at + ".target", 0, &f.target));
        if (f.target.empty()) return InvalidArgument(at + ".target: empty array");
        have_target = true;
      } else {
        return InvalidArgument(at + "." + name + ": unknown field (expected 'id' and 'target')");
      }
    }
    if (!have_id) return InvalidArgument(at + ".id: missing");
    if (!have_target) return InvalidArgument(at + ".target: missing");
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace ferry::monitoring::quality
