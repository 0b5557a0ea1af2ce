// ferry's side of bench/run_drift_bench.sh: the drift library (windows + tests) on the
// streams drift_quality.py wrote. Reads a reference (N x d) and R windows (R*n x d) of
// float64, little-endian, row-major; builds the reference profile as `ferry profile
// build` does (ProfileBuilder, KLL k = 200), then for each window adds its rows to the
// open step of a one-step SlidingWindow as one block, as DriftMonitor::ConsumeRows adds
// a request of that many rows (AddRows: counted in the reference's knots,
// FeatureSketch::ExactWindow; with K given, KLL window sketches of that k instead),
// seals it and evaluates the window (EvaluateDrift, KS per feature, Bonferroni). Prints one JSON object: per window the Bonferroni score min(p)·d
// (capped at 1) and the drift flag at alpha 0.05, plus the CPU seconds spent in updates
// and in evaluations.
//
//   drift_bench REF.f64 N_REF D WINDOWS.f64 N R [K]
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "monitoring/drift/drift_evaluation.h"
#include "monitoring/drift/profile_builder.h"
#include "monitoring/drift/sliding_window.h"

using namespace ferry::monitoring::drift;

static std::vector<double> ReadF64(const char* path, size_t count) {
  std::vector<double> v(count);
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(count * sizeof(double)))) {
    std::fprintf(stderr, "drift_bench: %s: cannot read %zu doubles\n", path, count);
    std::exit(2);
  }
  return v;
}

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: drift_bench REF.f64 N_REF D WINDOWS.f64 N R [K]\n");
    return 2;
  }
  const size_t n_ref = std::strtoul(argv[2], nullptr, 10), d = std::strtoul(argv[3], nullptr, 10);
  const size_t n = std::strtoul(argv[5], nullptr, 10), reps = std::strtoul(argv[6], nullptr, 10);
  const bool sketched = argc > 7;  // KLL window sketches of k (the form before exact windows)
  const uint32_t k = sketched ? static_cast<uint32_t>(std::strtoul(argv[7], nullptr, 10)) : 200;
  const std::vector<double> ref = ReadF64(argv[1], n_ref * d);
  const std::vector<double> win = ReadF64(argv[4], reps * n * d);

  ProfileBuilder builder({200, 10, 64});
  for (size_t j = 0; j < d; ++j) builder.AddFeature("f" + std::to_string(j), FeatureKind::kNumeric, "", j);
  for (size_t i = 0; i < n_ref; ++i) {
    for (size_t j = 0; j < d; ++j) builder.AddNumber(j, ref[i * d + j]);
    builder.CountRow();
  }
  const ReferenceProfile profile = builder.Finish("bench");
  std::vector<const ProfileFeature*> features;
  for (const auto& f : profile.features) features.push_back(&f);
  // As DriftMonitor does at load: the knots built (or the reference sorted) once, not
  // per evaluation.
  std::vector<FeatureSketch> empty;
  for (const auto* f : features)
    empty.push_back(sketched ? f->sketch.EmptyLike(k) : f->sketch.ExactWindow(ReferenceKnots::Build(f->sketch)));
  const SortedReference sorted = sketched ? SortReference(features) : SortedReference{};

  // CPU time of this process, as drift_quality.py takes alibi-detect's: on a loaded
  // machine a wall clock favours the short timed runs (ferry's fit in a time slice,
  // alibi-detect's seconds are preempted in proportion to the load).
  auto cpu_seconds = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  double update_s = 0, eval_s = 0;
  std::printf("{\"k\": %u, \"scores\": [", k);
  std::vector<int> flags;
  // A window of one step, as DriftMonitor keeps them: rows into the open step, sealed
  // (the last window's step leaves), and the closed steps merged for the evaluation.
  SlidingWindow window(empty, 1);
  std::vector<FeatureSketch> merged;
  for (size_t r = 0; r < reps; ++r) {
    const double t0 = cpu_seconds();
    const double* rows = win.data() + r * n * d;
    // The window's rows as one block, as DriftMonitor::ConsumeRows adds a request of n
    // rows (AddRows, column by column; a sketched window takes each value by AddNumber).
    AddRows(window.open(), rows, n);
    window.CountRows(n);
    const double t1 = cpu_seconds();
    window.Seal();
    const DriftEvaluation ev =
        EvaluateDrift(features, window.Window(&merged), DriftOptions{}, sketched ? &sorted : nullptr);
    const double t2 = cpu_seconds();
    update_s += t1 - t0;
    eval_s += t2 - t1;
    double min_p = 1;
    for (const auto& f : ev.features) min_p = std::min(min_p, f.p_value.value_or(1.0));
    std::printf("%s%.17g", r ? ", " : "", std::min(1.0, min_p * static_cast<double>(d)));
    flags.push_back(ev.drift ? 1 : 0);
  }
  std::printf("], \"drift\": [");
  for (size_t r = 0; r < flags.size(); ++r) std::printf("%s%d", r ? ", " : "", flags[r]);
  std::printf("], \"update_seconds\": %.9f, \"eval_seconds\": %.9f, \"rows\": %zu}\n", update_s, eval_s, reps * n);
  return 0;
}
