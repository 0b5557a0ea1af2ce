// Closed-loop gRPC load generator for bench/run_grpc_bench.sh.
//
// N slots, each a closed loop: send one add_sub request, wait for its answer, record the
// latency, send the next.  Two modes on the same code path:
//   unary   one ModelInfer call per request (a fresh call each time, like any unary client);
//   stream  one ModelStreamInfer (bidirectional) stream per slot, opened before the timed
//           window; each request is one message written on it, and its latency runs from
//           the write to the matching response read off the stream.
// Slots are spread round-robin over --connections channels; each channel has its own
// TCP connection (local subchannel pool), so --connections N with N slots is one
// connection per slot, as wrk -cN is for REST.
//
// The client does as little per request as it can, like wrk replaying one pre-formatted
// request: it uses the generic (ByteBuffer) stub with a request serialized once, a single
// thread driving one completion queue, and checks each response by comparing its bytes
// with the first response, which was parsed and checked field by field against the
// expected outputs (--expect, computed by onnxruntime).  A response whose bytes differ is
// parsed and checked in full; only one that fails that check counts as wrong.
//
// Output: one line on stdout,
//   GRPCRESULT label=L mode=M conc=N conns=C requests=R duration_us=D rps=X p50_us=.
//              p90_us=. p99_us=. mean_us=. max_us=. errors=E wrong=W timeouts=T
//              client_cpu_pct=P client_cpu_us_per_req=Q
// where requests/rps/latencies count only requests completed inside the timed window
// (in-flight ones at the end are answered but not counted, as in wrk), and the client CPU
// figures are this process's user + system time over the window.
//
// Other uses:
//   --write-request FILE   write the serialized ModelInferRequest (for ghz -B) and exit.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "protocol/grpc/grpc_service.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr char kUnaryMethod[] = "/inference.GRPCInferenceService/ModelInfer";
constexpr char kStreamMethod[] = "/inference.GRPCInferenceService/ModelStreamInfer";
constexpr int kElements = 16;
constexpr size_t kTensorBytes = kElements * sizeof(float);

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "grpc_load: %s\n", msg.c_str());
  std::exit(2);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) Die("cannot read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

std::string Flatten(const grpc::ByteBuffer& bb) {
  std::vector<grpc::Slice> slices;
  if (!bb.Dump(&slices).ok()) return {};
  std::string out;
  out.reserve(bb.Length());
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer ToByteBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

struct Options {
  std::string target;
  std::string mode = "unary";
  int concurrency = 1;
  int connections = 0;  // 0: one per slot
  double seconds = 10;
  double warmup = 0;
  std::string inputs, expect, label = "-", write_request;
  int timeout_ms = 5000;
};

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + a);
      return argv[++i];
    };
    if (a == "--target") o.target = next();
    else if (a == "--mode") o.mode = next();
    else if (a == "--concurrency") o.concurrency = std::atoi(next().c_str());
    else if (a == "--connections") o.connections = std::atoi(next().c_str());
    else if (a == "--seconds") o.seconds = std::atof(next().c_str());
    else if (a == "--warmup") o.warmup = std::atof(next().c_str());
    else if (a == "--inputs") o.inputs = next();
    else if (a == "--expect") o.expect = next();
    else if (a == "--label") o.label = next();
    else if (a == "--timeout-ms") o.timeout_ms = std::atoi(next().c_str());
    else if (a == "--write-request") o.write_request = next();
    else Die("unknown argument " + a);
  }
  if (o.inputs.empty()) Die("--inputs is required");
  if (o.write_request.empty()) {
    if (o.target.empty() || o.expect.empty()) Die("--target and --expect are required");
    if (o.mode != "unary" && o.mode != "stream") Die("--mode must be unary or stream");
    if (o.concurrency < 1) Die("--concurrency must be >= 1");
    if (o.connections <= 0 || o.connections > o.concurrency) o.connections = o.concurrency;
  }
  return o;
}

inference::ModelInferRequest BuildRequest(const std::string& raw) {
  if (raw.size() != 2 * kTensorBytes) Die("inputs file must hold 2 x 64 bytes (INPUT0, INPUT1 as FP32)");
  inference::ModelInferRequest req;
  req.set_model_name("add_sub");
  req.set_model_version("1");
  for (int i = 0; i < 2; ++i) {
    auto* in = req.add_inputs();
    in->set_name(i == 0 ? "INPUT0" : "INPUT1");
    in->set_datatype("FP32");
    in->add_shape(1);
    in->add_shape(kElements);
    req.add_raw_input_contents(raw.substr(i * kTensorBytes, kTensorBytes));
  }
  req.add_outputs()->set_name("OUTPUT0");
  req.add_outputs()->set_name("OUTPUT1");
  return req;
}

