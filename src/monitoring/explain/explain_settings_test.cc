#include "monitoring/explain/explain_settings.h"

#include <gtest/gtest.h>

namespace ferry::monitoring::explain {
namespace {

using Map = std::map<std::string, std::string, std::less<>>;

TEST(ExplainSettings, DefaultsAreOffWithTheModelsProfile) {
  auto s = ParseExplainSettings({{"drift.enabled", "true"}}, "/m");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->enabled);
  EXPECT_EQ(s->method, MethodChoice::kAuto);
  EXPECT_EQ(s->profile, std::filesystem::path("/m/profile.json"));
  EXPECT_EQ(s->max_rows, 16);
}

TEST(ExplainSettings, ReadsEverySetting) {
  auto s = ParseExplainSettings({{"explain.enabled", "true"},
                                 {"explain.method", "permutation"},
                                 {"explain.max_rows", "4"},
                                 {"explain.max_evaluations", "999"},
                                 {"explain.background_rows", "8"},
                                 {"explain.profile", "ref.json"},
                                 {"explain.timeout_ms", "250"},
                                 {"explain.seed", "42"},
                                 {"explain.output", "proba"}},
                                "/m");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE(s->enabled);
  EXPECT_EQ(s->method, MethodChoice::kPermutation);
  EXPECT_EQ(s->max_rows, 4);
  EXPECT_EQ(s->max_evaluations, 999);
  EXPECT_EQ(s->background_rows, 8);
  EXPECT_EQ(s->profile, std::filesystem::path("/m/ref.json"));
  EXPECT_EQ(s->timeout_ms, 250u);
  EXPECT_EQ(s->seed, 42u);
  EXPECT_EQ(s->output, "proba");
}

TEST(ExplainSettings, BadValuesNameTheSetting) {
  for (const auto& [key, value] : Map{{"explain.enabled", "yes"},
                                      {"explain.method", "lime"},
                                      {"explain.max_rows", "0"},
                                      {"explain.max_evaluations", "x"},
                                      {"explain.colour", "red"}}) {
    auto s = ParseExplainSettings({{key, value}}, "/m");
    ASSERT_FALSE(s.ok()) << key;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find("monitoring." + key), std::string::npos) << s.status().message();
  }
}

}  // namespace
}  // namespace ferry::monitoring::explain
