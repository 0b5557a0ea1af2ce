#include "batch/remote_backend.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "core/data_type.h"
#include "core/log.h"
#include "protocol/grpc/grpc_service.grpc.pb.h"

namespace ferry::batch {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

struct Answer {
  int status = 0;
  std::string body;
  std::optional<size_t> header_length;  // Inference-Header-Content-Length
};

// One keep-alive HTTP/1.1 connection; reconnects on the next exchange after a failure.
class Connection {
 public:
  Connection(std::string host, std::string port, std::chrono::milliseconds timeout)
      : host_(std::move(host)), port_(std::move(port)), timeout_(timeout) {}

  // UNAVAILABLE when no answer came (resolve, connect, send, receive, timeout).
  Result<Answer> Exchange(bhttp::verb verb, const std::string& target, std::string body,
                          std::optional<size_t> header_length) {
    try {
      beast::error_code ec;
      if (!stream_) {
        stream_.emplace(io_);
        stream_->expires_after(timeout_);
        asio::ip::tcp::resolver resolver(io_);
        auto endpoints = resolver.resolve(host_, port_, ec);
        if (ec) return Drop("cannot resolve '" + host_ + "': " + ec.message());
        stream_->connect(endpoints, ec);
        if (ec) return Drop("cannot connect to " + host_ + ":" + port_ + ": " + ec.message());
      }
      stream_->expires_after(timeout_);
      bhttp::request<bhttp::string_body> req{verb, target, 11};
      req.set(bhttp::field::host, host_ + ":" + port_);
      req.set(bhttp::field::user_agent, "ferry-batch");
      req.keep_alive(true);
      if (header_length) {
        req.set(bhttp::field::content_type, "application/octet-stream");
        req.set("Inference-Header-Content-Length", std::to_string(*header_length));
      } else if (!body.empty()) {
        req.set(bhttp::field::content_type, "application/json");
      }
      req.body() = std::move(body);
      req.prepare_payload();
      bhttp::write(*stream_, req, ec);
      if (ec) return Drop("send: " + ec.message());
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(std::numeric_limits<std::uint64_t>::max());
      bhttp::read(*stream_, buffer_, parser, ec);
      if (ec) return Drop("receive: " + ec.message());
      auto& res = parser.get();
      Answer a;
      a.status = static_cast<int>(res.result_int());
      if (auto it = res.find("Inference-Header-Content-Length"); it != res.end()) {
        try {
          a.header_length = std::stoull(std::string(it->value()));
        } catch (const std::exception&) {
          return Drop("a bad Inference-Header-Content-Length '" + std::string(it->value()) + "'");
        }
      }
      if (!res.keep_alive()) stream_.reset();
      a.body = std::move(res.body());
      return a;
    } catch (const std::exception& e) {
      return Drop(e.what());
    }
  }

 private:
  Status Drop(const std::string& why) {
    stream_.reset();
    buffer_.clear();
    return Unavailable(why);
  }

