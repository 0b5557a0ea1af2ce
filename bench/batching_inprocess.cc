// In-process ceiling for bench/run_batching_bench.sh: the benchmark's MLP called through the
// ONNX Runtime C API in a loop, at each batch size given, with the session options ferry
// uses (1 intra-op thread, 1 inter-op thread, ORT_ENABLE_ALL).  Run it under
// `taskset -c <server core>` so it has the one core ferry has.
//
// Usage: batching_inprocess MODEL.onnx ROWS.f32 REF.f32 SECONDS_PER_SIZE SIZE [SIZE...]
//   ROWS.f32  64 x 256 little-endian float32 input rows; a batch of b takes rows 0..b-1
//             (cycling when b > 64)
//   REF.f32   onnxruntime Python's outputs for those rows, 64 x 16
// Every batch size's first call is checked against REF (|diff| <= 1e-4 + 1e-4 |ref|).
//
// Each call wraps the batch's rows in an OrtValue (no copy), runs the model and releases
// the values, as ferry does per execution.  Output, one line per size:
//   INPROC batch=B calls=N seconds=S calls_per_s=C rows_per_s=R mean_us=M p50_us=P p99_us=Q
//          min_us=X max_abs_err=E

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "onnxruntime_c_api.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kIn = 256;
constexpr int kOut = 16;
constexpr int kRows = 64;

const OrtApi* g_ort = nullptr;

void Check(OrtStatus* s, const char* what) {
  if (s == nullptr) return;
  std::fprintf(stderr, "batching_inprocess: %s: %s\n", what, g_ort->GetErrorMessage(s));
  g_ort->ReleaseStatus(s);
  std::exit(1);
}

std::vector<float> ReadFloats(const char* path, size_t n) {
  std::ifstream f(path, std::ios::binary);
  std::vector<float> v(n);
  if (!f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(float)))) {
    std::fprintf(stderr, "batching_inprocess: cannot read %zu floats from %s\n", n, path);
    std::exit(1);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s MODEL.onnx ROWS.f32 REF.f32 SECONDS_PER_SIZE SIZE [SIZE...]\n", argv[0]);
    return 2;
  }
  const double seconds = std::atof(argv[4]);
  std::vector<int> sizes;
  for (int i = 5; i < argc; ++i) sizes.push_back(std::atoi(argv[i]));
  const std::vector<float> rows = ReadFloats(argv[2], static_cast<size_t>(kRows) * kIn);
  const std::vector<float> ref = ReadFloats(argv[3], static_cast<size_t>(kRows) * kOut);

  g_ort = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  OrtEnv* env = nullptr;
  Check(g_ort->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "batching_inprocess", &env), "CreateEnv");
  OrtSessionOptions* opts = nullptr;
  Check(g_ort->CreateSessionOptions(&opts), "CreateSessionOptions");
  Check(g_ort->SetIntraOpNumThreads(opts, 1), "SetIntraOpNumThreads");
  Check(g_ort->SetInterOpNumThreads(opts, 1), "SetInterOpNumThreads");
  Check(g_ort->SetSessionGraphOptimizationLevel(opts, ORT_ENABLE_ALL), "SetSessionGraphOptimizationLevel");
  OrtSession* session = nullptr;
  Check(g_ort->CreateSession(env, argv[1], opts, &session), "CreateSession");
  OrtMemoryInfo* mem = nullptr;
  Check(g_ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem), "CreateCpuMemoryInfo");
  const char* in_names[1] = {"x"};
  const char* out_names[1] = {"y"};

  for (int b : sizes) {
    if (b < 1) {
      std::fprintf(stderr, "batching_inprocess: bad batch size %d\n", b);
      return 2;
    }
    std::vector<float> input(static_cast<size_t>(b) * kIn);
    for (int r = 0; r < b; ++r)
      std::copy_n(rows.begin() + static_cast<ptrdiff_t>(r % kRows) * kIn, kIn, input.begin() + static_cast<ptrdiff_t>(r) * kIn);
    const int64_t shape[2] = {b, kIn};
    double max_err = 0;

    auto call = [&](bool verify) {
      OrtValue* in = nullptr;
      Check(g_ort->CreateTensorWithDataAsOrtValue(mem, input.data(), input.size() * sizeof(float), shape, 2,
                                                  ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &in),
            "x");
      OrtValue* out = nullptr;
      Check(g_ort->Run(session, nullptr, in_names, &in, 1, out_names, 1, &out), "Run");
      if (verify) {
        float* y = nullptr;
        Check(g_ort->GetTensorMutableData(out, reinterpret_cast<void**>(&y)), "y data");
        for (int r = 0; r < b; ++r) {
          for (int j = 0; j < kOut; ++j) {
            const double want = ref[static_cast<size_t>(r % kRows) * kOut + j];
            const double got = y[static_cast<size_t>(r) * kOut + j];
            const double err = std::fabs(got - want);
            max_err = std::max(max_err, err);
            if (err > 1e-4 + 1e-4 * std::fabs(want)) {
              std::fprintf(stderr, "batching_inprocess: batch %d row %d y[%d] = %g, onnxruntime Python says %g\n", b,
                           r, j, got, want);
              std::exit(1);
            }
          }
        }
      }
      g_ort->ReleaseValue(out);
      g_ort->ReleaseValue(in);
    };

    call(true);
    // Warm-up: a tenth of the timed length, at least 3 calls.
    const auto warm_end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds / 10));
    for (int i = 0; i < 3 || Clock::now() < warm_end; ++i) call(false);

    std::vector<double> per_call_us;
    per_call_us.reserve(1 << 20);
    const auto start = Clock::now();
    const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    auto t = start;
    while (t < end || per_call_us.size() < 5) {
      call(false);
      auto now = Clock::now();
      per_call_us.push_back(std::chrono::duration<double, std::micro>(now - t).count());
      t = now;
    }
    const double total_s = std::chrono::duration<double>(t - start).count();
    const size_t n = per_call_us.size();
    std::vector<double> sorted = per_call_us;
    std::sort(sorted.begin(), sorted.end());
    auto pct = [&](double p) { return sorted[std::min(n - 1, static_cast<size_t>(p / 100.0 * static_cast<double>(n)))]; };
    const double rate = static_cast<double>(n) / total_s;
    std::printf(
        "INPROC batch=%d calls=%zu seconds=%.3f calls_per_s=%.1f rows_per_s=%.1f mean_us=%.2f p50_us=%.2f "
        "p99_us=%.2f min_us=%.2f max_abs_err=%.3g\n",
        b, n, total_s, rate, rate * b, total_s * 1e6 / static_cast<double>(n), pct(50), pct(99), sorted[0], max_err);
    std::fflush(stdout);
  }

  g_ort->ReleaseMemoryInfo(mem);
  g_ort->ReleaseSession(session);
  g_ort->ReleaseSessionOptions(opts);
  g_ort->ReleaseEnv(env);
  return 0;
}
