#include "monitoring/alert_notifier.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include "core/manual_clock.h"

namespace ferry::monitoring {
namespace {

using namespace std::chrono_literals;

class AlertNotifierTest : public ::testing::Test {
 protected:
  AlertNotifierTest() {
    alert_.rule = "ErrorRatio";
    alert_.labels = {{"alertname", "ErrorRatio"}, {"model", "iris"}};
    alert_.annotations = {{"summary", "bad"}};
    alert_.firing = true;
    alert_.active_since_ms = 1'700'000'000'000;
    alert_.fired_at_ms = 1'700'000'003'000;
    alert_.fingerprint = Fingerprint(alert_.labels);
  }
  AlertNotifier Make(bool am, bool hook) {
    AlertNotifierOptions o;
    if (am) o.alertmanager_url = "http://am";
    if (hook) o.webhook_url = "http://hook/x";
    o.resend = 60s;
    o.retry_initial = 1s;
    o.retry_max = 4s;
    return AlertNotifier(o, &clock_, [this] { return wall_; }, [this](const std::string& url, const std::string& body) {
      sent_.push_back({url, body});
      return fail_ ? Unavailable("down") : Status::Ok();
    });
  }
  AlertTransition T(AlertTransition::Kind k) { return {k, alert_, wall_}; }
  ManualClock clock_;
  uint64_t wall_ = 1'700'000'010'000;
  bool fail_ = false;
  std::vector<std::pair<std::string, std::string>> sent_;
  Alert alert_;
};

TEST_F(AlertNotifierTest, AlertmanagerGetsFiringThenResendsThenResolved) {
  AlertNotifier n = Make(true, false);
  n.Update({alert_}, {T(AlertTransition::Kind::kFired)});
  n.Pump();
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].first, "http://am/api/v2/alerts");
  rapidjson::Document d;
  d.Parse(sent_[0].second.c_str());
  ASSERT_TRUE(d.IsArray() && d.Size() == 1) << sent_[0].second;
  EXPECT_STREQ(d[0]["labels"]["model"].GetString(), "iris");
  EXPECT_STREQ(d[0]["startsAt"].GetString(), "2023-11-14T22:13:23.000Z");
  EXPECT_STREQ(d[0]["endsAt"].GetString(), "2023-11-14T22:17:30.000Z") << "now + 4 x resend";
  // Nothing new: no POST until the resend interval.
  clock_.Advance(30s);
  n.Update({alert_}, {});
  n.Pump();
  EXPECT_EQ(sent_.size(), 1u);
  clock_.Advance(31s);
  n.Update({alert_}, {});
  n.Pump();
  EXPECT_EQ(sent_.size(), 2u);
  // Resolved: sent with endsAt = the resolution time, then no more.
  wall_ += 5000;
  n.Update({}, {T(AlertTransition::Kind::kResolved)});
  n.Pump();
  ASSERT_EQ(sent_.size(), 3u);
  d.Parse(sent_[2].second.c_str());
  ASSERT_EQ(d.Size(), 1u);
  EXPECT_STREQ(d[0]["endsAt"].GetString(), Rfc3339(wall_).c_str());
  clock_.Advance(120s);
  n.Update({}, {});
  n.Pump();
  EXPECT_EQ(sent_.size(), 3u);
}

TEST_F(AlertNotifierTest, FailedPostsRetryWithBackoffAndKeepTheResolution) {
  AlertNotifier n = Make(true, false);
  fail_ = true;
  n.Update({}, {T(AlertTransition::Kind::kResolved)});
  n.Pump();
  EXPECT_EQ(sent_.size(), 1u);
  n.Pump();
  EXPECT_EQ(sent_.size(), 1u) << "waits for the back-off";
  clock_.Advance(1s);
  n.Pump();
  EXPECT_EQ(sent_.size(), 2u);
  clock_.Advance(1s);
  n.Pump();
  EXPECT_EQ(sent_.size(), 2u) << "the delay doubled to 2 s";
  clock_.Advance(1s);
  fail_ = false;
  n.Pump();
  ASSERT_EQ(sent_.size(), 3u);
  EXPECT_NE(sent_[2].second.find("\"endsAt\""), std::string::npos);
  EXPECT_EQ(n.counters().alertmanager_failures, 2u);
  n.Pump();
  EXPECT_EQ(sent_.size(), 3u) << "delivered once: done";
}

TEST_F(AlertNotifierTest, WebhookGetsOneMessagePerTransitionInOrderWithoutDuplicates) {
  AlertNotifier n = Make(false, true);
  fail_ = true;
  n.Update({alert_}, {T(AlertTransition::Kind::kFired)});
  n.Update({alert_}, {T(AlertTransition::Kind::kFired)});  // the same again while queued
  n.Pump();
  EXPECT_EQ(n.counters().webhook_duplicates, 1u);
  n.Update({}, {T(AlertTransition::Kind::kResolved)});
  fail_ = false;
  clock_.Advance(1s);
  n.Pump();
  ASSERT_EQ(sent_.size(), 3u);  // one failed try, then firing and resolved
  rapidjson::Document d;
  d.Parse(sent_[1].second.c_str());
  EXPECT_STREQ(d["status"].GetString(), "firing");
  EXPECT_STREQ(d["alerts"][0]["fingerprint"].GetString(), alert_.fingerprint.c_str());
  EXPECT_STREQ(d["version"].GetString(), "4");
  d.Parse(sent_[2].second.c_str());
  EXPECT_STREQ(d["status"].GetString(), "resolved");
}

}  // namespace
}  // namespace ferry::monitoring
