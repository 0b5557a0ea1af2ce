#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "monitoring/alert_evaluator.h"

namespace ferry::monitoring {

struct AlertNotifierOptions {
  std::string alertmanager_url;  // e.g. http://127.0.0.1:9093 (POST {url}/api/v2/alerts); empty: none
  std::string webhook_url;       // POSTed one message per fired/resolved alert; empty: none
  Millis resend{60000};          // firing alerts are sent to Alertmanager again this often
  Millis retry_initial{1000};    // after a failed POST; doubles per failure
  Millis retry_max{30000};
  size_t webhook_queue = 1000;   // messages waiting for the webhook; beyond, the oldest go (counted)
  std::string generator_url;     // generatorURL of every alert (e.g. the metrics endpoint)
  std::string source = "ferry";  // `receiver`-side hint: the webhook's "receiver" field
};

// Delivers alerts to Alertmanager's v2 API and/or a webhook.
//  - Alertmanager: every firing alert in one POST /api/v2/alerts (a JSON array of
//    {labels, annotations, startsAt, endsAt, generatorURL}) whenever the set changes and
//    every `resend` while any fires, endsAt = now + 4 x resend so that Alertmanager
//    resolves it by itself if ferry goes away; a resolved alert is sent with endsAt = the
//    resolution time until one POST carrying it succeeds. Alertmanager de-duplicates by
//    label set.
//  - Webhook: one message per transition (Alertmanager's webhook format, version 4:
//    {receiver, status, alerts[{status, labels, annotations, startsAt, endsAt,
//    generatorURL, fingerprint}], groupLabels, commonLabels, externalURL, groupKey}),
//    delivered in order, each until it succeeds; the same fingerprint and status is
//    queued once (a repeat while the first waits is dropped as a duplicate).
//  - A failed POST is retried after retry_initial, doubling to retry_max; success
//    resets the delay. Nothing blocks the evaluation: Pump does the sending.
// Pure but for `send` (url, JSON body) -> Status, injected, and the clocks.
// Thread-safety: not thread-safe; the alert loop owns it.
class AlertNotifier {
 public:
  using Send = std::function<Status(const std::string& url, const std::string& body)>;
  AlertNotifier(AlertNotifierOptions options, const Clock* clock, std::function<uint64_t()> wall_ms, Send send);

  // After each evaluation: the active alerts (pending ones are ignored) and transitions.
  void Update(const std::vector<Alert>& active, const std::vector<AlertTransition>& transitions);
  // Sends what is due now; call after Update and periodically.
  void Pump();

  struct Counters {
    uint64_t alertmanager_posts = 0, alertmanager_failures = 0;
    uint64_t webhook_posts = 0, webhook_failures = 0, webhook_dropped = 0, webhook_duplicates = 0;
  };
  const Counters& counters() const { return counters_; }
  // The JSON bodies, for tests and for reading.
  std::string AlertmanagerBody(uint64_t now_ms) const;
  static std::string WebhookBody(const AlertTransition& t, const std::string& receiver,
                                 const std::string& generator_url);

 private:
  struct Target {
    uint64_t next_try_ns = 0;  // 0: now
    uint64_t backoff_ns = 0;
  };
  void Failed(Target& t);
  void Succeeded(Target& t) { t = Target{}; }

  const AlertNotifierOptions options_;
  const Clock* clock_;
  std::function<uint64_t()> wall_ms_;
  Send send_;
  std::vector<Alert> firing_;
  std::map<std::string, AlertTransition> resolved_;  // by fingerprint: not yet delivered to Alertmanager
  bool am_dirty_ = false;
  uint64_t am_last_sent_ns_ = 0;
  bool am_ever_sent_ = false;
  Target am_, hook_;
  std::deque<AlertTransition> hook_queue_;
  Counters counters_;
};

// RFC 3339 UTC with milliseconds, as Alertmanager takes it.
std::string Rfc3339(uint64_t unix_ms);

}  // namespace ferry::monitoring