  std::string host_, port_;
  std::chrono::milliseconds timeout_;
  asio::io_context io_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

std::string ErrorOf(const Answer& a) {
  rapidjson::Document d;
  d.Parse(a.body.data(), a.body.size());
  if (!d.HasParseError() && d.IsObject() && d.HasMember("error") && d["error"].IsString())
    return std::string(d["error"].GetString(), d["error"].GetStringLength());
  return "HTTP " + std::to_string(a.status) + (a.body.empty() ? "" : ": " + a.body.substr(0, 200));
}

// The request as the binary tensor extension frames it: a JSON header, then each input's bytes.
std::pair<std::string, size_t> EncodeRequest(const InferRequest& r) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("inputs");
  w.StartArray();
  for (const Tensor& t : r.inputs) {
    w.StartObject();
    w.Key("name");
    w.String(t.name.c_str());
    w.Key("datatype");
    const std::string_view dt = DataTypeName(t.datatype);
    w.String(dt.data(), static_cast<rapidjson::SizeType>(dt.size()));
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape) w.Int64(d);
    w.EndArray();
    w.Key("parameters");
    w.StartObject();
    w.Key("binary_data_size");
    w.Uint64(t.byte_size());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.Key("outputs");
  w.StartArray();
  for (const auto& o : r.outputs) {
    w.StartObject();
    w.Key("name");
    w.String(o.name.c_str());
    w.Key("parameters");
    w.StartObject();
    w.Key("binary_data");
    w.Bool(true);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::string body(sb.GetString(), sb.GetSize());
  const size_t header = body.size();
  for (const Tensor& t : r.inputs) body.append(t.bytes());
  return {std::move(body), header};
}

Result<InferResponse> DecodeResponse(const Answer& a) {
  const size_t header = a.header_length.value_or(a.body.size());
  if (header > a.body.size()) return Internal("the response's JSON header is longer than its body");
  rapidjson::Document d;
  d.Parse(a.body.data(), header);
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("outputs") || !d["outputs"].IsArray())
    return Internal("the response is not a V2 inference response");
  InferResponse resp;
  if (d.HasMember("model_version") && d["model_version"].IsString()) resp.model_version = d["model_version"].GetString();
  size_t at = header;
  for (const auto& o : d["outputs"].GetArray()) {
    if (!o.IsObject() || !o.HasMember("name") || !o["name"].IsString() || !o.HasMember("datatype") ||
        !o["datatype"].IsString() || !o.HasMember("shape") || !o["shape"].IsArray())
      return Internal("a response output lacks name, datatype or shape");
    Tensor t;
    t.name = o["name"].GetString();
    auto dt = DataTypeFromName(o["datatype"].GetString());
    if (!dt) return Internal("output '" + t.name + "': unknown datatype '" + o["datatype"].GetString() + "'");
    t.datatype = *dt;
    for (const auto& s : o["shape"].GetArray()) {
      if (!s.IsInt64()) return Internal("output '" + t.name + "': a shape that is not integers");
      t.shape.push_back(s.GetInt64());
    }
    const auto* params = o.HasMember("parameters") && o["parameters"].IsObject() ? &o["parameters"] : nullptr;
    if (!params || !params->HasMember("binary_data_size") || !(*params)["binary_data_size"].IsUint64())
      return Internal("output '" + t.name + "' came without binary data (the server ignored binary_data)");
    const size_t n = (*params)["binary_data_size"].GetUint64();
    if (n > a.body.size() - at) return Internal("output '" + t.name + "': binary data past the end of the response");
    t.Own(a.body.substr(at, n));
    at += n;
    resp.outputs.push_back(std::move(t));
  }
  return resp;
}

// One try's outcome: the answer, or an error and whether another try may succeed
// (no answer at all, a 5xx, gRPC UNAVAILABLE and its kin).
template <typename T>
struct Try {
  Result<T> result;
  bool transient = false;
};

template <typename T>
Try<T> Final(Status s) {
  return {std::move(s), false};
}
template <typename T>
Try<T> Transient(Status s) {
  return {std::move(s), true};
}

// What one worker thread talks through: a REST connection, or a gRPC stub.
class Session {
 public:
  virtual ~Session() = default;
  virtual Try<std::vector<std::string>> Versions(const std::string& model) = 0;
  virtual Try<inference::ModelConfig> Config(const std::string& model, const std::string& version) = 0;
  virtual Try<InferResponse> Infer(const InferRequest& r) = 0;
};

Result<rapidjson::Document> ParseJson(const std::string& body, const std::string& what) {
  rapidjson::Document d;
  d.Parse(body.data(), body.size());
  if (d.HasParseError() || !d.IsObject()) return InvalidArgument(what + " is not a JSON object");
  return d;
}

// The config as `ferry serve` and Triton print it (proto field names, enum names).
Result<inference::ModelConfig> ConfigFromJson(const std::string& body, const std::string& where) {
  FERRY_ASSIGN_OR_RETURN(rapidjson::Document d, ParseJson(body, where + "its config"));
  inference::ModelConfig c;
  if (d.HasMember("max_batch_size") && d["max_batch_size"].IsInt()) c.set_max_batch_size(d["max_batch_size"].GetInt());
  auto tensors = [&](const char* key, auto add) -> Status {
    if (!d.HasMember(key) || !d[key].IsArray()) return InvalidArgument(where + "its config has no '" + key + "' list");
    for (const auto& t : d[key].GetArray()) {
      if (!t.IsObject() || !t.HasMember("name") || !t["name"].IsString() || !t.HasMember("data_type") ||
          !t["data_type"].IsString() || !t.HasMember("dims") || !t["dims"].IsArray())
        return InvalidArgument(where + "a config '" + key + "' entry lacks name, data_type or dims");
      auto* out = add();
      out->set_name(t["name"].GetString());
      inference::DataType dt;
      if (!inference::DataType_Parse(t["data_type"].GetString(), &dt))
        return InvalidArgument(where + key + " '" + out->name() + "': unknown data_type '" + t["data_type"].GetString() + "'");
      out->set_data_type(dt);
      for (const auto& dim : t["dims"].GetArray()) {
        if (!dim.IsInt64()) return InvalidArgument(where + key + " '" + out->name() + "': dims must be integers");
        out->add_dims(dim.GetInt64());
      }
    }
    return Status::Ok();
  };
  FERRY_RETURN_IF_ERROR(tensors("input", [&] { return c.add_input(); }));
  FERRY_RETURN_IF_ERROR(tensors("output", [&] { return c.add_output(); }));
  return c;
}

class RestSession : public Session {
 public:
  RestSession(std::string base, std::string host, std::string port, std::chrono::milliseconds timeout)
      : base_(std::move(base)), c_(std::move(host), std::move(port), timeout) {}