// Full check of one response against the expected outputs; empty string when right.
std::string Check(const inference::ModelInferResponse& r, const std::string& expect) {
  if (r.model_name() != "add_sub") return "model_name '" + r.model_name() + "'";
  if (r.outputs_size() != 2) return "outputs_size " + std::to_string(r.outputs_size());
  if (r.raw_output_contents_size() != 2) return "raw_output_contents_size " + std::to_string(r.raw_output_contents_size());
  bool seen[2] = {false, false};
  for (int i = 0; i < 2; ++i) {
    const auto& o = r.outputs(i);
    int k = o.name() == "OUTPUT0" ? 0 : o.name() == "OUTPUT1" ? 1 : -1;
    if (k < 0 || seen[k]) return "output name '" + o.name() + "'";
    seen[k] = true;
    if (o.datatype() != "FP32") return o.name() + " datatype " + o.datatype();
    if (o.shape_size() != 2 || o.shape(0) != 1 || o.shape(1) != kElements) return o.name() + " shape";
    if (r.raw_output_contents(i) != expect.substr(k * kTensorBytes, kTensorBytes)) return o.name() + " values differ from onnxruntime";
  }
  return {};
}

struct Slot;
enum class Op { kStart, kWrite, kRead, kWritesDone, kFinish };
struct Tag {
  Slot* slot;
  Op op;
};

struct Slot {
  int id = 0;
  grpc::GenericStub* stub = nullptr;
  std::unique_ptr<grpc::ClientContext> ctx;
  std::unique_ptr<grpc::GenericClientAsyncResponseReader> unary;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> stream;
  grpc::ByteBuffer response;
  grpc::Status status;
  Clock::time_point sent;
  bool busy = false;  // a request is in flight
  bool write_done = false, read_done = false;
  bool open = false;    // stream: started and usable
  bool closed = false;  // no more completions expected
  bool cancelled = false;  // stream: cancelled by CheckStalls
  Tag tags[5];
};

class Load {
 public:
  Load(Options o, grpc::ByteBuffer request, std::string expect)
      : o_(std::move(o)), request_(std::move(request)), expect_(std::move(expect)) {}

