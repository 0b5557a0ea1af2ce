#include "monitoring/alert_loop.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/log.h"
#include "monitoring/http_post.h"

namespace ferry::monitoring {
namespace {

uint64_t WallNow() { return WallMillis(); }

// name{a="x",b="y"} value [timestamp]
bool ParseLine(const std::string& line, MetricSample* out) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  if (i == 0) return false;
  out->name = line.substr(0, i);
  out->labels.clear();
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      size_t eq = line.find('=', i);
      if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') return false;
      std::string key = line.substr(i, eq - i);
      std::string value;
      size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) {
          ++j;
          value += line[j] == 'n' ? '\n' : line[j];
        } else {
          value += line[j];
        }
      }
      if (j >= line.size()) return false;
      out->labels[key] = value;
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;  // '}'
  }
  while (i < line.size() && line[i] == ' ') ++i;
  const std::string number = line.substr(i, line.find(' ', i) - i);
  if (number == "+Inf") out->value = INFINITY;
  else if (number == "-Inf") out->value = -INFINITY;
  else if (number == "NaN") out->value = NAN;
  else {
    char* end = nullptr;
    out->value = std::strtod(number.c_str(), &end);
    if (number.empty() || end != number.c_str() + number.size()) return false;
  }
  return true;
}

}  // namespace

std::vector<MetricSample> ParseExposition(const std::string& text) {
  std::vector<MetricSample> out;
  std::istringstream in(text);
  std::string line;
  MetricSample s;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (ParseLine(line, &s)) out.push_back(s);
  }
  return out;
}

Result<std::unique_ptr<AlertLoop>> AlertLoop::Create(AlertLoopOptions options,
                                                     std::function<std::string()> exposition) {
  if (options.notifier.alertmanager_url.empty() && options.notifier.webhook_url.empty())
    return InvalidArgument("alert rules need somewhere to send alerts: an Alertmanager URL or a webhook URL");
  if (options.interval.count() < 100) return InvalidArgument("the alert evaluation interval must be at least 100 ms");
  FERRY_ASSIGN_OR_RETURN(std::vector<AlertRule> rules, LoadAlertRulesFile(options.rules_file));
  return std::unique_ptr<AlertLoop>(new AlertLoop(std::move(options), std::move(rules), std::move(exposition)));
}

AlertLoop::AlertLoop(AlertLoopOptions options, std::vector<AlertRule> rules, std::function<std::string()> exposition)
    : options_(std::move(options)),
      exposition_(std::move(exposition)),
      evaluator_(std::move(rules), SystemClock::Get(), WallNow),
      notifier_(options_.notifier, SystemClock::Get(), WallNow, [](const std::string& url, const std::string& body) {
        return HttpPostJson(url, body, std::chrono::seconds(5));
      }) {}

AlertLoop::~AlertLoop() { Stop(); }

void AlertLoop::Start() { thread_ = std::thread([this] { Run(); }); }

void AlertLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AlertLoop::Run() {
  auto next = std::chrono::steady_clock::now();
  uint64_t failures_logged = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      // Retries are paced by the notifier; waking each second lets them go out between
      // evaluations.
      const auto wake = std::min(next, std::chrono::steady_clock::now() + std::chrono::seconds(1));
      if (cv_.wait_until(lock, wake, [this] { return stop_; })) return;
    }
    if (std::chrono::steady_clock::now() >= next) {
      next += options_.interval;
      const auto transitions = evaluator_.Evaluate(ParseExposition(exposition_()));
      for (const auto& t : transitions) {
        if (t.kind == AlertTransition::Kind::kFired)
          FERRY_LOG(kWarning, "alert firing", ("alert", t.alert.rule)("fingerprint", t.alert.fingerprint)("value", t.alert.value));
        else
          FERRY_LOG(kInfo, "alert resolved", ("alert", t.alert.rule)("fingerprint", t.alert.fingerprint));
      }
      notifier_.Update(evaluator_.Active(), transitions);
    }
    notifier_.Pump();
    const auto& c = notifier_.counters();
    if (options_.counted) {
      auto report = [&](const char* target, const char* result, uint64_t now, uint64_t& before) {
        if (now > before) options_.counted(target, result, now - before);
        before = now;
      };
      report("alertmanager", "sent", c.alertmanager_posts - c.alertmanager_failures, reported_.alertmanager_posts);
      report("alertmanager", "failed", c.alertmanager_failures, reported_.alertmanager_failures);
      report("webhook", "sent", c.webhook_posts - c.webhook_failures, reported_.webhook_posts);
      report("webhook", "failed", c.webhook_failures, reported_.webhook_failures);
      report("webhook", "dropped", c.webhook_dropped, reported_.webhook_dropped);
    }
    const uint64_t failures = c.alertmanager_failures + c.webhook_failures;
    if (failures > failures_logged) {
      FERRY_LOG(kWarning, "alert notification failed; retrying with back-off",
                ("alertmanager_failures", c.alertmanager_failures)("webhook_failures", c.webhook_failures));
      failures_logged = failures;
    }
  }
}

}  // namespace ferry::monitoring
