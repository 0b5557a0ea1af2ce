// ferry's per-request outlier scoring cost (bench/run_outlier_bench.sh): OutlierMonitor::
// Annotate, the code `ferry serve` runs on the request path for a model with
// monitoring.outliers.enabled and return_score, on FP32 requests of R rows x D features
// against a reference profile of 20000 standard-normal rows (ProfileBuilder, KLL k =
// 200, as `ferry profile build`). Beside it, in the same run, the drift library's
// per-request update of the same request (RecordFeatures::Add into window sketches,
// what the monitoring thread does for drift) as a yardstick. Prints one Markdown table
// row per shape: ns per request for each, and their ratio.
//
//   outlier_bench PROFILE_DIR
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "monitoring/drift/profile_builder.h"
#include "monitoring/drift/record_features.h"
#include "monitoring/outliers/outlier_monitor.h"

using namespace ferry;
using namespace ferry::monitoring;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: outlier_bench PROFILE_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::printf("| rows x features | outlier score (Annotate), ns/request | drift update (RecordFeatures::Add), ns/request | ratio |\n");
  std::printf("| --- | ---: | ---: | ---: |\n");
  const std::pair<int, int> shapes[] = {{1, 4}, {1, 30}, {1, 100}, {16, 30}, {64, 30}};
  for (auto [rows, d] : shapes) {
    std::mt19937_64 rng(7);
    std::normal_distribution<double> normal;
    drift::ProfileBuilder b({});
    for (int j = 0; j < d; ++j) b.AddFeature("f" + std::to_string(j), drift::FeatureKind::kNumeric, "", j);
    for (int i = 0; i < 20000; ++i) {
      for (int j = 0; j < d; ++j) b.AddNumber(j, normal(rng));
      b.CountRow();
    }
    const drift::ReferenceProfile profile = b.Finish("bench");
    const std::string path = dir + "/profile_" + std::to_string(d) + ".json";
    if (!drift::WriteProfile(path, profile).ok()) return 1;
    outliers::OutlierMonitor monitor(nullptr);
    MonitoredModel m{"m", "1", dir, {{"outliers.enabled", "true"}, {"outliers.return_score", "true"},
                                     {"outliers.profile", path}}};
    if (Status s = monitor.Attach(m); !s.ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      return 1;
    }
    // 256 different requests, cycled.
    std::vector<std::vector<Tensor>> requests(256);
    for (auto& req : requests) {
      std::vector<float> x(static_cast<size_t>(rows) * d);
      for (float& v : x) v = static_cast<float>(normal(rng));
      Tensor t;
      t.name = "input";
      t.datatype = DataType::kFp32;
      t.shape = {rows, d};
      t.Own(std::string(reinterpret_cast<const char*>(x.data()), x.size() * sizeof(float)));
      req.push_back(std::move(t));
    }
    const int iters = 200000 / rows;
    double sink = 0;
    auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) {
      Parameters p;
      monitor.Annotate("m", "1", requests[i % requests.size()], &p);
      sink += std::get<double>(p["outlier_score"]);
    }
    const double annotate_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / iters;

    std::vector<const drift::ProfileFeature*> features;
    for (const auto& f : profile.features) features.push_back(&f);
    std::vector<drift::FeatureSketch> window;
    for (const auto* f : features) window.push_back(f->sketch.EmptyLike(200));
    uint64_t unmapped = 0;
    t0 = Clock::now();
    for (int i = 0; i < iters; ++i)
      drift::RecordFeatures::Add(features, features.size(), requests[i % requests.size()], {}, &window, &unmapped);
    const double drift_ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / iters;
    std::printf("| %d x %d | %.0f | %.0f | %.2f |\n", rows, d, annotate_ns, drift_ns, annotate_ns / drift_ns);
    if (sink < 0) std::printf("(impossible)\n");
  }
  return 0;
}