  int Run() {
    Connect();
    const bool stream = o_.mode == "stream";
    if (stream) OpenStreams();
    // Timed part: optional warm-up, then the window.
    Clock::time_point now = Clock::now();
    const auto warm_end = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.warmup));
    window_start_ = warm_end;
    window_end_ = warm_end + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.seconds));
    latencies_.reserve(static_cast<size_t>(std::max(1.0, o_.seconds) * 200000));
    for (auto& s : slots_) Send(s);
    bool in_window = o_.warmup <= 0;
    if (in_window) cpu_start_ = CpuSeconds();
    bool stopping = false;
    while (live_ > 0) {
      void* tag = nullptr;
      bool ok = false;
      auto st = cq_.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::milliseconds(100));
      now = Clock::now();
      if (!in_window && now >= window_start_) {
        in_window = true;
        cpu_start_ = CpuSeconds();
      }
      if (!stopping && now >= window_end_) {
        stopping = true;
        cpu_end_ = CpuSeconds();
        for (auto& s : slots_) {
          if (!s.busy && !s.closed) Close(s);
        }
      }
      if (st == grpc::CompletionQueue::SHUTDOWN) break;
      if (now - last_stall_check_ >= std::chrono::milliseconds(100)) {
        last_stall_check_ = now;
        CheckStalls(now);
      }
      if (st == grpc::CompletionQueue::TIMEOUT) continue;
      Handle(*static_cast<Tag*>(tag), ok, now, stopping);
    }
    if (!stopping) cpu_end_ = CpuSeconds();
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
    Report();
    return 0;
  }

 private:
  void Connect() {
    for (int i = 0; i < o_.connections; ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // own connection per channel
      args.SetInt("ferry.bench.channel", i);
      args.SetMaxReceiveMessageSize(-1);
      auto ch = grpc::CreateCustomChannel(o_.target, grpc::InsecureChannelCredentials(), args);
      if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
        Die("channel " + std::to_string(i) + " did not connect to " + o_.target + " within 10 s");
      }
      stubs_.push_back(std::make_unique<grpc::GenericStub>(ch));
      channels_.push_back(std::move(ch));
    }
    slots_ = std::vector<Slot>(o_.concurrency);
    for (int i = 0; i < o_.concurrency; ++i) {
      Slot& s = slots_[i];
      s.id = i;
      s.stub = stubs_[i % o_.connections].get();
      for (int k = 0; k < 5; ++k) s.tags[k] = Tag{&s, static_cast<Op>(k)};
    }
    live_ = o_.concurrency;
  }

  void OpenStreams() {
    for (auto& s : slots_) {
      s.ctx = std::make_unique<grpc::ClientContext>();
      s.stream = s.stub->PrepareCall(s.ctx.get(), kStreamMethod, &cq_);
      s.stream->StartCall(&s.tags[static_cast<int>(Op::kStart)]);
    }
    int started = 0;
    while (started < o_.concurrency) {
      void* tag;
      bool ok;
      auto st = cq_.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + std::chrono::seconds(10));
      if (st != grpc::CompletionQueue::GOT_EVENT) Die("streams did not start within 10 s");
      auto* t = static_cast<Tag*>(tag);
      if (t->op != Op::kStart || !ok) Die("stream " + std::to_string(t->slot->id) + " failed to start");
      t->slot->open = true;
      ++started;
    }
  }

  void Send(Slot& s) {
    s.busy = true;
    s.sent = Clock::now();
    if (o_.mode == "unary") {
      s.ctx = std::make_unique<grpc::ClientContext>();
      s.ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o_.timeout_ms));
      s.unary = s.stub->PrepareUnaryCall(s.ctx.get(), kUnaryMethod, request_, &cq_);
      s.unary->StartCall();
      s.unary->Finish(&s.response, &s.status, &s.tags[static_cast<int>(Op::kFinish)]);
    } else {
      s.write_done = s.read_done = false;
      s.stream->Write(request_, &s.tags[static_cast<int>(Op::kWrite)]);
      s.stream->Read(&s.response, &s.tags[static_cast<int>(Op::kRead)]);
    }
  }

  // Stream: stop writing and collect the final status.  Unary: nothing to do.
  void Close(Slot& s) {
    if (o_.mode == "unary") {
      if (!s.closed) {
        s.closed = true;
        --live_;
      }
      return;
    }
    if (!s.open) return;  // broken stream: its pending Finish closes the slot
    s.open = false;
    s.stream->WritesDone(&s.tags[static_cast<int>(Op::kWritesDone)]);
  }

  void Handle(Tag& t, bool ok, Clock::time_point now, bool stopping) {
    Slot& s = *t.slot;
    switch (t.op) {
      case Op::kStart:
        break;
      case Op::kFinish:
        if (o_.mode == "unary") {
          if (s.status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) ++timeouts_;
          Completed(s, now, s.status.ok() ? "" : "status " + std::to_string(s.status.error_code()) + ": " + s.status.error_message(), true);
          s.unary.reset();
          if (stopping || s.status.error_code() == grpc::StatusCode::UNAVAILABLE) Close(s);
          else Send(s);
        } else {
          if (!s.status.ok() && !s.cancelled) {  // a stall we cancelled is already counted
            ++errors_;
            Note("stream " + std::to_string(s.id) + " finished with status " + std::to_string(s.status.error_code()) + ": " +
                 s.status.error_message());
          }
          s.closed = true;
          --live_;
        }
        break;
      case Op::kWritesDone:
        s.stream->Finish(&s.status, &s.tags[static_cast<int>(Op::kFinish)]);
        break;
      case Op::kWrite:
      case Op::kRead:
        if (!ok) {
          // The stream broke: the server ended it or the connection went away.
          if (s.busy) {
            ++errors_;
            Note(std::string("stream ") + std::to_string(s.id) + (t.op == Op::kRead ? " read" : " write") + " failed mid-request");
            s.busy = false;
          }
          if (s.open) {
            s.open = false;
            s.stream->Finish(&s.status, &s.tags[static_cast<int>(Op::kFinish)]);
          }
          break;
        }
        (t.op == Op::kWrite ? s.write_done : s.read_done) = true;
        if (s.write_done && s.read_done && s.busy) {
          Completed(s, now, "", false);
          if (stopping) Close(s);
          else Send(s);
        }
        break;
    }
  }

  void Completed(Slot& s, Clock::time_point now, const std::string& error, bool unary) {
    s.busy = false;
    const bool counted = now >= window_start_ && now <= window_end_;
    if (!error.empty()) {
      ++errors_;
      Note(error);
      return;
    }
    std::string bytes = Flatten(s.response);
    if (bytes != reference_) {
      std::string why;
      inference::ModelInferResponse parsed;
      if (unary) {
        if (!parsed.ParseFromString(bytes)) why = "unparsable ModelInferResponse";
      } else {
        inference::ModelStreamInferResponse sr;
        if (!sr.ParseFromString(bytes)) why = "unparsable ModelStreamInferResponse";
        else if (!sr.error_message().empty()) why = "stream error_message: " + sr.error_message();
        else parsed = sr.infer_response();
      }
      if (why.empty()) why = Check(parsed, expect_);
      if (!why.empty()) {
        ++wrong_;
        Note("wrong response: " + why);
        return;
      }
      if (reference_.empty()) reference_ = std::move(bytes);
      else ++nonidentical_;
    }
    if (counted) latencies_.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(now - s.sent).count());
  }

  void CheckStalls(Clock::time_point now) {
    for (auto& s : slots_) {
      if (s.busy && now - s.sent > std::chrono::milliseconds(o_.timeout_ms) && o_.mode == "stream") {
        ++timeouts_;
        Note("stream " + std::to_string(s.id) + ": no response within " + std::to_string(o_.timeout_ms) + " ms; cancelling");
        s.busy = false;
        s.cancelled = true;
        s.ctx->TryCancel();
      }
    }
  }

  void Note(const std::string& what) {
    if (notes_ < 10) std::fprintf(stderr, "grpc_load[%s]: %s\n", o_.label.c_str(), what.c_str());
    ++notes_;
  }

  void Report() {
    std::sort(latencies_.begin(), latencies_.end());
    const size_t n = latencies_.size();
    auto pct = [&](double p) -> double {
      if (n == 0) return 0;
      size_t rank = static_cast<size_t>(std::ceil(p / 100.0 * n));
      return latencies_[std::min(n - 1, rank == 0 ? 0 : rank - 1)] / 1000.0;
    };
    double sum = 0;
    for (auto v : latencies_) sum += v;
    const double secs = std::chrono::duration<double>(window_end_ - window_start_).count();
    const double cpu = cpu_end_ - cpu_start_;
    std::printf(
        "GRPCRESULT label=%s mode=%s conc=%d conns=%d requests=%zu duration_us=%.0f rps=%.1f p50_us=%.0f p90_us=%.0f "
        "p99_us=%.0f mean_us=%.1f max_us=%.0f errors=%lld wrong=%lld timeouts=%lld nonidentical=%lld "
        "client_cpu_pct=%.1f client_cpu_us_per_req=%.2f\n",
        o_.label.c_str(), o_.mode.c_str(), o_.concurrency, o_.connections, n, secs * 1e6, n / secs, pct(50), pct(90),
        pct(99), n ? sum / n / 1000.0 : 0.0, n ? latencies_.back() / 1000.0 : 0.0, errors_, wrong_, timeouts_, nonidentical_,
        100.0 * cpu / secs, n ? cpu * 1e6 / n : 0.0);
    std::fflush(stdout);
  }

  Options o_;
  grpc::ByteBuffer request_;
  std::string expect_;
  std::string reference_;  // bytes of the first fully checked response
  grpc::CompletionQueue cq_;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<grpc::GenericStub>> stubs_;
  std::vector<Slot> slots_;
  int live_ = 0;
  Clock::time_point window_start_, window_end_, last_stall_check_;
  double cpu_start_ = 0, cpu_end_ = 0;
  std::vector<int64_t> latencies_;
  long long errors_ = 0, wrong_ = 0, timeouts_ = 0, nonidentical_ = 0, notes_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = Parse(argc, argv);
  inference::ModelInferRequest req = BuildRequest(ReadFile(o.inputs));
  std::string bytes;
  if (!req.SerializeToString(&bytes)) Die("cannot serialize the request");
  if (!o.write_request.empty()) {
    std::ofstream f(o.write_request, std::ios::binary);
    f << bytes;
    if (!f) Die("cannot write " + o.write_request);
    return 0;
  }
  std::string expect = ReadFile(o.expect);
  if (expect.size() != 2 * kTensorBytes) Die("expect file must hold 2 x 64 bytes (OUTPUT0, OUTPUT1 as FP32)");
  Load load(std::move(o), ToByteBuffer(bytes), std::move(expect));
  return load.Run();
}
