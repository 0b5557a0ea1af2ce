#include "monitoring/alert_rules.h"

#include <gtest/gtest.h>

namespace ferry::monitoring {
namespace {

std::string Error(const std::string& text) {
  auto r = ParseAlertRules(text, "rules.yaml");
  return r.ok() ? "(parsed)" : std::string(r.status().message());
}

TEST(AlertRulesTest, ParsesEveryField) {
  auto rules = ParseAlertRules(R"(rules:
- alert: FerryErrorRatio
  metric: ferry_inference_failures_total
  match: {model: iris}
  function: rate
  window: 2m
  by: [model, version]
  divide_by: {metric: ferry_inference_requests_total, function: rate, window: 2m}
  condition: ">= 0.05"
  for: 30s
  labels: {severity: page}
  annotations: {summary: "ratio {{ $value }}"}
- alert: NoReplica
  metric: ferry_engine_replicas
  match: {state: ready}
  condition: "< 1"
)",
                               "rules.yaml");
  ASSERT_TRUE(rules.ok()) << rules.status().message();
  ASSERT_EQ(rules->size(), 2u);
  const AlertRule& a = (*rules)[0];
  EXPECT_EQ(a.name, "FerryErrorRatio");
  EXPECT_EQ(a.expr.metric, "ferry_inference_failures_total");
  EXPECT_EQ(a.expr.function, SeriesSelector::Function::kRate);
  EXPECT_EQ(a.expr.window, Millis(120000));
  EXPECT_EQ(a.by, (std::vector<std::string>{"model", "version"}));
  ASSERT_TRUE(a.divide_by.has_value());
  EXPECT_EQ(a.divide_by->metric, "ferry_inference_requests_total");
  EXPECT_EQ(a.op, AlertRule::Op::kGe);
  EXPECT_DOUBLE_EQ(a.threshold, 0.05);
  EXPECT_EQ(a.for_, Millis(30000));
  EXPECT_EQ(a.labels.at(0).second, "page");
  EXPECT_EQ(a.line, 2);
  const AlertRule& b = (*rules)[1];
  EXPECT_EQ(b.expr.function, SeriesSelector::Function::kValue);
  EXPECT_EQ(b.op, AlertRule::Op::kLt);
  EXPECT_EQ(b.for_, Millis(0));
}

TEST(AlertRulesTest, ErrorsNameTheFieldAndTheLine) {
  EXPECT_EQ(Error("rules:\n- alert: A\n  metric: m\n  condition: '> x'\n"),
            "rules.yaml:4:14: rules[0].condition: '> x' is not a condition (an operator > >= < <= == != and a "
            "number, such as \"> 0.05\")");
  EXPECT_NE(Error("rules:\n- alert: A\n  metric: m\n").find("rules.yaml:2:3: rules[0].condition: is required"),
            std::string::npos);
  EXPECT_NE(Error("rules:\n- alert: A\n  metric: m\n  condition: '> 1'\n  fro: 1m\n")
                .find("rules.yaml:5:3: rules[0].fro: unknown field"),
            std::string::npos);
  EXPECT_NE(Error("rules:\n- alert: A\n  metric: 'bad name'\n  condition: '> 1'\n").find("is not a metric name"),
            std::string::npos);
  EXPECT_NE(Error("rules:\n- alert: A\n  metric: m\n  function: sum\n  condition: '> 1'\n")
                .find("rules[0].function: must be value, rate or increase, got 'sum'"),
            std::string::npos);
  EXPECT_NE(Error("rules:\n- alert: A\n  metric: m\n  condition: '> 1'\n- alert: A\n  metric: m\n  condition: '> 1'\n")
                .find("rules.yaml:5:10: rules[1].alert: alert 'A' is defined twice"),
            std::string::npos);
  EXPECT_NE(Error("rules:\n- alert: A\n  metric: m\n  condition: '> 1'\n  window: 0s\n")
                .find("rules[0].window: must be positive"),
            std::string::npos);
  EXPECT_NE(Error("rules:\n- alert: A\n  metric: m\n  condition: '> 1'\n  divide_by: {metric: n, wndow: 1m}\n")
                .find("rules[0].divide_by.wndow: unknown field"),
            std::string::npos);
  EXPECT_NE(Error("rules:\n- alert: A\n  metric: m\n  condition: '> 1'\n  labels: {alertname: B}\n")
                .find("labels.alertname: is set from the alert field"),
            std::string::npos);
  EXPECT_NE(Error("rules: [").find("rules.yaml:1:"), std::string::npos);
  EXPECT_NE(Error("").find("the rules file is empty"), std::string::npos);
  EXPECT_NE(Error("rules: 3\n").find("rules: must be a list"), std::string::npos);
}

}  // namespace
}  // namespace ferry::monitoring
