// In-process ceiling for bench/run_batch_bench.sh: the runtime alone on the batches ferry
// batch sends. Reads a C-order float32 .npy of N x F rows, runs the model through ONNX
// Runtime's C API on consecutive batches of B rows (the last one shorter), one Run() at a
// time, with the session options ferry uses (INTRA intra-op threads, 1 inter-op thread,
// ORT_ENABLE_ALL). No parsing, no formatting, no queue: only wrapping each batch in an
// OrtValue (no copy), Run() for every output, and releasing the values.
//
// Usage: batch_inprocess MODEL.onnx ROWS.npy BATCH INTRA_OP_THREADS
// Prints: CEILING rows=N batch=B seconds=S rows_per_s=R checksum=C
//   (checksum: the sum of the first output over all rows, so the work cannot be skipped)

#include <onnxruntime_c_api.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

const OrtApi* g_ort = nullptr;

void Check(OrtStatus* s, const char* what) {
  if (s == nullptr) return;
  std::fprintf(stderr, "batch_inprocess: %s: %s\n", what, g_ort->GetErrorMessage(s));
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s MODEL.onnx ROWS.npy BATCH INTRA_OP_THREADS\n", argv[0]);
    return 2;
  }
  std::ifstream in(argv[2], std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string file = ss.str();
  // The .npy header: magic, version 1.0, little-endian length, then the dict.
  if (file.size() < 10 || file.compare(0, 6, "\x93NUMPY") != 0 || file[6] != 1) {
    std::fprintf(stderr, "batch_inprocess: %s is not a version 1.0 .npy file\n", argv[2]);
    return 1;
  }
  const size_t header = 10 + (static_cast<unsigned char>(file[8]) | static_cast<unsigned char>(file[9]) << 8);
  const std::string dict = file.substr(10, header - 10);
  long rows = 0, features = 0;
  if (dict.find("'<f4'") == std::string::npos ||
      std::sscanf(dict.c_str() + dict.find("'shape': (") + 10, "%ld, %ld", &rows, &features) != 2) {
    std::fprintf(stderr, "batch_inprocess: %s must hold a 2-D float32 array\n", argv[2]);
    return 1;
  }
  const float* data = reinterpret_cast<const float*>(file.data() + header);
  const long batch = std::atol(argv[3]);
  const int intra = std::atoi(argv[4]);

  g_ort = OrtGetApiBase()->GetApi(ORT_API_VERSION);
  OrtEnv* env = nullptr;
  Check(g_ort->CreateEnv(ORT_LOGGING_LEVEL_WARNING, "batch_inprocess", &env), "CreateEnv");
  OrtSessionOptions* opts = nullptr;
  Check(g_ort->CreateSessionOptions(&opts), "CreateSessionOptions");
  Check(g_ort->SetIntraOpNumThreads(opts, intra), "SetIntraOpNumThreads");
  Check(g_ort->SetInterOpNumThreads(opts, 1), "SetInterOpNumThreads");
  Check(g_ort->SetSessionGraphOptimizationLevel(opts, ORT_ENABLE_ALL), "SetSessionGraphOptimizationLevel");
  OrtSession* session = nullptr;
  Check(g_ort->CreateSession(env, argv[1], opts, &session), "CreateSession");
  OrtMemoryInfo* mem = nullptr;
  Check(g_ort->CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &mem), "CreateCpuMemoryInfo");
  OrtAllocator* alloc = nullptr;
  Check(g_ort->GetAllocatorWithDefaultOptions(&alloc), "GetAllocator");
  char* in_name = nullptr;
  Check(g_ort->SessionGetInputName(session, 0, alloc, &in_name), "SessionGetInputName");
  size_t n_out = 0;
  Check(g_ort->SessionGetOutputCount(session, &n_out), "SessionGetOutputCount");
  std::vector<char*> out_names(n_out);
  for (size_t i = 0; i < n_out; ++i) Check(g_ort->SessionGetOutputName(session, i, alloc, &out_names[i]), "GetOutputName");

  double checksum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (long start = 0; start < rows; start += batch) {
    const long n = std::min(batch, rows - start);
    const int64_t shape[2] = {n, features};
    OrtValue* input = nullptr;
    Check(g_ort->CreateTensorWithDataAsOrtValue(mem, const_cast<float*>(data + start * features),
                                                static_cast<size_t>(n * features) * sizeof(float), shape, 2,
                                                ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, &input),
          "CreateTensor");
    std::vector<OrtValue*> outputs(n_out, nullptr);
    const char* names[] = {in_name};
    Check(g_ort->Run(session, nullptr, names, &input, 1, out_names.data(), n_out, outputs.data()), "Run");
    float* y = nullptr;
    Check(g_ort->GetTensorMutableData(outputs[0], reinterpret_cast<void**>(&y)), "GetTensorMutableData");
    checksum += y[0];
    for (auto* o : outputs) g_ort->ReleaseValue(o);
    g_ort->ReleaseValue(input);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("CEILING rows=%ld batch=%ld seconds=%.3f rows_per_s=%.0f checksum=%.4f\n", rows, batch, s, rows / s,
              checksum);
  return 0;
}
