#include "monitoring/drift/drift_settings.h"

#include <gtest/gtest.h>

namespace ferry::monitoring::drift {
namespace {

using Settings = std::map<std::string, std::string, std::less<>>;

TEST(DriftSettings, DefaultsAndValues) {
  auto d = ParseDriftSettings({}, "/m");
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->enabled);
  EXPECT_EQ(d->profile, "/m/profile.json");
  EXPECT_EQ(d->window_rows, 1000u);
  EXPECT_EQ(d->test.alpha, 0.05);
  EXPECT_EQ(d->eval_interval_ns, 1'000'000'000u);
  auto s = ParseDriftSettings(Settings{{"drift.enabled", "true"},
                                       {"drift.window", "5m"},
                                       {"drift.alpha", "0.01"},
                                       {"drift.eval_interval", "250ms"},
                                       {"drift.correction", "fdr"},
                                       {"drift.test.categorical", "psi"},
                                       {"drift.profile", "ref/p.json"},
                                       {"payload_log.sample_rate", "0.1"}},
                              "/m");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE(s->enabled);
  EXPECT_TRUE(s->window_is_time);
  EXPECT_EQ(s->window_ns, 300'000'000'000u);
  EXPECT_EQ(s->eval_interval_ns, 250'000'000u);
  EXPECT_EQ(s->test.correction, Correction::kFdr);
  EXPECT_EQ(s->test.categorical_test, DriftTest::kPsi);
  EXPECT_EQ(s->profile, "/m/ref/p.json");
}

TEST(DriftSettings, ErrorsNameTheSetting) {
  auto check = [](const char* key, const char* value, const std::string& want) {
    auto r = ParseDriftSettings(Settings{{key, value}}, "/m");
    ASSERT_FALSE(r.ok()) << key;
    EXPECT_EQ(r.status().message(), want);
  };
  check("drift.alpha", "2", "monitoring.drift.alpha: '2' is not in (0, 1)");
  check("drift.window", "5 parsecs", "monitoring.drift.window: '5 parsecs' has an unknown unit (ms, s, m, h)");
  check("drift.window", "fast", "monitoring.drift.window: 'fast' is neither a row count nor a duration (30s, 5m, 1h)");
  check("drift.correction", "holm", "monitoring.drift.correction: 'holm' is not bonferroni, fdr or none");
  check("drift.windw", "10", "monitoring.drift.windw: unknown drift setting");
  check("drift.eval_interval", "5", "monitoring.drift.eval_interval: '5' has no unit (ms, s, m, h; only 0 needs none)");
  check("drift.eval_interval", "soon", "monitoring.drift.eval_interval: 'soon' is not a duration (1s, 250ms, 5m) or 0");
  check("drift.buckets", "0", "monitoring.drift.buckets: '0' is not in 1..64");
}

}  // namespace
}  // namespace ferry::monitoring::drift
