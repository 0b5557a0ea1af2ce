#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "monitoring/drift/feature_sketch.h"

namespace ferry::monitoring::drift {

// One feature of a reference profile: its name, where its value sits in a request
// (element `index` of each row of input tensor `tensor`; "" = the model's first input,
// or its first output for a prediction feature) and the sketch of its training values.
struct ProfileFeature {
  std::string name;
  std::string tensor;
  uint32_t index = 0;
  FeatureSketch sketch;
};

// What a model's training data looked like, per feature and for the model's predictions
// on it: the file `profile.json` in the model's folder (format in docs/monitoring.md,
// "Reference profiles and drift"). Written by `ferry profile build`, read by the drift
// monitor when a version loads.
struct ReferenceProfile {
  static constexpr int kFormatVersion = 1;
  static constexpr std::string_view kFormatName = "ferry-profile";
  uint64_t rows = 0;
  std::string source;  // the data file it was built from, for people
  std::vector<ProfileFeature> features;
  std::vector<ProfileFeature> predictions;  // empty when built without the model
};

std::string ProfileToJson(const ReferenceProfile& profile);
// INVALID_ARGUMENT naming the field ("features[2].sketch.levels: ...") when the text is
// not a profile of a known version.
Result<ReferenceProfile> ProfileFromJson(std::string_view json);
// The file; errors name the path.
Result<ReferenceProfile> ReadProfile(const std::filesystem::path& path);
// Writes via a temporary file and a rename, so a reader never sees half a profile.
Status WriteProfile(const std::filesystem::path& path, const ReferenceProfile& profile);

}  // namespace ferry::monitoring::drift
