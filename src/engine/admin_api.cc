#include "engine/admin_api.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>
#include <filesystem>

#include "engine/log_reader.h"

namespace ferry::engine {
namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;
using frontend::http::Request;
using frontend::http::Responder;
using frontend::http::Response;

namespace {

constexpr int kMaxPinnedReplicas = 1000;

Response Json(int status, std::string body) { return frontend::http::JsonResponse(status, std::move(body)); }
Response Error(int status, std::string_view message) { return frontend::http::JsonError(status, message); }
Response Error(const Status& s) { return Error(AdminHttpStatus(s), s.message()); }
Response NotAllowed(std::string_view allow) {
  Response r = Error(405, "Method Not Allowed (allowed: " + std::string(allow) + ")");
  r.set(bhttp::field::allow, std::string(allow));
  return r;
}

// The raw value of `key` in a query string ("a=1&limit=5"), or nullopt.
std::optional<std::string_view> QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query = pair.size() < query.size() ? query.substr(pair.size() + 1) : std::string_view();
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
  }
  return std::nullopt;
}

// A query parameter, percent-decoded ('+' is a space, as HTML forms send it).
Result<std::optional<std::string>> Param(std::string_view query, std::string_view key) {
  auto raw = QueryParam(query, key);
  if (!raw) return std::optional<std::string>();
  std::string plus(*raw);
  for (char& c : plus)
    if (c == '+') c = ' ';
  std::string out;
  if (!frontend::http::PercentDecode(plus, &out))
    return InvalidArgument("query parameter '" + std::string(key) + "' has a malformed percent-encoding");
  return std::optional<std::string>(std::move(out));
}

Result<std::optional<int64_t>> IntParam(std::string_view query, std::string_view key, int64_t lo, int64_t hi) {
  FERRY_ASSIGN_OR_RETURN(auto v, Param(query, key));
  if (!v) return std::optional<int64_t>();
  int64_t n = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || p != v->data() + v->size() || n < lo || n > hi)
    return InvalidArgument("query parameter '" + std::string(key) + "' must be an integer from " + std::to_string(lo) +
                           " to " + std::to_string(hi) + ", got '" + *v + "'");
  return std::optional<int64_t>(n);
}

Result<bool> BoolParam(std::string_view query, std::string_view key) {
  FERRY_ASSIGN_OR_RETURN(auto v, Param(query, key));
  if (!v || *v == "0" || *v == "false") return false;
  if (v->empty() || *v == "1" || *v == "true") return true;
  return InvalidArgument("query parameter '" + std::string(key) + "' must be true or false, got '" + *v + "'");
}

// The spec's file name for messages and the folder its relative paths are resolved
// against, from ?file= and ?base=; what to store as the spec file (its folder anchors the
// relative paths when the engine restarts).
struct SpecSource {
  std::string file;       // as the client names it, for messages
  std::string base;       // absolute folder, or empty: relative paths are refused
  std::string stored;     // spec file to store
};

Result<SpecSource> ReadSource(std::string_view query) {
  SpecSource s;
  FERRY_ASSIGN_OR_RETURN(auto file, Param(query, "file"));
  FERRY_ASSIGN_OR_RETURN(auto base, Param(query, "base"));
  s.file = file && !file->empty() ? *file : "request";
  if (base) {
    if (!fs::path(*base).is_absolute())
      return InvalidArgument("query parameter 'base' must be an absolute folder, got '" + *base + "'");
    std::error_code ec;
    if (!fs::is_directory(*base, ec))
      return InvalidArgument("query parameter 'base': folder '" + *base + "' does not exist");
    s.base = *base;
    s.stored = (fs::path(*base) / fs::path(s.file).filename()).string();
  } else {
    s.stored = s.file;
  }
  return s;
}

template <typename W>
void WriteOutcome(W& w, const ApplyOutcome& o) {
  w.StartObject();
  w.Key("name");
  w.String(o.name.c_str());
  w.Key("generation");
  w.Int64(o.generation);
  w.Key("change");
  w.String(o.change.c_str());
  w.Key("message");
  w.String(o.message.c_str());
  w.EndObject();
}