  Try<std::vector<std::string>> Versions(const std::string& model) override {
    Try<std::string> got = Get("/v2/models/" + model, model);
    if (!got.result.ok()) return {got.result.status(), got.transient};
    auto d = ParseJson(*got.result, "the metadata of model '" + model + "'");
    if (!d.ok()) return Final<std::vector<std::string>>(d.status());
    std::vector<std::string> versions;
    if (d->HasMember("versions") && (*d)["versions"].IsArray())
      for (const auto& v : (*d)["versions"].GetArray())
        if (v.IsString()) versions.emplace_back(v.GetString());
    return {versions};
  }

  Try<inference::ModelConfig> Config(const std::string& model, const std::string& version) override {
    Try<std::string> got = Get("/v2/models/" + model + "/versions/" + version + "/config", model);
    if (!got.result.ok()) return {got.result.status(), got.transient};
    return {ConfigFromJson(*got.result, "model '" + model + "' version " + version + " at " + base_ + ": ")};
  }

  Try<InferResponse> Infer(const InferRequest& r) override {
    const std::string target =
        "/v2/models/" + r.model_name + (r.model_version.empty() ? "" : "/versions/" + r.model_version) + "/infer";
    auto [body, header] = EncodeRequest(r);
    Result<Answer> a = c_.Exchange(bhttp::verb::post, target, std::move(body), header);
    if (!a.ok()) return Transient<InferResponse>(Unavailable("POST " + base_ + target + ": " + a.status().message()));
    if (a->status >= 500) return Transient<InferResponse>(Unavailable("POST " + base_ + target + ": " + ErrorOf(*a)));
    if (a->status / 100 != 2) return Final<InferResponse>(InvalidArgument(ErrorOf(*a)));
    return {DecodeResponse(*a)};
  }

 private:
  Try<std::string> Get(const std::string& target, const std::string& model) {
    Result<Answer> a = c_.Exchange(bhttp::verb::get, target, "", std::nullopt);
    if (!a.ok()) return Transient<std::string>(Unavailable("GET " + base_ + target + ": " + a.status().message()));
    if (a->status >= 500) return Transient<std::string>(Unavailable("GET " + base_ + target + ": " + ErrorOf(*a)));
    if (a->status / 100 != 2) return Final<std::string>(InvalidArgument("model '" + model + "' at " + base_ + ": " + ErrorOf(*a)));
    return {std::move(a->body)};
  }

  std::string base_;
  Connection c_;
};

bool TransientGrpc(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
    case grpc::StatusCode::INTERNAL:
    case grpc::StatusCode::UNKNOWN: return true;
    default: return false;
  }
}

class GrpcSession : public Session {
 public:
  GrpcSession(std::string base, std::shared_ptr<grpc::Channel> channel, std::chrono::milliseconds timeout)
      : base_(std::move(base)), stub_(inference::GRPCInferenceService::NewStub(std::move(channel))), timeout_(timeout) {}

