#include "monitoring/alert_notifier.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <ctime>

namespace ferry::monitoring {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

uint64_t Nanos(Millis m) { return static_cast<uint64_t>(m.count()) * 1'000'000; }

void WriteMap(Writer& w, const char* key, const Labels& m) {
  w.Key(key);
  w.StartObject();
  for (const auto& [k, v] : m) {
    w.Key(k.c_str(), static_cast<rapidjson::SizeType>(k.size()));
    w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
  }
  w.EndObject();
}

void WriteString(Writer& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

}  // namespace

std::string Rfc3339(uint64_t unix_ms) {
  const std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return buf;
}

AlertNotifier::AlertNotifier(AlertNotifierOptions options, const Clock* clock, std::function<uint64_t()> wall_ms,
                             Send send)
    : options_(std::move(options)), clock_(clock), wall_ms_(std::move(wall_ms)), send_(std::move(send)) {}

void AlertNotifier::Update(const std::vector<Alert>& active, const std::vector<AlertTransition>& transitions) {
  std::vector<Alert> firing;
  for (const auto& a : active)
    if (a.firing) firing.push_back(a);
  if (!transitions.empty()) am_dirty_ = true;
  firing_ = std::move(firing);
  for (const auto& t : transitions) {
    if (t.kind == AlertTransition::Kind::kResolved) resolved_[t.alert.fingerprint] = t;
    else resolved_.erase(t.alert.fingerprint);
    if (options_.webhook_url.empty()) continue;
    const bool dup = std::any_of(hook_queue_.begin(), hook_queue_.end(), [&](const AlertTransition& q) {
      return q.alert.fingerprint == t.alert.fingerprint && q.kind == t.kind;
    });
    if (dup) {
      ++counters_.webhook_duplicates;
      continue;
    }
    if (hook_queue_.size() >= options_.webhook_queue) {
      hook_queue_.pop_front();
      ++counters_.webhook_dropped;
    }
    hook_queue_.push_back(t);
  }
}

void AlertNotifier::Failed(Target& t) {
  t.backoff_ns = t.backoff_ns == 0 ? Nanos(options_.retry_initial)
                                   : std::min(t.backoff_ns * 2, Nanos(options_.retry_max));
  t.next_try_ns = clock_->NowNanos() + t.backoff_ns;
}

std::string AlertNotifier::AlertmanagerBody(uint64_t now_ms) const {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartArray();
  const uint64_t valid_for = 4 * static_cast<uint64_t>(options_.resend.count());
  auto one = [&](const Alert& a, uint64_t ends_ms) {
    w.StartObject();
    WriteMap(w, "labels", a.labels);
    WriteMap(w, "annotations", a.annotations);
    WriteString(w, "startsAt", Rfc3339(a.fired_at_ms ? a.fired_at_ms : a.active_since_ms));
    WriteString(w, "endsAt", Rfc3339(ends_ms));
    if (!options_.generator_url.empty()) WriteString(w, "generatorURL", options_.generator_url);
    w.EndObject();
  };
  for (const auto& a : firing_) one(a, now_ms + valid_for);
  for (const auto& [fp, t] : resolved_) one(t.alert, t.at_ms);
  w.EndArray();
  return sb.GetString();
}

std::string AlertNotifier::WebhookBody(const AlertTransition& t, const std::string& receiver,
                                       const std::string& generator_url) {
  const char* status = t.kind == AlertTransition::Kind::kFired ? "firing" : "resolved";
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  WriteString(w, "version", "4");
  WriteString(w, "receiver", receiver);
  WriteString(w, "status", status);
  WriteString(w, "groupKey", t.alert.rule + ":" + t.alert.fingerprint);
  WriteString(w, "externalURL", generator_url);
  w.Key("alerts");
  w.StartArray();
  w.StartObject();
  WriteString(w, "status", status);
  WriteMap(w, "labels", t.alert.labels);
  WriteMap(w, "annotations", t.alert.annotations);
  WriteString(w, "startsAt", Rfc3339(t.alert.fired_at_ms ? t.alert.fired_at_ms : t.alert.active_since_ms));
  // Alertmanager's webhook sends the zero time for alerts still firing.
  WriteString(w, "endsAt", t.kind == AlertTransition::Kind::kResolved ? Rfc3339(t.at_ms) : "0001-01-01T00:00:00Z");
  WriteString(w, "generatorURL", generator_url);
  WriteString(w, "fingerprint", t.alert.fingerprint);
  w.EndObject();
  w.EndArray();
  WriteMap(w, "groupLabels", Labels{{"alertname", t.alert.rule}});
  WriteMap(w, "commonLabels", t.alert.labels);
  WriteMap(w, "commonAnnotations", t.alert.annotations);
  w.EndObject();
  return sb.GetString();
}

void AlertNotifier::Pump() {
  const uint64_t now = clock_->NowNanos();
  if (!options_.alertmanager_url.empty() && now >= am_.next_try_ns) {
    const bool resend_due = !firing_.empty() && (!am_ever_sent_ || now - am_last_sent_ns_ >= Nanos(options_.resend));
    if (am_dirty_ || resend_due || !resolved_.empty()) {
      Status s = send_(options_.alertmanager_url + "/api/v2/alerts", AlertmanagerBody(wall_ms_()));
      ++counters_.alertmanager_posts;
      if (s.ok()) {
        Succeeded(am_);
        am_dirty_ = false;
        am_ever_sent_ = true;
        am_last_sent_ns_ = now;
        resolved_.clear();
      } else {
        ++counters_.alertmanager_failures;
        Failed(am_);
      }
    }
  }
  while (!hook_queue_.empty() && !options_.webhook_url.empty() && clock_->NowNanos() >= hook_.next_try_ns) {
    Status s = send_(options_.webhook_url, WebhookBody(hook_queue_.front(), options_.source, options_.generator_url));
    ++counters_.webhook_posts;
    if (!s.ok()) {
      ++counters_.webhook_failures;
      Failed(hook_);
      break;
    }
    Succeeded(hook_);
    hook_queue_.pop_front();
  }
}

}  // namespace ferry::monitoring