void Events(std::string_view query, const std::string& name, StateStore* store, const Responder& respond) {
  auto limit = IntParam(query, "limit", 1, 1000);
  if (!limit.ok()) return respond(Error(limit.status()));
  const int n = static_cast<int>(limit->value_or(20));
  auto scale = store->ScaleEvents(name, n);
  auto restarts = store->Restarts(name, n);
  auto rollouts = store->RolloutEvents(name, n);
  if (!scale.ok()) return respond(Error(500, scale.status().message()));
  if (!restarts.ok()) return respond(Error(500, restarts.status().message()));
  if (!rollouts.ok()) return respond(Error(500, rollouts.status().message()));
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("scale_events");
  w.StartArray();
  for (const auto& e : *scale) {
    w.StartObject();
    w.Key("ts_ms");
    w.Int64(e.ts_ms);
    w.Key("revision");
    w.String(e.revision.c_str());
    w.Key("from");
    w.Int(e.from);
    w.Key("to");
    w.Int(e.to);
    w.Key("reason");
    w.String(e.reason.c_str());
    w.EndObject();
  }
  w.EndArray();
  w.Key("restarts");
  w.StartArray();
  for (const auto& e : *restarts) {
    w.StartObject();
    w.Key("ts_ms");
    w.Int64(e.ts_ms);
    w.Key("revision");
    w.String(e.revision.c_str());
    w.Key("replica");
    w.Int(e.replica);
    w.Key("pid");
    w.Int64(e.pid);
    w.Key("exit");
    w.String(e.exit.c_str());
    w.Key("log_tail");
    w.String(SanitizeUtf8(e.log_tail).c_str());
    w.EndObject();
  }
  w.EndArray();
  w.Key("rollouts");
  w.StartArray();
  for (const auto& e : *rollouts) {
    w.StartObject();
    w.Key("ts_ms");
    w.Int64(e.ts_ms);
    w.Key("generation");
    w.Int64(e.generation);
    w.Key("kind");
    w.String(e.kind.c_str());
    w.Key("message");
    w.String(SanitizeUtf8(e.message).c_str());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  respond(Json(200, std::string(sb.GetString(), sb.GetSize())));
}

void Logs(std::string_view query, const std::string& name, AdminBackend* backend, const Responder& respond) {
  auto revision = Param(query, "revision");
  auto replica = IntParam(query, "replica", 0, 1000000);
  auto tail = IntParam(query, "tail", 1, 100000);
  auto offset = IntParam(query, "offset", 0, INT64_MAX);
  for (const Status& s : {revision.status(), replica.status(), tail.status(), offset.status()})
    if (!s.ok()) return respond(Error(s));
  if (tail->has_value() && offset->has_value())
    return respond(Error(400, "query parameters 'tail' and 'offset' exclude each other: 'offset' follows a log, "
                              "'tail' starts one"));
  std::optional<int> index;
  if (*replica) index = static_cast<int>(**replica);
  auto target = backend->ResolveLogs(name, *revision, index);
  if (!target.ok()) return respond(Error(target.status()));
  auto chunk = offset->has_value() ? ReadLogFrom(target->path, static_cast<uint64_t>(**offset))
                                   : ReadLogTail(target->path, static_cast<int>(tail->value_or(100)));
  if (!chunk.ok()) return respond(Error(chunk.status()));
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("deployment");
  w.String(name.c_str());
  w.Key("revision");
  w.String(target->revision.c_str());
  w.Key("replica");
  w.Int(target->replica);
  w.Key("file");
  w.String(target->path.c_str());
  w.Key("offset");
  w.Uint64(chunk->offset);
  w.Key("rotated");
  w.Bool(chunk->rotated);
  w.Key("truncated");
  w.Bool(chunk->truncated);
  w.Key("text");
  w.String(chunk->text.c_str(), static_cast<rapidjson::SizeType>(chunk->text.size()));
  w.EndObject();
  respond(Json(200, std::string(sb.GetString(), sb.GetSize())));
}

// Hands a validated change to the control thread; answers once it is applied.
void Submit(AdminBackend* backend, AdminCommand cmd, const Responder& respond) {
  backend->Submit(std::move(cmd), [respond](Result<std::string> r) {
    if (!r.ok()) return respond(Error(r.status()));
    respond(Json(200, std::move(r).value()));
  });
}

std::string Body(const Request& req) { return req.body(); }

}  // namespace

int AdminHttpStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition: return 409;
    default: return 500;
  }
}

Result<std::optional<int>> AdminApi::ParseScaleBody(std::string_view body) {
  const std::string example = R"( such as {"replicas": 3} or {"auto": true})";
  rapidjson::Document doc;
  doc.Parse(body.data(), body.size());
  if (doc.HasParseError())
    return InvalidArgument("the body must be a JSON object" + example + ": " +
                           rapidjson::GetParseError_En(doc.GetParseError()) + " (at offset " +
                           std::to_string(doc.GetErrorOffset()) + ")");
  if (!doc.IsObject()) return InvalidArgument("the body must be a JSON object" + example);
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    const std::string key(it->name.GetString(), it->name.GetStringLength());
    if (key != "replicas" && key != "auto")
      return InvalidArgument("field '" + key + "' is unknown (expected 'replicas' or 'auto')");
  }
  const bool has_replicas = doc.HasMember("replicas"), has_auto = doc.HasMember("auto");
  if (has_replicas && has_auto) return InvalidArgument("send field 'replicas' or field 'auto', not both");
  if (has_auto) {
    if (!doc["auto"].IsBool() || !doc["auto"].GetBool())
      return InvalidArgument("field 'auto' must be true (to pin a count, send field 'replicas')");
    return std::optional<int>();
  }
  if (!has_replicas) return InvalidArgument("field 'replicas' is required (or field 'auto': true)");
  const auto& v = doc["replicas"];
  if (!v.IsInt() || v.GetInt() < 0 || v.GetInt() > kMaxPinnedReplicas) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    v.Accept(w);
    return InvalidArgument("field 'replicas' must be an integer from 0 to " + std::to_string(kMaxPinnedReplicas) +
                           ", got " + std::string(sb.GetString(), sb.GetSize()));
  }
  return std::optional<int>(v.GetInt());
}

std::string ScrapeTargets(const std::string& status_json) {
  rapidjson::Document doc;
  doc.Parse(status_json.c_str());
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartArray();
  auto group = [&w](uint64_t port, std::initializer_list<std::pair<const char*, std::string>> labels) {
    w.StartObject();
    w.Key("targets");
    w.StartArray();
    w.String(("127.0.0.1:" + std::to_string(port)).c_str());
    w.EndArray();
    w.Key("labels");
    w.StartObject();
    for (const auto& [k, v] : labels) {
      w.Key(k);
      w.String(v.c_str());
    }
    w.EndObject();
    w.EndObject();
  };
  if (doc.IsObject()) {
    if (doc.HasMember("metrics_port") && doc["metrics_port"].IsUint() && doc["metrics_port"].GetUint() > 0)
      group(doc["metrics_port"].GetUint(), {{"ferry_role", "engine"}});
    if (doc.HasMember("revisions") && doc["revisions"].IsArray())
      for (const auto& rev : doc["revisions"].GetArray()) {
        if (!rev.IsObject() || !rev.HasMember("replicas") || !rev["replicas"].IsArray()) continue;
        const std::string dep = rev.HasMember("deployment") ? rev["deployment"].GetString() : "";
        const std::string name = rev.HasMember("revision") ? rev["revision"].GetString() : "";
        for (const auto& r : rev["replicas"].GetArray()) {
          if (!r.IsObject() || !r.HasMember("metrics_port") || !r["metrics_port"].IsUint()) continue;
          const unsigned port = r["metrics_port"].GetUint();
          if (port == 0) continue;
          group(port, {{"ferry_role", "replica"}, {"deployment", dep}, {"revision", name},
                       {"replica", std::to_string(r.HasMember("index") ? r["index"].GetInt() : 0)}});
        }
      }
  }
  w.EndArray();
  return std::string(sb.GetString(), sb.GetSize());
}

