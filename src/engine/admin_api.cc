#include "engine/admin_api.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <charconv>

#include "protocol/v2_json.h"

namespace ferry::engine {
namespace bhttp = boost::beast::http;
using frontend::http::Request;
using frontend::http::Response;

namespace {

Response Json(int status, std::string body) { return frontend::http::JsonResponse(status, std::move(body)); }
Response Error(int status, std::string_view message) { return frontend::http::JsonError(status, message); }

// The value of `key` in a query string ("a=1&limit=5"), or nullopt.
std::optional<std::string_view> QueryParam(std::string_view query, std::string_view key) {
  while (!query.empty()) {
    std::string_view pair = query.substr(0, query.find('&'));
    query = pair.size() < query.size() ? query.substr(pair.size() + 1) : std::string_view();
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == key) return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
  }
  return std::nullopt;
}

}  // namespace

Response AdminApi::Handle(const Request& req, const std::function<std::string()>& status, StateStore* store) {
  std::string_view target(req.target().data(), req.target().size());
  const size_t q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  const bool get = req.method() == bhttp::verb::get || req.method() == bhttp::verb::head;
  constexpr std::string_view kDeployments = "/v1/deployments";

  if (path == "/v1/status") {
    if (!get) return Error(405, "Method Not Allowed");
    return Json(200, status());
  }
  if (path.substr(0, kDeployments.size()) != kDeployments) return Error(404, "Not Found");
  if (!get) return Error(405, "Method Not Allowed");
  auto stored = store->Deployments();
  if (!stored.ok()) return Error(503, stored.status().message());
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  std::string_view rest = path.substr(kDeployments.size());
  if (rest.empty() || rest == "/") {
    w.StartArray();
    for (const auto& d : *stored) {
      w.StartObject();
      w.Key("name");
      w.String(d.name.c_str());
      w.Key("generation");
      w.Int64(d.generation);
      w.Key("spec_file");
      w.String(d.spec_file.c_str());
      w.Key("updated_ms");
      w.Int64(d.updated_ms);
      w.EndObject();
    }
    w.EndArray();
    return Json(200, std::string(sb.GetString(), sb.GetSize()));
  }
  // /{name}/events
  constexpr std::string_view kEvents = "/events";
  if (rest.size() <= kEvents.size() + 1 || rest.substr(rest.size() - kEvents.size()) != kEvents)
    return Error(404, "Not Found");
  const std::string name(rest.substr(1, rest.size() - 1 - kEvents.size()));
  bool known = false;
  for (const auto& d : *stored) known = known || d.name == name;
  if (!known) return Error(404, "deployment '" + name + "' is not deployed");
  int limit = 20;
  if (auto v = QueryParam(query, "limit")) {
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), limit);
    if (ec != std::errc() || p != v->data() + v->size() || limit < 1 || limit > 1000)
      return Error(400, "query parameter 'limit' must be an integer from 1 to 1000, got '" + std::string(*v) + "'");
  }
  auto scale = store->ScaleEvents(name, limit);
  auto restarts = store->Restarts(name, limit);
  if (!scale.ok()) return Error(503, scale.status().message());
  if (!restarts.ok()) return Error(503, restarts.status().message());
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
    w.String(e.log_tail.c_str());
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return Json(200, std::string(sb.GetString(), sb.GetSize()));
}

Result<std::unique_ptr<AdminApi>> AdminApi::Create(AdminApiOptions options, std::function<std::string()> status,
                                                   StateStore* store) {
  frontend::http::HttpServerOptions http;
  http.address = options.address;
  http.port = options.port;
  http.threads = 1;
  http.max_body_bytes = 1 << 20;
  http.name = "admin";
  FERRY_ASSIGN_OR_RETURN(auto server, frontend::http::HttpServer::Create(
                                          http, [status = std::move(status), store](
                                                    Request&& req, frontend::http::Responder respond,
                                                    frontend::http::ClientGone) {
                                            respond(Handle(req, status, store));
                                          }));
  return std::unique_ptr<AdminApi>(new AdminApi(std::move(server)));
}

Status AdminApi::Start() { return server_->Start(); }

}  // namespace ferry::engine
