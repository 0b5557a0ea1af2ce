#include "monitoring/alert_evaluator.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <set>

namespace ferry::monitoring {
namespace {

uint64_t Nanos(Millis m) { return static_cast<uint64_t>(m.count()) * 1'000'000; }

bool Matches(const MetricSample& s, const SeriesSelector& sel) {
  if (s.name != sel.metric) return false;
  for (const auto& [k, v] : sel.match) {
    auto it = s.labels.find(k);
    if ((it == s.labels.end() ? std::string() : it->second) != v) return false;
  }
  return true;
}

bool Compare(AlertRule::Op op, double v, double t) {
  switch (op) {
    case AlertRule::Op::kGt: return v > t;
    case AlertRule::Op::kGe: return v >= t;
    case AlertRule::Op::kLt: return v < t;
    case AlertRule::Op::kLe: return v <= t;
    case AlertRule::Op::kEq: return v == t;
    case AlertRule::Op::kNe: return v != t;
  }
  return false;
}

std::string FormatValue(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// {{ $value }} and {{ $labels.name }} (spaces inside the braces optional).
std::string Fill(const std::string& tmpl, double value, const Labels& labels) {
  std::string out;
  size_t i = 0;
  while (i < tmpl.size()) {
    size_t open = tmpl.find("{{", i);
    if (open == std::string::npos) break;
    size_t close = tmpl.find("}}", open);
    if (close == std::string::npos) break;
    out.append(tmpl, i, open - i);
    std::string key = tmpl.substr(open + 2, close - open - 2);
    key.erase(0, key.find_first_not_of(' '));
    key.erase(key.find_last_not_of(' ') + 1);
    if (key == "$value") {
      out += FormatValue(value);
    } else if (key.rfind("$labels.", 0) == 0) {
      auto it = labels.find(key.substr(8));
      if (it != labels.end()) out += it->second;
    } else {
      out.append(tmpl, open, close + 2 - open);  // not ours: left as written
    }
    i = close + 2;
  }
  out.append(tmpl, i, std::string::npos);
  return out;
}

}  // namespace

std::string Fingerprint(const Labels& labels) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;  // separator
    h *= 1099511628211ull;
  };
  for (const auto& [k, v] : labels) {
    mix(k);
    mix(v);
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

AlertEvaluator::AlertEvaluator(std::vector<AlertRule> rules, const Clock* clock, std::function<uint64_t()> wall_ms)
    : rules_(std::move(rules)), clock_(clock), wall_ms_(std::move(wall_ms)) {}

std::map<Labels, double> AlertEvaluator::Select(size_t rule, int which, const SeriesSelector& s,
                                                const std::vector<std::string>& by,
                                                const std::vector<MetricSample>& samples, uint64_t now) {
  std::map<Labels, double> groups;
  for (const auto& m : samples) {
    if (!Matches(m, s)) continue;
    double v = m.value;
    if (s.function != SeriesSelector::Function::kValue) {
      Series& h = history_[{rule, which, m.labels}];
      if (h.points.empty() && !first_) h.points.push_back({last_eval_, 0.0});  // appeared since: 0 at the last one
      h.points.push_back({now, m.value});
      h.last_seen = now;
      while (h.points.size() > 2 && now - h.points[1].t >= Nanos(s.window)) h.points.pop_front();
      if (h.points.size() < 2) continue;
      double inc = 0;
      for (size_t i = 1; i < h.points.size(); ++i) {
        const double d = h.points[i].v - h.points[i - 1].v;
        inc += d >= 0 ? d : h.points[i].v;  // a reset: counted from 0
      }
      const double span_s = static_cast<double>(now - h.points.front().t) / 1e9;
      if (s.function == SeriesSelector::Function::kRate) {
        if (span_s <= 0) continue;
        v = inc / span_s;
      } else {
        v = inc;
      }
    }
    Labels key;
    for (const auto& l : by) {
      auto it = m.labels.find(l);
      if (it != m.labels.end()) key[l] = it->second;
    }
    groups[key] += v;
  }
  return groups;
}

std::vector<AlertTransition> AlertEvaluator::Evaluate(const std::vector<MetricSample>& samples) {
  const uint64_t now = clock_->NowNanos();
  const uint64_t wall = wall_ms_();
  std::vector<AlertTransition> out;
  std::set<std::pair<size_t, Labels>> holding;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const AlertRule& rule = rules_[i];
    std::map<Labels, double> values = Select(i, 0, rule.expr, rule.by, samples, now);
    if (rule.divide_by) {
      const std::map<Labels, double> den = Select(i, 1, *rule.divide_by, rule.by, samples, now);
      for (auto it = values.begin(); it != values.end();) {
        auto d = den.find(it->first);
        if (d == den.end() || d->second == 0) {
          it = values.erase(it);
        } else {
          it->second /= d->second;
          ++it;
        }
      }
    }
    for (const auto& [group, value] : values) {
      if (!std::isfinite(value) || !Compare(rule.op, value, rule.threshold)) continue;
      const auto key = std::make_pair(i, group);
      holding.insert(key);
      auto [since, fresh] = since_ns_.try_emplace(key, now);
      Alert& a = active_[key];
      if (fresh) {
        a.rule = rule.name;
        a.labels = group;
        for (const auto& [k, v] : rule.labels) a.labels[k] = v;
        a.labels["alertname"] = rule.name;
        a.fingerprint = Fingerprint(a.labels);
        a.active_since_ms = wall;
      }
      a.value = value;
      a.annotations.clear();
      for (const auto& [k, v] : rule.annotations) a.annotations[k] = Fill(v, value, a.labels);
      if (!a.firing && now - since->second >= Nanos(rule.for_)) {
        a.firing = true;
        a.fired_at_ms = wall;
        out.push_back({AlertTransition::Kind::kFired, a, wall});
      }
    }
  }
  for (auto it = active_.begin(); it != active_.end();) {
    if (holding.count(it->first)) {
      ++it;
      continue;
    }
    if (it->second.firing) out.push_back({AlertTransition::Kind::kResolved, it->second, wall});
    since_ns_.erase(it->first);
    it = active_.erase(it);
  }
  // Series gone for longer than their window are forgotten (bounded memory).
  for (auto it = history_.begin(); it != history_.end();) {
    const SeriesSelector& s = std::get<1>(it->first) == 0 ? rules_[std::get<0>(it->first)].expr
                                                           : *rules_[std::get<0>(it->first)].divide_by;
    if (now - it->second.last_seen > Nanos(s.window)) it = history_.erase(it);
    else ++it;
  }
  first_ = false;
  last_eval_ = now;
  return out;
}

std::vector<Alert> AlertEvaluator::Active() const {
  std::vector<Alert> out;
  out.reserve(active_.size());
  for (const auto& [k, a] : active_) out.push_back(a);
  return out;
}

}  // namespace ferry::monitoring