  Try<std::vector<std::string>> Versions(const std::string& model) override {
    inference::ModelMetadataRequest req;
    req.set_name(model);
    inference::ModelMetadataResponse res;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
    grpc::Status st = stub_->ModelMetadata(&ctx, req, &res);
    if (!st.ok()) return Failed<std::vector<std::string>>("ModelMetadata", st, "model '" + model + "' at " + base_ + ": ");
    return {std::vector<std::string>(res.versions().begin(), res.versions().end())};
  }

  Try<inference::ModelConfig> Config(const std::string& model, const std::string& version) override {
    inference::ModelConfigRequest req;
    req.set_name(model);
    req.set_version(version);
    inference::ModelConfigResponse res;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
    grpc::Status st = stub_->ModelConfig(&ctx, req, &res);
    if (!st.ok()) return Failed<inference::ModelConfig>("ModelConfig", st, "model '" + model + "' at " + base_ + ": ");
    return {res.config()};
  }

  Try<InferResponse> Infer(const InferRequest& r) override {
    inference::ModelInferRequest req;
    req.set_model_name(r.model_name);
    req.set_model_version(r.model_version);
    for (const Tensor& t : r.inputs) {
      auto* in = req.add_inputs();
      in->set_name(t.name);
      in->set_datatype(std::string(DataTypeName(t.datatype)));
      for (int64_t d : t.shape) in->add_shape(d);
      req.add_raw_input_contents(std::string(t.bytes()));
    }
    for (const auto& o : r.outputs) req.add_outputs()->set_name(o.name);
    inference::ModelInferResponse res;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + timeout_);
    grpc::Status st = stub_->ModelInfer(&ctx, req, &res);
    if (!st.ok()) return Failed<InferResponse>("ModelInfer", st, "");
    if (res.raw_output_contents_size() != res.outputs_size())
      return Final<InferResponse>(Internal("the response has " + std::to_string(res.outputs_size()) + " outputs and " +
                                           std::to_string(res.raw_output_contents_size()) + " raw contents"));
    InferResponse out;
    for (int i = 0; i < res.outputs_size(); ++i) {
      const auto& o = res.outputs(i);
      Tensor t;
      t.name = o.name();
      auto dt = DataTypeFromName(o.datatype());
      if (!dt) return Final<InferResponse>(Internal("output '" + t.name + "': unknown datatype '" + o.datatype() + "'"));
      t.datatype = *dt;
      t.shape.assign(o.shape().begin(), o.shape().end());
      t.Own(res.raw_output_contents(i));
      out.outputs.push_back(std::move(t));
    }
    return {std::move(out)};
  }

 private:
  template <typename T>
  Try<T> Failed(const char* rpc, const grpc::Status& st, const std::string& where) {
    const std::string msg = st.error_message();
    if (TransientGrpc(st.error_code()))
      return Transient<T>(Unavailable(std::string(rpc) + " " + base_ + ": " + msg + " (gRPC code " +
                                      std::to_string(static_cast<int>(st.error_code())) + ")"));
    return Final<T>(InvalidArgument(where + msg));
  }

  std::string base_;
  std::unique_ptr<inference::GRPCInferenceService::Stub> stub_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

struct RemoteV2Backend::Impl {
  RemoteOptions o;
  std::function<std::unique_ptr<Session>()> new_session;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<InferRequest, InferCallback>> queue;  // guarded by mu
  bool stopping = false;                                      // guarded by mu
  std::vector<std::thread> workers;
  std::unique_ptr<Session> control;  // Resolve's, on the caller's thread

  // Runs `once` until it answers or fails for good; UNAVAILABLE once the retries are spent.
  template <typename T, typename F>
  Result<T> Retrying(F&& once) {
    auto wait = o.backoff_initial;
    for (int attempt = 0;; ++attempt) {
      Try<T> t = once();
      if (t.result.ok() || !t.transient) return std::move(t.result);
      if (attempt >= o.retries)
        return Unavailable(t.result.status().message() + " (after " + std::to_string(attempt + 1) + " tries)");
      FERRY_LOG(kWarning, "remote request failed; retrying",
                ("error", t.result.status().message())("try", attempt + 1)("wait_ms", static_cast<int64_t>(wait.count())));
      std::this_thread::sleep_for(wait);
      wait = std::min(wait * 2, o.backoff_max);
    }
  }