void AdminApi::Handle(const Request& req, AdminBackend* backend, StateStore* store, Responder respond) {
  std::string_view target(req.target().data(), req.target().size());
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  const auto method = req.method();
  const bool get = method == bhttp::verb::get || method == bhttp::verb::head;
  constexpr std::string_view kDeployments = "/v1/deployments";

  if (path == "/v1/status") {
    if (!get) return respond(NotAllowed("GET"));
    return respond(Json(200, backend->StatusJson()));
  }
  if (path == "/v1/targets") {
    if (!get) return respond(NotAllowed("GET"));
    return respond(Json(200, ScrapeTargets(backend->StatusJson())));
  }
  if (path == "/v1/apply") {
    if (method != bhttp::verb::post) return respond(NotAllowed("POST"));
    auto source = ReadSource(query);
    if (!source.ok()) return respond(Error(source.status()));
    auto prune = BoolParam(query, "prune");
    if (!prune.ok()) return respond(Error(prune.status()));
    if (req.body().empty()) return respond(Error(400, "the body is empty: send a spec (YAML or JSON) with 'deployments'"));
    auto spec = ParseSpecIn(Body(req), source->file, source->base);
    if (!spec.ok()) return respond(Error(spec.status()));
    if (spec->deployments.empty() && !*prune)
      return respond(Error(400, "deployments: the list is empty (to delete every deployment, apply it with prune=1)"));
    AdminCommand cmd;
    cmd.kind = AdminCommand::Kind::kApply;
    cmd.specs = std::move(spec->deployments);
    cmd.spec_file = source->stored;
    cmd.prune = *prune;
    return Submit(backend, std::move(cmd), respond);
  }
  if (path.substr(0, kDeployments.size()) != kDeployments) return respond(Error(404, "Not Found"));
  std::string_view rest = path.substr(kDeployments.size());
  if (rest.empty() || rest == "/") {
    if (!get) return respond(NotAllowed("GET"));
    auto stored = store->Deployments();
    if (!stored.ok()) return respond(Error(500, stored.status().message()));
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartArray();
    for (const auto& d : *stored) {
      w.StartObject();
      w.Key("name");
      w.String(d.name.c_str());
      w.Key("generation");
      w.Int64(d.generation);
      w.Key("active_generation");
      w.Int64(d.active_generation);
      w.Key("pinned");
      if (d.pinned) w.Int(*d.pinned);
      else w.Null();
      w.Key("spec_file");
      w.String(d.spec_file.c_str());
      w.Key("updated_ms");
      w.Int64(d.updated_ms);
      w.EndObject();
    }
    w.EndArray();
    return respond(Json(200, std::string(sb.GetString(), sb.GetSize())));
  }
  // /{name}[/action]
  rest.remove_prefix(1);
  const size_t slash = rest.find('/');
  std::string name;
  if (!frontend::http::PercentDecode(rest.substr(0, slash), &name))
    return respond(Error(400, "malformed percent-encoding in the URL path"));
  const std::string_view action = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

  if (action.empty()) {
    if (get) {
      auto doc = backend->DeploymentJson(name);
      if (!doc) return respond(Error(404, "deployment '" + name + "' is not deployed"));
      return respond(Json(200, std::move(*doc)));
    }
    if (method == bhttp::verb::put) {
      auto source = ReadSource(query);
      if (!source.ok()) return respond(Error(source.status()));
      if (req.body().empty()) return respond(Error(400, "the body is empty: send one deployment (YAML or JSON)"));
      auto d = ParseDeploymentDocument(Body(req), source->file, source->base);
      if (!d.ok()) return respond(Error(d.status()));
      if (d->name != name)
        return respond(Error(400, "field 'name' ('" + d->name + "') differs from the deployment of the URL ('" + name +
                                      "')"));
      AdminCommand cmd;
      cmd.kind = AdminCommand::Kind::kApply;
      cmd.specs.push_back(std::move(d).value());
      cmd.spec_file = source->stored;
      return Submit(backend, std::move(cmd), respond);
    }
    if (method == bhttp::verb::delete_) {
      AdminCommand cmd;
      cmd.kind = AdminCommand::Kind::kDelete;
      cmd.deployment = name;
      return Submit(backend, std::move(cmd), respond);
    }
    return respond(NotAllowed("GET, PUT, DELETE"));
  }
  if (action == "events") {
    if (!get) return respond(NotAllowed("GET"));
    if (!backend->DeploymentJson(name)) {
      // The store is the authority on what is deployed (the status view lags a change by
      // up to a tick).
      auto stored = store->Deployments();
      if (!stored.ok()) return respond(Error(500, stored.status().message()));
      bool known = false;
      for (const auto& d : *stored) known = known || d.name == name;
      if (!known) return respond(Error(404, "deployment '" + name + "' is not deployed"));
    }
    return Events(query, name, store, respond);
  }
  if (action == "logs") {
    if (!get) return respond(NotAllowed("GET"));
    return Logs(query, name, backend, respond);
  }
  if (action == "scale") {
    if (method != bhttp::verb::post) return respond(NotAllowed("POST"));
    auto replicas = ParseScaleBody(req.body());
    if (!replicas.ok()) return respond(Error(replicas.status()));
    AdminCommand cmd;
    cmd.kind = AdminCommand::Kind::kScale;
    cmd.deployment = name;
    cmd.replicas = *replicas;
    return Submit(backend, std::move(cmd), respond);
  }
  respond(Error(404, "Not Found"));
}

