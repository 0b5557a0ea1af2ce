#include "monitoring/quality/calibration.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <unistd.h>

namespace ferry::monitoring::quality {
namespace {

TEST(CalibrationTest, PoolsAdjacentViolatorsAndInterpolates) {
  // labels by score: .1->0, .2->1, .3->0, .4->1: .2 and .3 pool to .5
  IsotonicCalibrator c = IsotonicCalibrator::Fit({0.3, 0.1, 0.4, 0.2}, {0, 0, 1, 1});
  EXPECT_DOUBLE_EQ(c.Apply(0.1), 0.0);
  EXPECT_DOUBLE_EQ(c.Apply(0.2), 0.5);
  EXPECT_DOUBLE_EQ(c.Apply(0.3), 0.5);
  EXPECT_DOUBLE_EQ(c.Apply(0.4), 1.0);
  EXPECT_DOUBLE_EQ(c.Apply(0.15), 0.25);  // linear between fitted points
  EXPECT_DOUBLE_EQ(c.Apply(0.0), 0.0);    // clipped outside
  EXPECT_DOUBLE_EQ(c.Apply(0.9), 1.0);
}

TEST(CalibrationTest, CalibratesOverconfidentScoresAndLeavesCalibratedOnesAlone) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<double> calibrated, overconfident;
  std::vector<int> labels;
  for (int i = 0; i < 20000; ++i) {
    const double p = u(rng);
    labels.push_back(u(rng) < p ? 1 : 0);
    calibrated.push_back(p);
    overconfident.push_back(p * p * (3 - 2 * p));  // pushed towards 0 and 1
  }
  EXPECT_LT(ExpectedCalibrationError(calibrated, labels), 0.02);
  EXPECT_GT(ExpectedCalibrationError(overconfident, labels), 0.05);
  EXPECT_TRUE(NeedsCalibration(overconfident, labels));
  IsotonicCalibrator c = IsotonicCalibrator::Fit(overconfident, labels);
  EXPECT_NEAR(c.Apply(0.5), 0.5, 0.05);  // the map undoes the distortion at p = .5
}

TEST(CalibrationTest, ReadsAReferenceSetAndNamesBadFields) {
  const auto dir = std::filesystem::temp_directory_path() / ("ferry_calibration_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto write = [&](const char* name, const char* text) {
    std::ofstream(dir / name) << text;
    return dir / name;
  };
  auto ok = ReadCalibrationSet(write("ok.json", R"({"probability": [0.2, 0.9], "label": [0, 1]})"));
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->labels, (std::vector<int>{0, 1}));
  auto bad = ReadCalibrationSet(write("bad.json", R"({"probability": [0.2, 1.5], "label": [0, 1]})"));
  EXPECT_NE(bad.status().message().find("probability[1]: not a number in [0, 1]"), std::string::npos);
  bad = ReadCalibrationSet(write("lab.json", R"({"probability": [0.2], "label": [2]})"));
  EXPECT_NE(bad.status().message().find("label[0]: not 0 or 1"), std::string::npos);
  bad = ReadCalibrationSet(dir / "absent.json");
  EXPECT_NE(bad.status().message().find("cannot be read"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ferry::monitoring::quality