  void Work() {
    std::unique_ptr<Session> session = new_session();
    while (true) {
      std::pair<InferRequest, InferCallback> job;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        job = std::move(queue.front());
        queue.pop_front();
      }
      job.second(Retrying<InferResponse>([&] { return session->Infer(job.first); }));
    }
  }
};

Result<std::unique_ptr<RemoteV2Backend>> RemoteV2Backend::Create(RemoteOptions options) {
  const std::string url = options.url;
  const bool grpc = url.rfind("grpc://", 0) == 0;
  if (!grpc && url.rfind("http://", 0) != 0)
    return InvalidArgument("--url '" + url + "' must be http://HOST:PORT (REST) or grpc://HOST:PORT (no TLS)");
  std::string authority = url.substr(url.find("://") + 3);
  while (!authority.empty() && authority.back() == '/') authority.pop_back();
  const size_t colon = authority.rfind(':');
  if (authority.find('/') != std::string::npos || colon == std::string::npos || colon == 0 ||
      colon + 1 == authority.size() || authority.find_first_not_of("0123456789", colon + 1) != std::string::npos)
    return InvalidArgument("--url '" + url + "' must be " + (grpc ? "grpc" : "http") + "://HOST:PORT, with no path");
  if (options.concurrency < 1) return InvalidArgument("--concurrency must be 1 or more");
  if (options.retries < 0) return InvalidArgument("--retries must be 0 or more");
  std::unique_ptr<RemoteV2Backend> b(new RemoteV2Backend());
  b->impl_ = std::make_unique<Impl>();
  Impl& m = *b->impl_;
  std::string host = authority.substr(0, colon);
  const std::string port = authority.substr(colon + 1);
  m.o = std::move(options);
  m.o.url = (grpc ? "grpc://" : "http://") + authority;
  if (grpc) {
    // One channel: gRPC multiplexes the workers' calls over its HTTP/2 connection. Its own
    // reconnect back-off (by default up to 120 s, failing calls fast meanwhile) is held to
    // ours, so a server that comes back is reached by the next try.
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(m.o.backoff_initial.count()));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(m.o.backoff_initial.count()));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(m.o.backoff_max.count()));
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    auto channel = grpc::CreateCustomChannel(authority, grpc::InsecureChannelCredentials(), args);
    m.new_session = [channel, base = m.o.url, timeout = m.o.timeout] {
      return std::make_unique<GrpcSession>(base, channel, timeout);
    };
  } else {
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    m.new_session = [host, port, base = m.o.url, timeout = m.o.timeout] {
      return std::make_unique<RestSession>(base, host, port, timeout);
    };
  }
  m.control = m.new_session();
  for (int i = 0; i < m.o.concurrency; ++i) m.workers.emplace_back([&m] { m.Work(); });
  return b;
}

RemoteV2Backend::~RemoteV2Backend() {
  std::deque<std::pair<InferRequest, InferCallback>> left;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
    left.swap(impl_->queue);
  }
  impl_->cv.notify_all();
  for (auto& [req, done] : left) done(Status(StatusCode::kCancelled, "the job is stopping"));
  for (auto& t : impl_->workers) t.join();
}

void RemoteV2Backend::Infer(InferRequest request, InferCallback done) {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->queue.emplace_back(std::move(request), std::move(done));
  }
  impl_->cv.notify_one();
}

Result<ResolvedModel> RemoteV2Backend::Resolve(const std::string& model, const std::string& version) {
  Impl& m = *impl_;
  ResolvedModel r;
  r.version = version;
  if (r.version.empty()) {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> versions,
                           m.Retrying<std::vector<std::string>>([&] { return m.control->Versions(model); }));
    for (const auto& v : versions)
      if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos &&
          (r.version.empty() || std::stoll(v) > std::stoll(r.version)))
        r.version = v;
    if (r.version.empty()) return InvalidArgument("model '" + model + "' at " + m.o.url + ": its metadata lists no versions");
  }
  FERRY_ASSIGN_OR_RETURN(r.config, m.Retrying<inference::ModelConfig>([&] { return m.control->Config(model, r.version); }));
  r.config.set_name(model);
  return r;
}

}  // namespace ferry::batch
