// In-process ceiling for bench/run_rest_bench.sh: add_sub version 1 at batch 1, called in a
// loop through ONNX Runtime's C API with the session options ferry uses (one intra-op and
// one inter-op thread, ORT_ENABLE_ALL), no HTTP, no JSON, no queue.
//
// Each call does what any caller must: wrap the two [1,16] FP32 inputs in OrtValues,
// Run() for both outputs (ONNX Runtime allocates them), release everything.  The first
// call's outputs are checked against OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1.
//
// usage: inprocess_ort MODEL.onnx [SECONDS=3]
// prints: INPROC calls=N seconds=S calls_per_s=R mean_us=M p50_us=A p99_us=B
//
// Pinning is left to the caller (the script runs it under `taskset -c 0`).

#include <onnxruntime_c_api.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

const OrtApi* g_ort = nullptr;

void Check(OrtStatus* s, const char* what) {
  if (s == nullptr) return;
  std::fprintf(stderr, "inprocess_ort: %s: %s\n", what, g_ort->GetErrorMessage(s));
  g_ort->ReleaseStatus(s);
  std::exit(1);
}

using Clock = std::chrono::steady_clock;

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL.onnx [SECONDS]\n", argv[0]);
    return 2;
  }
  const double seconds = argc > 2 ? std::atof(argv[2]) : 3.0;
  g_ort = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  if (g_ort == nullptr) {
    std::fprintf(stderr, "inprocess_ort: this ONNX Runtime does not offer API version %d\n", ORT_API_VERSION);
    return 1;
  }

  OrtEnv* env = nullptr;
  Check(g_ort->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "inprocess_ort", &env), "CreateEnv");
  OrtSessionOptions* opts = nullptr;
  Check(g_ort->CreateSessionOptions(&opts), "CreateSessionOptions");
  Check(g_ort->SetIntraOpNumThreads(opts, 1), "SetIntraOpNumThreads");
  Check(g_ort->SetInterOpNumThreads(opts, 1), "SetInterOpNumThreads");
  Check(g_ort->SetSessionGraphOptimizationLevel(opts, ORT_ENABLE_ALL), "SetSessionGraphOptimizationLevel");
  OrtSession* session = nullptr;
  Check(g_ort->CreateSession(env, argv[1], opts, &session), "CreateSession");
  OrtMemoryInfo* mem = nullptr;
  Check(g_ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem), "CreateCpuMemoryInfo");

  constexpr int kN = 16;
  float in0[kN], in1[kN];
  for (int i = 0; i < kN; ++i) {
    in0[i] = 0.25f * static_cast<float>(i) - 1.5f;
    in1[i] = 3.0f - 0.5f * static_cast<float>(i);
  }
  const int64_t shape[2] = {1, kN};
  const char* in_names[2] = {"INPUT0", "INPUT1"};
  const char* out_names[2] = {"OUTPUT0", "OUTPUT1"};

  auto call = [&](bool verify) {
    OrtValue* inputs[2] = {nullptr, nullptr};
    Check(g_ort->CreateTensorWithDataAsOrtValue(mem, in0, sizeof in0, shape, 2, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                &inputs[0]),
          "INPUT0");
    Check(g_ort->CreateTensorWithDataAsOrtValue(mem, in1, sizeof in1, shape, 2, ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT,
                                                &inputs[1]),
          "INPUT1");
    OrtValue* outputs[2] = {nullptr, nullptr};
    Check(g_ort->Run(session, nullptr, in_names, inputs, 2, out_names, 2, outputs), "Run");
    if (verify) {
      float* o0 = nullptr;
      float* o1 = nullptr;
      Check(g_ort->GetTensorMutableData(outputs[0], reinterpret_cast<void**>(&o0)), "OUTPUT0 data");
      Check(g_ort->GetTensorMutableData(outputs[1], reinterpret_cast<void**>(&o1)), "OUTPUT1 data");
      for (int i = 0; i < kN; ++i) {
        if (std::fabs(o0[i] - (in0[i] + in1[i])) > 1e-6f || std::fabs(o1[i] - (in0[i] - in1[i])) > 1e-6f) {
          std::fprintf(stderr, "inprocess_ort: wrong output at %d: %g %g (inputs %g %g); not add_sub v1?\n", i, o0[i],
                       o1[i], in0[i], in1[i]);
          std::exit(1);
        }
      }
    }
    for (OrtValue* v : outputs) g_ort->ReleaseValue(v);
    for (OrtValue* v : inputs) g_ort->ReleaseValue(v);
  };

  call(true);
  for (int i = 0; i < 2000; ++i) call(false);  // warm-up: arena, caches, branch predictors

  std::vector<double> per_call_us;
  per_call_us.reserve(1 << 22);
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  auto t = start;
  while (t < end) {
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
  std::printf("INPROC calls=%zu seconds=%.3f calls_per_s=%.1f mean_us=%.2f p50_us=%.2f p99_us=%.2f\n", n, total_s,
              static_cast<double>(n) / total_s, total_s * 1e6 / static_cast<double>(n), pct(50), pct(99));

  g_ort->ReleaseMemoryInfo(mem);
  g_ort->ReleaseSession(session);
  g_ort->ReleaseSessionOptions(opts);
  g_ort->ReleaseEnv(env);
  return 0;
}