Result<std::string> AdminApi::Execute(AdminCommand cmd, DeploymentController& controller) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  switch (cmd.kind) {
    case AdminCommand::Kind::kApply: {
      std::vector<std::string> deleted;
      FERRY_ASSIGN_OR_RETURN(auto outcomes, controller.Apply(std::move(cmd.specs), cmd.spec_file, cmd.prune, &deleted));
      w.StartObject();
      w.Key("deployments");
      w.StartArray();
      for (const auto& o : outcomes) WriteOutcome(w, o);
      w.EndArray();
      w.Key("deleted");
      w.StartArray();
      for (const auto& d : deleted) w.String(d.c_str());
      w.EndArray();
      w.EndObject();
      break;
    }
    case AdminCommand::Kind::kDelete:
      FERRY_RETURN_IF_ERROR(controller.Delete(cmd.deployment));
      w.StartObject();
      w.Key("deleted");
      w.String(cmd.deployment.c_str());
      w.EndObject();
      break;
    case AdminCommand::Kind::kScale:
      FERRY_RETURN_IF_ERROR(controller.Scale(cmd.deployment, cmd.replicas));
      w.StartObject();
      w.Key("name");
      w.String(cmd.deployment.c_str());
      w.Key("pinned");
      if (cmd.replicas) w.Int(*cmd.replicas);
      else w.Null();
      w.EndObject();
      break;
  }
  return std::string(sb.GetString(), sb.GetSize());
}

Result<std::unique_ptr<AdminApi>> AdminApi::Create(AdminApiOptions options, AdminBackend* backend, StateStore* store) {
  frontend::http::HttpServerOptions http;
  http.address = options.address;
  http.port = options.port;
  http.threads = 1;
  http.max_body_bytes = 1 << 20;
  http.name = "admin";
  FERRY_ASSIGN_OR_RETURN(auto server, frontend::http::HttpServer::Create(
                                          http, [backend, store](Request&& req, Responder respond,
                                                                 frontend::http::ClientGone) {
                                            Handle(req, backend, store, std::move(respond));
                                          }));
  return std::unique_ptr<AdminApi>(new AdminApi(std::move(server)));
}

Status AdminApi::Start() { return server_->Start(); }

}  // namespace ferry::engine
