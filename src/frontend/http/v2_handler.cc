#include "frontend/http/v2_handler.h"

#include <boost/asio/post.hpp>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>

#include "core/ascii_scan.h"
#include "core/log.h"
#include "frontend/http/feedback_handler.h"
#include "protocol/compression.h"
#include "protocol/error_map.h"
#include "protocol/model_statistics.h"
#include "protocol/v2_json.h"
#include "repository/model_config.h"

namespace ferry::frontend::http {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

Response Json(int status, std::string body) {
  Response r{static_cast<beast_http::status>(status), 11};
  r.set(beast_http::field::content_type, "application/json");
  r.body() = std::move(body);
  return r;
}

std::string Finish(const rapidjson::StringBuffer& sb) { return std::string(sb.GetString(), sb.GetSize()); }

void WriteTensors(Writer& w, const char* key, const std::vector<server::TensorMetadata>& tensors) {
  w.Key(key);
  w.StartArray();
  for (const auto& t : tensors) {
    w.StartObject();
    w.Key("name");
    w.String(t.name.c_str());
    w.Key("datatype");
    w.String(std::string(DataTypeName(t.datatype)).c_str());
    w.Key("shape");
    w.StartArray();
    for (int64_t d : t.shape) w.Int64(d);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
}

// Splits "/a/b%20c?x=1" into decoded segments {"a", "b c"}; false on a bad escape.
bool SplitPath(std::string_view target, std::vector<std::string>* segments) {
  target = target.substr(0, target.find('?'));
  segments->reserve(8);  // /v2/models/NAME/versions/V/infer in one allocation
  while (!target.empty()) {
    if (target.front() == '/') {
      target.remove_prefix(1);
      continue;
    }
    size_t slash = target.find('/');
    std::string seg;
    if (!PercentDecode(target.substr(0, slash), &seg)) return false;
    segments->push_back(std::move(seg));
    target = slash == std::string_view::npos ? std::string_view() : target.substr(slash);
  }
  return true;
}

std::string_view Header(const Request& req, std::string_view name) {
  auto it = req.find(boost::beast::string_view(name.data(), name.size()));
  if (it == req.end()) return {};
  return std::string_view(it->value().data(), it->value().size());
}

// An id that can be echoed in the X-Request-Id header: printable ASCII (no CR/LF, so no
// header injection), at most 256 characters.
bool HeaderSafe(std::string_view id) {
  return !id.empty() && id.size() <= 256 && PrintableAscii(id, /*json_plain=*/false);
}

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Reads an optional JSON object body ({} when empty).
Result<rapidjson::Document> BodyObject(const std::string& body) {
  rapidjson::Document d;
  if (body.empty()) {
    d.SetObject();
    return d;
  }
  d.Parse<rapidjson::kParseIterativeFlag>(body.data(), body.size());  // bounded stack
  if (d.HasParseError() || !d.IsObject()) return InvalidArgument("the request body must be a JSON object");
  return d;
}

}  // namespace

Response ErrorResponse(int status, std::string_view message) { return Json(status, protocol::ErrorBody(message)); }

Response StatusResponse(const Status& s) {
  Response r = ErrorResponse(protocol::HttpStatusFor(s.code()), s.message());
  // A full queue is momentary: tell well-behaved clients when to come back.
  if (s.code() == StatusCode::kOverloaded) r.set(beast_http::field::retry_after, "1");
  return r;
}

V2Handler::V2Handler(server::Server* server, V2HandlerOptions options) : server_(server), options_(std::move(options)) {}

V2Handler::~V2Handler() = default;  // control_ finishes its queued work first

void V2Handler::Handle(Request&& req, Responder respond, ClientGone client_gone) {
  std::vector<std::string> seg;
  if (!SplitPath(std::string_view(req.target().data(), req.target().size()), &seg)) return respond(ErrorResponse(400, "malformed percent-encoding in the URL path"));
  const auto method = req.method();
  const bool get = method == beast_http::verb::get || method == beast_http::verb::head;
  const bool post = method == beast_http::verb::post;
  auto not_allowed = [&] { respond(ErrorResponse(405, "Method Not Allowed")); };
  if (seg.empty() || seg[0] != "v2") return respond(ErrorResponse(404, "Not Found"));

  // /v2
  if (seg.size() == 1) {
    if (!get) return not_allowed();
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("name");
    w.String(options_.server_name.c_str());
    w.Key("version");
    w.String(options_.server_version.c_str());
    w.Key("extensions");
    w.StartArray();
    for (const auto& e : server::Server::Extensions()) w.String(e.c_str());
    w.EndArray();
    w.EndObject();
    return respond(Json(200, Finish(sb)));
  }
  // /v2/health/{live,ready}
  if (seg[1] == "health" && seg.size() == 3 && (seg[2] == "live" || seg[2] == "ready")) {
    if (!get) return not_allowed();
    if (seg[2] == "live") return respond(Json(200, R"({"live":true})"));
    if (server_->Ready()) return respond(Json(200, R"({"ready":true})"));
    return respond(ErrorResponse(503, "the server is not ready"));
  }
  // /v2/repository/index, /v2/repository/models/{m}/{load,unload}
  if (seg[1] == "repository") {
    if (seg.size() == 3 && seg[2] == "index") {
      if (!post) return not_allowed();
      return Repository(std::move(req), "index", "", std::move(respond));
    }
    if (seg.size() == 5 && seg[2] == "models" && (seg[4] == "load" || seg[4] == "unload")) {
      if (!post) return not_allowed();
      return Repository(std::move(req), seg[4], seg[3], std::move(respond));
    }
    if (seg.size() >= 4 && (seg.back() == "index" || seg.back() == "load" || seg.back() == "unload"))
      return respond(ErrorResponse(501, "'repository_name' specification is not supported"));
    return respond(ErrorResponse(404, "Not Found"));
  }
  // /v2/models/stats (checked before model routes, as Triton does)
  if (seg[1] == "models" && seg.size() == 3 && seg[2] == "stats") {
    if (!get) return not_allowed();
    return respond(Statistics("", ""));
  }
  // /v2/models/{m}[/versions/{v}][/{ready,config,infer,stats,monitoring,explain,feedback}]
  if (seg[1] == "models" && seg.size() >= 3) {
    std::string model = seg[2];
    std::string version;
    size_t i = 3;
    if (seg.size() >= 5 && seg[3] == "versions") {
      version = seg[4];
      i = 5;
      if (!IsDigits(version) || version[0] == '0')
        return respond(ErrorResponse(400, "model '" + model + "': version '" + version + "' is not a positive integer"));
    }
    std::string action = i < seg.size() ? seg[i] : "";
    if (i + 1 < seg.size() ||
        (i < seg.size() && action != "ready" && action != "config" && action != "infer" && action != "stats" &&
         action != "monitoring" && action != "explain" && action != "feedback"))
      return respond(ErrorResponse(404, "Not Found"));
    if (action == "infer" || action == "explain") {
      if (!post) return not_allowed();
      return Infer(std::move(req), std::move(model), std::move(version), std::move(respond), std::move(client_gone),
                   action == "explain" ? Call::kExplain : Call::kInfer);
    }
    if (action == "feedback") {
      if (!post) return not_allowed();
      return respond(FeedbackResponse(*server_, model, version, req.body()));
    }
    if (!get) return not_allowed();
    if (action == "ready") {
      auto ready = server_->ModelReady(model, version);
      if (!ready.ok()) return respond(StatusResponse(ready.status()));
      if (!*ready) return respond(ErrorResponse(503, "model '" + model + "' is not ready"));
      rapidjson::StringBuffer sb;
      Writer w(sb);
      w.StartObject();
      w.Key("name");
      w.String(model.data(), model.size());
      w.Key("ready");
      w.Bool(true);
      w.EndObject();
      return respond(Json(200, Finish(sb)));
    }
    if (action == "stats") return respond(Statistics(model, version));
    if (action == "monitoring") {
      auto report = server_->MonitoringJson(model, version);
      if (!report.ok()) return respond(StatusResponse(report.status()));
      return respond(Json(200, std::move(report).value()));
    }
    if (action == "config") {
      auto config = server_->GetModelConfig(model, version);
      if (!config.ok()) return respond(StatusResponse(config.status()));
      return respond(Json(200, repository::ModelConfigToJson(*config)));
    }
    auto md = server_->GetModelMetadata(model, version);
    if (!md.ok()) return respond(StatusResponse(md.status()));
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartObject();
    w.Key("name");
    w.String(md->name.data(), md->name.size());
    w.Key("versions");
    w.StartArray();
    for (const auto& v : md->versions) w.String(v.c_str());
    w.EndArray();
    w.Key("platform");
    w.String(md->platform.c_str());
    WriteTensors(w, "inputs", md->inputs);
    WriteTensors(w, "outputs", md->outputs);
    w.EndObject();
    return respond(Json(200, Finish(sb)));
  }
  respond(ErrorResponse(404, "Not Found"));
}

Response V2Handler::Statistics(const std::string& model, const std::string& version) {
  auto stats = server_->GetStatistics(model, version);
  if (!stats.ok()) return StatusResponse(stats.status());
  return Json(200, protocol::EncodeStatisticsJson(*stats));
}

void V2Handler::Infer(Request&& req, std::string model, std::string version, Responder respond,
                      ClientGone client_gone, Call call) {
  // Decompress first: Inference-Header-Content-Length counts uncompressed bytes.
  auto encoding = protocol::ParseContentEncoding(Header(req, "Content-Encoding"));
  if (!encoding.ok()) {
    Response r = StatusResponse(encoding.status());
    r.set(beast_http::field::accept_encoding, "gzip, deflate");
    return respond(std::move(r));
  }
  std::shared_ptr<const std::string> body;
  if (*encoding == protocol::Encoding::kIdentity) {
    body = std::make_shared<const std::string>(std::move(req.body()));
  } else {
    auto inflated = protocol::Decompress(req.body(), options_.max_body_bytes);
    if (!inflated.ok()) return respond(StatusResponse(inflated.status()));
    body = std::make_shared<const std::string>(std::move(inflated).value());
  }
  std::optional<size_t> header_length;
  std::string_view ihcl = Header(req, "Inference-Header-Content-Length");
  if (!ihcl.empty()) {
    size_t n = 0;
    auto [p, ec] = std::from_chars(ihcl.data(), ihcl.data() + ihcl.size(), n);
    if (ec != std::errc() || p != ihcl.data() + ihcl.size())
      return respond(ErrorResponse(400, "Unable to parse Inference-Header-Content-Length '" + std::string(ihcl) + "'"));
    if (n == 0)
      return respond(ErrorResponse(400, "Inference-Header-Content-Length 0 (a header-less raw binary request) is not "
                                        "supported; send a JSON inference header"));
    header_length = n;
  }
  auto decoded = protocol::DecodeInferRequest(std::move(body), header_length);
  if (!decoded.ok()) {
    // A request for a model this server does not have is 404 whatever its body: the
    // client's first mistake is the model name. Looked up only here, off the fast path.
    if (auto known = server_->ModelReady(model, version); !known.ok() && known.status().code() == StatusCode::kNotFound)
      return respond(StatusResponse(known.status()));
    if (call == Call::kInfer) server_->CountFailure(model, version, decoded.status(), Frontend::kHttp, Header(req, "X-Request-Id"));
    return respond(StatusResponse(decoded.status()));
  }
  InferRequest request = std::move(decoded).value();
  // The body's id wins; else the conventional header (what proxies and KServe's agent set).
  if (request.id.empty()) request.id = std::string(Header(req, "X-Request-Id"));
  std::string client_id = HeaderSafe(request.id) ? request.id : std::string();
  request.model_name = std::move(model);
  request.model_version = std::move(version);
  request.cancelled = std::move(client_gone);
  if (std::string_view tp = Header(req, "traceparent"); !tp.empty()) request.trace_parent = TraceContext::Parse(tp);
  // A tiny model's execution may run here, on the IO thread, instead of a hand-off to a
  // worker and back; the server decides from the version's measured execution times.
  request.may_run_inline = true;

  // The encoder needs the request's output choices after the request itself has been
  // handed to the server.
  InferRequest shape_of_reply;
  shape_of_reply.parameters = request.parameters;
  // An explanation's outputs are its own, not the model's: each keeps the defaults.
  if (call == Call::kInfer) shape_of_reply.outputs = request.outputs;
  protocol::Encoding reply_encoding = protocol::ChooseResponseEncoding(Header(req, "Accept-Encoding"));
  auto run = call == Call::kExplain ? &server::Server::Explain : &server::Server::Infer;
  (server_->*run)(std::move(request), [respond = std::move(respond), shape_of_reply = std::move(shape_of_reply),
                                      reply_encoding, client_id = std::move(client_id)](Result<InferResponse> result) {
    if (!result.ok()) {
      Response r = StatusResponse(result.status());
      if (!client_id.empty()) r.set("X-Request-Id", client_id);
      return respond(std::move(r));
    }
    protocol::EncodedBody enc = protocol::EncodeInferResponse(*result, shape_of_reply);
    Response r{beast_http::status::ok, 11};
    // The id answered (the client's, or one the server gave a monitored request).
    if (HeaderSafe(result->id)) r.set("X-Request-Id", result->id);
    if (enc.json_length) {
      r.set(beast_http::field::content_type, "application/octet-stream");
      r.set("Inference-Header-Content-Length", std::to_string(*enc.json_length));
    } else {
      r.set(beast_http::field::content_type, "application/json");
    }
    if (reply_encoding != protocol::Encoding::kIdentity) {
      auto packed = protocol::Compress(enc.body, reply_encoding);
      if (packed.ok()) {
        r.set(beast_http::field::content_encoding, std::string(protocol::EncodingName(reply_encoding)));
        enc.body = std::move(packed).value();
      }
    }
    r.body() = std::move(enc.body);
    respond(std::move(r));
  });
}

void V2Handler::Repository(Request&& req, const std::string& action, std::string model, Responder respond) {
  auto body = BodyObject(req.body());
  if (!body.ok()) return respond(StatusResponse(body.status()));
  if (action == "index") {
    bool ready_only = false;
    if (auto it = body->FindMember("ready"); it != body->MemberEnd()) {
      if (!it->value.IsBool()) return respond(ErrorResponse(400, "'ready' must be a boolean"));
      ready_only = it->value.GetBool();
    }
    rapidjson::StringBuffer sb;
    Writer w(sb);
    w.StartArray();
    for (const auto& e : server_->RepositoryIndex(ready_only)) {
      w.StartObject();
      w.Key("name");
      w.String(e.name.c_str());
      if (!e.version.empty()) {
        w.Key("version");
        w.String(e.version.c_str());
      }
      if (e.state != server::ModelState::kUnknown) {
        w.Key("state");
        w.String(std::string(server::ModelStateName(e.state)).c_str());
      }
      if (!e.reason.empty()) {
        w.Key("reason");
        w.String(e.reason.c_str());
      }
      w.EndObject();
    }
    w.EndArray();
    return respond(Json(200, Finish(sb)));
  }
  if (auto it = body->FindMember("parameters"); it != body->MemberEnd()) {
    if (!it->value.IsObject()) return respond(ErrorResponse(400, "'parameters' must be a JSON object"));
    for (const auto& p : it->value.GetObject()) {
      std::string key = p.name.GetString();
      if (action == "unload" && key == "unload_dependents") continue;
      return respond(ErrorResponse(400, "load parameter '" + key + "' is not supported"));
    }
  }
  // Loading can take seconds: run it on the control thread, answer from there.
  control_.Run([this, action, model = std::move(model), respond = std::move(respond)]() mutable {
    Status s = action == "load" ? server_->LoadModel(model) : server_->UnloadModel(model);
    if (!s.ok()) return respond(StatusResponse(s));
    respond(Json(200, ""));
  });
}

Handler MetricsHandler(server::Server* server) {
  return [server](Request&& req, Responder respond, ClientGone) {
    std::string_view target(req.target().data(), req.target().size());
    target = target.substr(0, target.find('?'));
    if (target != "/metrics") return respond(ErrorResponse(404, "Not Found"));
    if (req.method() != beast_http::verb::get) return respond(ErrorResponse(405, "Method Not Allowed"));
    Response r{beast_http::status::ok, 11};
    r.set(beast_http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    r.body() = server->metrics().Serialize();
    respond(std::move(r));
  };
}

}  // namespace ferry::frontend::http
