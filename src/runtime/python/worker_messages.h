#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/shape.h"
#include "core/tensor.h"

// The messages between the server and a Python worker (python/ferry_sdk/worker.py), one
// per SOCK_SEQPACKET packet. Loading (once per worker) is JSON; every infer request and
// reply is a small fixed-layout binary packet (python/ferry_sdk/_wire.py holds the
// worker's side and the layout), so a call costs the worker a few struct unpacks rather
// than JSON parsing. Tensor bytes never travel in messages; they lie in the
// shared-memory region and messages name each tensor's place there.
namespace ferry::runtime::python {

// Tensors start at multiples of this in the region (numpy and SIMD like aligned data).
inline constexpr uint64_t kTensorAlign = 64;
// The largest message either side sends (error messages are cut to fit).
inline constexpr size_t kMaxMessageBytes = 1 << 20;
// The binary infer layout's version; a worker reports it in its load reply ("wire") and
// one from another SDK version is refused at load with a message saying so.
// 3: the UNSUPPORTED reply status and the explain output (kExplainOutput).
inline constexpr int64_t kWireVersion = 3;
// The one output name of an explain call: the worker answers it with Model.explain().
inline constexpr const char* kExplainOutput = "__ferry_explain__";

inline uint64_t AlignUp(uint64_t n) { return (n + kTensorAlign - 1) / kTensorAlign * kTensorAlign; }

// One tensor's place in the region.
struct TensorSlot {
  std::string name;
  DataType datatype = DataType::kInvalid;
  Shape shape;
  uint64_t offset = 0;
  uint64_t size = 0;
};

// Where the inputs go: each at an aligned offset from 0, in order. `end` is where
// the worker may start writing outputs.
struct InputLayout {
  std::vector<TensorSlot> slots;
  uint64_t end = 0;
};
InputLayout LayoutInputs(const std::vector<Tensor>& inputs);

// What the worker needs to load its model.
struct LoadRequest {
  std::string model;
  int64_t version = 0;
  std::string version_dir;
  std::string model_file;
  std::string model_class;  // "module:Class" of a ready runtime; empty: the user's model.py
  int instance = 0;
  std::string config_json;  // the completed config (repository::ModelConfigToJson)
  // Ask the worker for the outputs the loaded model has (names, datatypes, shapes):
  // set when the config's outputs were only guessed before loading.
  bool describe_outputs = false;
};
std::string EncodeLoad(const LoadRequest& load);

// Writes the binary infer request into `*packet` (an output parameter so the caller's
// buffer, reused call after call, keeps its capacity).
void EncodeInfer(uint64_t id, uint64_t shm_size, const InputLayout& layout, const std::vector<std::string>& outputs,
                 std::string* packet);

// A worker's answer to a load or an infer message.
struct WorkerReply {
  uint64_t id = 0;
  bool ok = false;
  bool user_error = false;  // the request's fault (HTTP 400), not the model's (500)
  bool unsupported = false;  // the model lacks what was asked (Model.explain)
  std::string error;        // when !ok: the exception's last line
  uint64_t shm_size = 0;    // the region's size after the worker wrote outputs
  std::vector<TensorSlot> outputs;
  int64_t wire_version = 0;  // a load reply's "wire"; 0 when the worker did not say
  // A load reply to describe_outputs: what the model answers, in its preferred order
  // (shape with -1 for variable dimensions, the batch dimension included).
  struct Described {
    std::string name;
    DataType datatype;
    std::vector<int64_t> shape;
  };
  std::vector<Described> described_outputs;
};

// Parses a load reply (JSON). Errors name what is malformed; they mean a broken worker.
Result<WorkerReply> DecodeReply(std::string_view json);
// Parses a binary infer reply into `*reply` (reused across calls, like EncodeInfer's
// buffer). Errors name what is malformed; they mean a broken worker.
Status DecodeInferReply(std::string_view packet, WorkerReply* reply);

// Checks a successful infer reply before its tensors are read: it answers request
// `id`, gives exactly the `requested` outputs in order, and every slot lies inside
// `region_size` bytes and holds what its datatype and shape say. Errors name the
// output.
Status CheckOutputs(const WorkerReply& reply, uint64_t id, const std::vector<std::string>& requested,
                    uint64_t region_size, const std::byte* region);

}  // namespace ferry::runtime::python
