#include "monitoring/alert_evaluator.h"

#include <gtest/gtest.h>

#include "core/manual_clock.h"

namespace ferry::monitoring {
namespace {

using namespace std::chrono_literals;

class AlertEvaluatorTest : public ::testing::Test {
 protected:
  AlertRule ErrorRatio() {
    AlertRule r;
    r.name = "ErrorRatio";
    r.expr = {"failures_total", {}, SeriesSelector::Function::kRate, 10s};
    r.divide_by = SeriesSelector{"requests_total", {}, SeriesSelector::Function::kRate, 10s};
    r.by = {"model"};
    r.op = AlertRule::Op::kGt;
    r.threshold = 0.1;
    r.for_ = 3s;
    r.labels = {{"severity", "page"}};
    r.annotations = {{"summary", "{{ $labels.model }} fails {{ $value }} of its requests"}};
    return r;
  }
  // One evaluation per second: failures and requests grow by the given amounts.
  std::vector<AlertTransition> Step(AlertEvaluator& e, double fail_inc, double req_inc, int seconds = 1) {
    std::vector<AlertTransition> all;
    for (int i = 0; i < seconds; ++i) {
      clock_.Advance(1s);
      wall_ += 1000;
      failures_ += fail_inc;
      requests_ += req_inc;
      std::vector<MetricSample> s = {{"requests_total", {{"model", "iris"}, {"version", "1"}}, requests_}};
      if (failures_ > 0) s.push_back({"failures_total", {{"model", "iris"}, {"version", "1"}, {"reason", "x"}}, failures_});
      auto t = e.Evaluate(s);
      all.insert(all.end(), t.begin(), t.end());
    }
    return all;
  }
  ManualClock clock_;
  uint64_t wall_ = 1'700'000'000'000;
  double failures_ = 0, requests_ = 0;
  std::function<uint64_t()> Wall() {
    return [this] { return wall_; };
  }
};

TEST_F(AlertEvaluatorTest, PendingThenFiringAfterForThenResolved) {
  AlertEvaluator e({ErrorRatio()}, &clock_, Wall());
  EXPECT_TRUE(Step(e, 0, 10, 5).empty());
  // 50% of requests fail: pending at once, firing once it has held for 3 s.
  EXPECT_TRUE(Step(e, 5, 10, 2).empty());
  ASSERT_EQ(e.Active().size(), 1u);
  EXPECT_FALSE(e.Active()[0].firing);
  auto t = Step(e, 5, 10, 2);
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].kind, AlertTransition::Kind::kFired);
  const Alert& a = t[0].alert;
  EXPECT_EQ(a.labels, (Labels{{"alertname", "ErrorRatio"}, {"model", "iris"}, {"severity", "page"}}));
  EXPECT_NEAR(a.value, 0.5, 1e-9);
  EXPECT_EQ(a.annotations.at("summary"), "iris fails 0.5 of its requests");
  EXPECT_EQ(a.fingerprint, Fingerprint(a.labels));
  // Failures stop: the ratio over the 10 s window falls under 0.1 and it resolves.
  std::vector<AlertTransition> r;
  for (int i = 0; i < 30 && r.empty(); ++i) r = Step(e, 0, 10);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].kind, AlertTransition::Kind::kResolved);
  EXPECT_TRUE(e.Active().empty());
}

TEST_F(AlertEvaluatorTest, AShortBlipStaysPending) {
  AlertEvaluator e({ErrorRatio()}, &clock_, Wall());
  Step(e, 0, 10, 3);
  EXPECT_TRUE(Step(e, 5, 10, 1).empty());
  EXPECT_EQ(e.Active().size(), 1u);
  // Many good requests bring the ratio under the threshold before `for` (3 s): the
  // pending alert goes without a transition; nothing was ever sent.
  auto t = Step(e, 0, 1000, 2);
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(e.Active().empty());
}

TEST_F(AlertEvaluatorTest, ASeriesThatAppearsCountsFromZero) {
  AlertRule r;
  r.name = "AnyFailure";
  r.expr = {"failures_total", {}, SeriesSelector::Function::kIncrease, 60s};
  r.op = AlertRule::Op::kGt;
  r.threshold = 0;
  AlertEvaluator e({r}, &clock_, Wall());
  Step(e, 0, 1, 2);  // no failures series yet
  auto t = Step(e, 1, 1);  // the counter appears at 1: its first failure is an increase of 1
  ASSERT_EQ(t.size(), 1u);
  EXPECT_DOUBLE_EQ(t[0].alert.value, 1);
}

TEST_F(AlertEvaluatorTest, CounterResetCountsFromZero) {
  AlertRule r;
  r.name = "Increase";
  r.expr = {"c", {}, SeriesSelector::Function::kIncrease, 60s};
  r.op = AlertRule::Op::kGe;
  r.threshold = 0;
  AlertEvaluator e({r}, &clock_, Wall());
  for (double v : {5.0, 8.0, 2.0}) {
    clock_.Advance(1s);
    e.Evaluate({{"c", {}, v}});
  }
  ASSERT_EQ(e.Active().size(), 1u);
  EXPECT_DOUBLE_EQ(e.Active()[0].value, 3 + 2);  // 5->8, then a reset to 2
}

TEST_F(AlertEvaluatorTest, ValueRulesMatchLabelsAndGroup) {
  AlertRule r;
  r.name = "NoReadyReplica";
  r.expr = {"replicas", {{"state", "ready"}}, SeriesSelector::Function::kValue, 60s};
  r.by = {"deployment"};
  r.op = AlertRule::Op::kLt;
  r.threshold = 1;
  AlertEvaluator e({r}, &clock_, Wall());
  clock_.Advance(1s);
  auto t = e.Evaluate({{"replicas", {{"deployment", "a"}, {"state", "ready"}}, 0},
                       {"replicas", {{"deployment", "a"}, {"state", "desired"}}, 2},
                       {"replicas", {{"deployment", "b"}, {"state", "ready"}}, 2}});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].alert.labels.at("deployment"), "a");
  // No data for the group: it resolves (a gone deployment pages no one).
  clock_.Advance(1s);
  t = e.Evaluate({});
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].kind, AlertTransition::Kind::kResolved);
}

TEST_F(AlertEvaluatorTest, ZeroDenominatorHasNoValue) {
  AlertEvaluator e({ErrorRatio()}, &clock_, Wall());
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(Step(e, 0, 0).empty());
  EXPECT_TRUE(e.Active().empty());
}

}  // namespace
}  // namespace ferry::monitoring
