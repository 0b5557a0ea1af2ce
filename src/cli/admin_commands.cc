#include "cli/admin_commands.h"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "cli/admin_client.h"

namespace ferry::cli {
namespace po = boost::program_options;
namespace bhttp = boost::beast::http;
namespace fs = std::filesystem;
using Json = rapidjson::Document;
using Value = rapidjson::Value;

namespace {

constexpr const char* kDefaultAdmin = "http://127.0.0.1:8090";

std::string DefaultAdmin() {
  const char* env = std::getenv("FERRY_ADMIN_URL");
  return env && *env ? env : kDefaultAdmin;
}

// Flags of every admin command.
void AddCommon(po::options_description& desc) {
  desc.add_options()
    ("help,h", "print this help")
    ("admin", po::value<std::string>()->default_value(DefaultAdmin()),
     "the engine's admin API [FERRY_ADMIN_URL; default http://127.0.0.1:8090]")
    ("json", "print JSON (for scripts) instead of tables");
}

struct Args {
  po::variables_map vm;
  std::optional<AdminClient> client;
  bool json = false;
  int exit_code = -1;  // >= 0: stop with it
};

Args Parse(int argc, char** argv, const std::string& command, const std::string& usage, po::options_description& desc,
           const po::positional_options_description& positional) {
  Args a;
  auto help = [&](std::ostream& out) { out << "usage: " << usage << "\n\n" << desc << "\n"; };
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional(positional).run(), a.vm);
    po::notify(a.vm);
  } catch (const po::error& e) {
    std::cerr << "ferry " << command << ": " << e.what() << "\n\n";
    help(std::cerr);
    a.exit_code = 2;
    return a;
  }
  if (a.vm.count("help")) {
    help(std::cout);
    a.exit_code = 0;
    return a;
  }
  auto client = AdminClient::FromUrl(a.vm["admin"].as<std::string>());
  if (!client.ok()) {
    std::cerr << "ferry " << command << ": " << client.status().message() << "\n";
    a.exit_code = 2;
    return a;
  }
  a.client = std::move(client).value();
  a.json = a.vm.count("json") > 0;
  return a;
}

// A 2xx JSON answer, or the server's {"error": ...} message (or what went wrong).
Result<Json> CallJson(const AdminClient& c, bhttp::verb method, const std::string& target, const std::string& body = "",
                      const std::string& type = "application/json") {
  FERRY_ASSIGN_OR_RETURN(AdminAnswer a, c.Call(method, target, body, type));
  Json doc;
  doc.Parse(a.body.data(), a.body.size());
  if (a.status < 200 || a.status >= 300) {
    if (!doc.HasParseError() && doc.IsObject() && doc.HasMember("error") && doc["error"].IsString())
      return Status(a.status == 404 ? StatusCode::kNotFound : StatusCode::kInternal, doc["error"].GetString());
    return Internal("the admin API answered " + std::to_string(a.status) + ": " + a.body.substr(0, 300));
  }
  if (doc.HasParseError()) return Internal("the admin API answered something else than JSON: " + a.body.substr(0, 300));
  return doc;
}

int Fail(const std::string& command, const Status& s) {
  std::cerr << "ferry " << command << ": " << s.message() << "\n";
  return 1;
}

std::string Str(const Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsString() ? v[key].GetString() : "";
}
int64_t Int(const Value& v, const char* key) {
  return v.IsObject() && v.HasMember(key) && v[key].IsInt64() ? v[key].GetInt64() : 0;
}

std::string Dump(const Value& v, bool pretty = true) {
  rapidjson::StringBuffer sb;
  if (pretty) {
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
    v.Accept(w);
  } else {
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    v.Accept(w);
  }
  return std::string(sb.GetString(), sb.GetSize());
}

// Columns padded to their widest cell.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

std::string Time(int64_t ms) {
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

// Ready and desired replicas of a deployment's serving instances.
std::pair<int64_t, int64_t> Readiness(const Value& revisions) {
  int64_t ready = 0, desired = 0;
  if (revisions.IsArray())
    for (const auto& r : revisions.GetArray())
      if (Str(r, "role") == "serving") {
        ready += Int(r, "ready");
        desired += Int(r, "desired");
      }
  return {ready, desired};
}

std::atomic<bool> g_interrupted{false};
void OnInterrupt(int) { g_interrupted = true; }

// Sleeps in small steps; false once SIGINT/SIGTERM came.
bool Nap(std::chrono::milliseconds d) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    if (g_interrupted) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return !g_interrupted;
}

void CatchInterrupts() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::chrono::milliseconds Seconds(double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); }

}  // namespace

// ---------------------------------------------------------------------------- deploy

int Deploy(int argc, char** argv) {
  const std::string usage = "ferry deploy -f spec.yaml [--prune] [--no-wait] [--timeout S] [--admin URL] [--json]";
  po::options_description desc(
      "Creates or updates the deployments of a spec in a running engine (POST /v1/apply). A changed\n"
      "revision rolls out: new replicas start, take the traffic once all are ready, then the old ones\n"
      "drain. Waits until every rollout finished or failed (a failed one leaves the old replicas\n"
      "serving; exit 1).\n\noptions",
      120, 70);
  desc.add_options()
    ("file,f", po::value<std::string>(), "the spec (YAML or JSON); its relative paths are relative to its folder")
    ("prune", "also delete the engine's deployments that the spec lacks")
    ("no-wait", "return once the engine stored the change")
    ("timeout", po::value<double>()->default_value(600), "seconds to wait for the rollouts");
  AddCommon(desc);
  po::positional_options_description pos;
  Args a = Parse(argc, argv, "deploy", usage, desc, pos);
  if (a.exit_code >= 0) return a.exit_code;
  if (!a.vm.count("file")) {
    std::cerr << "ferry deploy: -f spec.yaml is required\n\nusage: " << usage << "\n";
    return 2;
  }
  const std::string file = a.vm["file"].as<std::string>();
  std::ifstream in(file);
  if (!in) {
    std::cerr << "ferry deploy: cannot read the spec file '" << file << "'\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  std::error_code ec;
  const std::string base = fs::absolute(file, ec).parent_path().string();
  std::string target = "/v1/apply?file=" + UrlEncode(file) + "&base=" + UrlEncode(base);
  if (a.vm.count("prune")) target += "&prune=1";
  auto applied = CallJson(*a.client, bhttp::verb::post, target, text.str(), "application/yaml");
  if (!applied.ok()) return Fail("deploy", applied.status());

  struct Item {
    std::string name, change, message, state, detail;
    int64_t generation = 0;
  };
  std::vector<Item> items;
  for (const auto& d : (*applied)["deployments"].GetArray())
    items.push_back({Str(d, "name"), Str(d, "change"), Str(d, "message"), "", "", Int(d, "generation")});
  std::vector<std::string> deleted;
  for (const auto& d : (*applied)["deleted"].GetArray()) deleted.push_back(d.GetString());
  if (!a.json) {
    for (const auto& i : items)
      std::cout << "deployment " << i.name << ": " << i.change << " (generation " << i.generation << ")"
                << (i.message.empty() ? "" : ": " + i.message) << "\n";
    for (const auto& d : deleted) std::cout << "deployment " << d << ": deleted (not in the spec)\n";
  }

  int rc = 0;
  if (!a.vm.count("no-wait")) {
    CatchInterrupts();
    const auto deadline = std::chrono::steady_clock::now() + Seconds(a.vm["timeout"].as<double>());
    for (auto& i : items) {
      std::string last;
      for (;;) {
        auto doc = CallJson(*a.client, bhttp::verb::get, "/v1/deployments/" + UrlEncode(i.name));
        if (!doc.ok()) {
          i.state = "error";
          i.detail = doc.status().message();
          break;
        }
        const Value& ro = (*doc)["rollout"];
        const int64_t gen = Int(ro, "generation");
        const std::string state = Str(ro, "state");
        i.detail = Str(ro, "message");
        if (gen > i.generation) {
          i.state = "superseded";
          i.detail = "superseded by generation " + std::to_string(gen);
          break;
        }
        if (gen == i.generation && (state == "done" || state == "failed")) {
          i.state = state;
          auto [ready, desired] = Readiness((*doc)["revisions"]);
          if (state == "done" && i.detail.find("replicas ready") == std::string::npos)
            i.detail += " (" + std::to_string(ready) + "/" + std::to_string(desired) + " replicas ready)";
          break;
        }
        if (!a.json && i.detail != last) {
          std::cout << "  " << i.name << ": " << i.detail << "\n";
          last = i.detail;
        }
        if (std::chrono::steady_clock::now() > deadline) {
          i.state = "timeout";
          i.detail = "still rolling after " + std::to_string(static_cast<int>(a.vm["timeout"].as<double>())) +
                     " s: " + i.detail;
          break;
        }
        if (!Nap(std::chrono::milliseconds(250))) {
          i.state = "interrupted";
          break;
        }
      }
      if (i.state != "done") rc = 1;
      if (!a.json) {
        if (i.state == "done")
          std::cout << "deployment " << i.name << ": " << i.detail << "\n";
        else
          std::cerr << "ferry deploy: deployment " << i.name << ": " << i.state << ": " << i.detail << "\n";
      }
    }
  }
  if (a.json) {
    Json out(rapidjson::kObjectType);
    auto& al = out.GetAllocator();
    Value list(rapidjson::kArrayType);
    for (const auto& i : items) {
      Value o(rapidjson::kObjectType);
      o.AddMember("name", Value(i.name.c_str(), al), al);
      o.AddMember("generation", i.generation, al);
      o.AddMember("change", Value(i.change.c_str(), al), al);
      o.AddMember("message", Value(i.message.c_str(), al), al);
      o.AddMember("state", Value((i.state.empty() ? "not waited for" : i.state).c_str(), al), al);
      o.AddMember("detail", Value(i.detail.c_str(), al), al);
      list.PushBack(o, al);
    }
    out.AddMember("deployments", list, al);
    Value del(rapidjson::kArrayType);
    for (const auto& d : deleted) del.PushBack(Value(d.c_str(), al), al);
    out.AddMember("deleted", del, al);
    std::cout << Dump(out) << "\n";
  }
  return rc;
}

// ---------------------------------------------------------------------------- status

int StatusCommand(int argc, char** argv) {
  const std::string usage = "ferry status [NAME] [--events N] [--admin URL] [--json]";
  po::options_description desc(
      "Shows the engine's deployments; with NAME, its revisions, replicas (pid, port, state, requests in\n"
      "flight, restarts) and recent events.\n\noptions",
      120, 70);
  desc.add_options()
    ("name", po::value<std::string>(), "a deployment")
    ("events", po::value<int>()->default_value(10), "recent events shown with NAME (1-1000)");
  AddCommon(desc);
  po::positional_options_description pos;
  pos.add("name", 1);
  Args a = Parse(argc, argv, "status", usage, desc, pos);
  if (a.exit_code >= 0) return a.exit_code;
  const int events = a.vm["events"].as<int>();
  if (events < 1 || events > 1000) {
    std::cerr << "ferry status: --events must be from 1 to 1000\n";
    return 2;
  }

  if (!a.vm.count("name")) {
    auto doc = CallJson(*a.client, bhttp::verb::get, "/v1/status");
    if (!doc.ok()) return Fail("status", doc.status());
    if (a.json) {
      std::cout << Dump(*doc) << "\n";
      return 0;
    }
    std::vector<std::vector<std::string>> rows = {
        {"DEPLOYMENT", "GENERATION", "SERVING", "ROLLOUT", "READY", "PINNED", "MESSAGE"}};
    for (const auto& d : (*doc)["deployments"].GetArray()) {
      const std::string name = Str(d, "name");
      int64_t ready = 0, desired = 0;
      for (const auto& r : (*doc)["revisions"].GetArray())
        if (Str(r, "deployment") == name && Str(r, "role") == "serving") {
          ready += Int(r, "ready");
          desired += Int(r, "desired");
        }
      rows.push_back({name, std::to_string(Int(d, "generation")), std::to_string(Int(d, "serving_generation")),
                      Str(d["rollout"], "state"), std::to_string(ready) + "/" + std::to_string(desired),
                      d["pinned"].IsInt() ? std::to_string(d["pinned"].GetInt()) : "-",
                      Str(d["rollout"], "message")});
    }
    if (rows.size() == 1) {
      std::cout << "no deployment (ferry deploy -f spec.yaml adds some)\n";
      return 0;
    }
    PrintTable(rows);
    return 0;
  }

  const std::string name = a.vm["name"].as<std::string>();
  auto doc = CallJson(*a.client, bhttp::verb::get, "/v1/deployments/" + UrlEncode(name));
  if (!doc.ok()) return Fail("status", doc.status());
  auto ev = CallJson(*a.client, bhttp::verb::get,
                     "/v1/deployments/" + UrlEncode(name) + "/events?limit=" + std::to_string(events));
  if (!ev.ok()) return Fail("status", ev.status());
  if (a.json) {
    Json out(rapidjson::kObjectType);
    auto& al = out.GetAllocator();
    out.AddMember("deployment", Value(*doc, al), al);
    out.AddMember("events", Value(*ev, al), al);
    std::cout << Dump(out) << "\n";
    return 0;
  }
  const Value& d = *doc;
  std::cout << "deployment " << name << ": generation " << Int(d, "generation") << ", serving generation "
            << Int(d, "serving_generation") << "\n";
  std::cout << "rollout:    " << Str(d["rollout"], "state") << " (generation " << Int(d["rollout"], "generation")
            << "): " << Str(d["rollout"], "message") << "\n";
  std::string traffic;
  for (auto it = d["traffic"].MemberBegin(); it != d["traffic"].MemberEnd(); ++it)
    traffic += (traffic.empty() ? "" : ", ") + std::string(it->name.GetString()) + "=" +
               std::to_string(it->value.GetInt());
  std::cout << "traffic:    " << traffic << "\n";
  std::cout << "replicas:   "
            << (d["pinned"].IsInt() ? "pinned at " + std::to_string(d["pinned"].GetInt()) + " per revision (ferry scale)"
                                    : "autoscaled within the spec's bounds")
            << "\n";
  std::cout << "spec file:  " << Str(d, "spec_file") << "\n\n";
  std::vector<std::vector<std::string>> revs = {{"REVISION", "INSTANCE", "GEN", "ROLE", "READY", "DEGRADED"}};
  std::vector<std::vector<std::string>> reps = {
      {"REVISION", "INSTANCE", "REPLICA", "PID", "PORT", "STATE", "IN-FLIGHT", "RESTARTS"}};
  for (const auto& r : d["revisions"].GetArray()) {
    revs.push_back({Str(r, "revision"), Str(r, "instance"), std::to_string(Int(r, "generation")), Str(r, "role"),
                    std::to_string(Int(r, "ready")) + "/" + std::to_string(Int(r, "desired")),
                    r["degraded"].GetBool() ? "yes: " + Str(r, "degraded_reason").substr(0, 100) : "no"});
    for (const auto& p : r["replicas"].GetArray())
      reps.push_back({Str(r, "revision"), Str(r, "instance"), std::to_string(Int(p, "index")),
                      Int(p, "pid") > 0 ? std::to_string(Int(p, "pid")) : "-", std::to_string(Int(p, "port")),
                      Str(p, "state"), std::to_string(Int(p, "in_flight")), std::to_string(Int(p, "restarts"))});
  }
  PrintTable(revs);
  std::cout << "\n";
  if (reps.size() > 1) PrintTable(reps);
  else std::cout << "no replica running\n";

  struct Line {
    int64_t ts;
    std::string kind, text;
  };
  std::vector<Line> lines;
  for (const auto& e : (*ev)["rollouts"].GetArray())
    lines.push_back({Int(e, "ts_ms"), Str(e, "kind"),
                     "generation " + std::to_string(Int(e, "generation")) + ": " + Str(e, "message")});
  for (const auto& e : (*ev)["scale_events"].GetArray())
    lines.push_back({Int(e, "ts_ms"), "replicas",
                     Str(e, "revision") + " " + std::to_string(Int(e, "from")) + " -> " + std::to_string(Int(e, "to")) +
                         ": " + Str(e, "reason")});
  for (const auto& e : (*ev)["restarts"].GetArray())
    lines.push_back({Int(e, "ts_ms"), "restart",
                     Str(e, "revision") + " replica " + std::to_string(Int(e, "replica")) + " pid " +
                         std::to_string(Int(e, "pid")) + ": " + Str(e, "exit")});
  std::stable_sort(lines.begin(), lines.end(), [](const Line& x, const Line& y) { return x.ts > y.ts; });
  if (lines.size() > static_cast<size_t>(events)) lines.resize(static_cast<size_t>(events));
  std::cout << "\nrecent events:\n";
  if (lines.empty()) std::cout << "  none\n";
  for (const auto& l : lines) {
    std::string text = l.text;
    std::replace(text.begin(), text.end(), '\n', ' ');
    if (text.size() > 160) text = text.substr(0, 157) + "...";
    std::cout << "  " << Time(l.ts) << "  " << l.kind << std::string(l.kind.size() < 11 ? 11 - l.kind.size() : 1, ' ')
              << text << "\n";
  }
  return 0;
}

// ---------------------------------------------------------------------------- scale

int Scale(int argc, char** argv) {
  const std::string usage = "ferry scale NAME N | ferry scale NAME --auto  [--no-wait] [--timeout S] [--admin URL] [--json]";
  po::options_description desc(
      "Pins every revision of a deployment to N replicas, overriding the autoscaler and the spec's\n"
      "bounds (stored: an engine restart keeps it), or hands it back to the autoscaler (--auto).\n"
      "Waits until N replicas per revision are ready and no other runs.\n\noptions",
      120, 70);
  desc.add_options()
    ("name", po::value<std::string>(), "the deployment")
    ("replicas", po::value<int>(), "replicas per revision (0-1000)")
    ("auto", "autoscale again, within the spec's replicas bounds")
    ("no-wait", "return once the engine stored the change")
    ("timeout", po::value<double>()->default_value(300), "seconds to wait for the replicas");
  AddCommon(desc);
  po::positional_options_description pos;
  pos.add("name", 1).add("replicas", 1);
  Args a = Parse(argc, argv, "scale", usage, desc, pos);
  if (a.exit_code >= 0) return a.exit_code;
  const bool automatic = a.vm.count("auto") > 0;
  if (!a.vm.count("name") || automatic == (a.vm.count("replicas") > 0)) {
    std::cerr << "ferry scale: give a deployment and either a replica count or --auto\n\nusage: " << usage << "\n";
    return 2;
  }
  const std::string name = a.vm["name"].as<std::string>();
  int n = 0;
  if (!automatic) {
    n = a.vm["replicas"].as<int>();
    if (n < 0 || n > 1000) {
      std::cerr << "ferry scale: the replica count must be from 0 to 1000, got " << n << "\n";
      return 2;
    }
  }
  const std::string body = automatic ? R"({"auto": true})" : R"({"replicas": )" + std::to_string(n) + "}";
  auto r = CallJson(*a.client, bhttp::verb::post, "/v1/deployments/" + UrlEncode(name) + "/scale", body);
  if (!r.ok()) return Fail("scale", r.status());
  if (!a.json)
    std::cout << "deployment " << name << ": "
              << (automatic ? "autoscaled again" : "pinned at " + std::to_string(n) + " replicas per revision") << "\n";
  int rc = 0;
  std::string detail;
  if (!automatic && !a.vm.count("no-wait")) {
    CatchInterrupts();
    const auto deadline = std::chrono::steady_clock::now() + Seconds(a.vm["timeout"].as<double>());
    for (;;) {
      auto doc = CallJson(*a.client, bhttp::verb::get, "/v1/deployments/" + UrlEncode(name));
      if (!doc.ok()) return Fail("scale", doc.status());
      bool done = true;
      std::string progress;
      for (const auto& rev : (*doc)["revisions"].GetArray()) {
        if (Str(rev, "role") != "serving") continue;
        const int64_t ready = Int(rev, "ready");
        const auto running = static_cast<int64_t>(rev["replicas"].GetArray().Size());
        done = done && ready == n && running == n;
        progress += (progress.empty() ? "" : ", ") + Str(rev, "revision") + " " + std::to_string(ready) + "/" +
                    std::to_string(n) + " ready, " + std::to_string(running) + " running";
      }
      detail = progress;
      if (done) break;
      if (std::chrono::steady_clock::now() > deadline) {
        std::cerr << "ferry scale: timed out: " << progress << "\n";
        rc = 1;
        break;
      }
      if (!Nap(std::chrono::milliseconds(250))) {
        rc = 1;
        break;
      }
    }
    if (rc == 0 && !a.json) std::cout << "deployment " << name << ": " << detail << "\n";
  }
  if (a.json) {
    Json out(rapidjson::kObjectType);
    auto& al = out.GetAllocator();
    out.AddMember("name", Value(name.c_str(), al), al);
    if (automatic) out.AddMember("pinned", Value(), al);
    else out.AddMember("pinned", n, al);
    out.AddMember("ready", rc == 0, al);
    out.AddMember("detail", Value(detail.c_str(), al), al);
    std::cout << Dump(out) << "\n";
  }
  return rc;
}

// ---------------------------------------------------------------------------- delete

int Delete(int argc, char** argv) {
  const std::string usage = "ferry delete NAME [--no-wait] [--timeout S] [--admin URL] [--json]";
  po::options_description desc(
      "Deletes a deployment: its models leave the gateway at once, its replicas drain (requests in\n"
      "flight finish) and stop. Waits until they are gone.\n\noptions",
      120, 70);
  desc.add_options()
    ("name", po::value<std::string>(), "the deployment")
    ("no-wait", "return once the engine stored the change")
    ("timeout", po::value<double>()->default_value(120), "seconds to wait for its replicas to stop");
  AddCommon(desc);
  po::positional_options_description pos;
  pos.add("name", 1);
  Args a = Parse(argc, argv, "delete", usage, desc, pos);
  if (a.exit_code >= 0) return a.exit_code;
  if (!a.vm.count("name")) {
    std::cerr << "ferry delete: give the deployment to delete\n\nusage: " << usage << "\n";
    return 2;
  }
  const std::string name = a.vm["name"].as<std::string>();
  auto r = CallJson(*a.client, bhttp::verb::delete_, "/v1/deployments/" + UrlEncode(name));
  if (!r.ok()) return Fail("delete", r.status());
  if (!a.json) std::cout << "deployment " << name << ": deleted; its replicas drain\n";
  int rc = 0;
  size_t left = 0;
  if (!a.vm.count("no-wait")) {
    CatchInterrupts();
    const auto deadline = std::chrono::steady_clock::now() + Seconds(a.vm["timeout"].as<double>());
    for (;;) {
      auto doc = CallJson(*a.client, bhttp::verb::get, "/v1/status");
      if (!doc.ok()) return Fail("delete", doc.status());
      left = 0;
      for (const auto& rev : (*doc)["revisions"].GetArray())
        if (Str(rev, "deployment") == name) left += rev["replicas"].GetArray().Size();
      if (left == 0) break;
      if (std::chrono::steady_clock::now() > deadline || !Nap(std::chrono::milliseconds(250))) {
        std::cerr << "ferry delete: " << left << " replica(s) of " << name << " still running\n";
        rc = 1;
        break;
      }
    }
    if (rc == 0 && !a.json) std::cout << "deployment " << name << ": every replica stopped\n";
  }
  if (a.json) {
    Json out(rapidjson::kObjectType);
    auto& al = out.GetAllocator();
    out.AddMember("deleted", Value(name.c_str(), al), al);
    out.AddMember("replicas_left", static_cast<uint64_t>(left), al);
    std::cout << Dump(out) << "\n";
  }
  return rc;
}

// ---------------------------------------------------------------------------- logs

int Logs(int argc, char** argv) {
  const std::string usage =
      "ferry logs NAME [--revision R] [--replica I] [--tail N] [-f] [--admin URL] [--json]";
  po::options_description desc(
      "Prints a replica's log (its output and the engine's notes about it). Default: the first replica of\n"
      "the serving revision with the most traffic. -f follows it (polling every 0.5 s) until Ctrl-C.\n\noptions",
      120, 70);
  desc.add_options()
    ("name", po::value<std::string>(), "the deployment")
    ("revision", po::value<std::string>(), "a revision of it")
    ("replica", po::value<int>(), "a replica index (as in ferry status)")
    ("tail", po::value<int>()->default_value(100), "lines to start with")
    ("follow,f", "keep printing what the replica writes");
  AddCommon(desc);
  po::positional_options_description pos;
  pos.add("name", 1);
  Args a = Parse(argc, argv, "logs", usage, desc, pos);
  if (a.exit_code >= 0) return a.exit_code;
  if (!a.vm.count("name")) {
    std::cerr << "ferry logs: give the deployment\n\nusage: " << usage << "\n";
    return 2;
  }
  const int tail = a.vm["tail"].as<int>();
  if (tail < 1 || tail > 100000) {
    std::cerr << "ferry logs: --tail must be from 1 to 100000\n";
    return 2;
  }
  const std::string base = "/v1/deployments/" + UrlEncode(a.vm["name"].as<std::string>()) + "/logs?";
  std::string which;
  if (a.vm.count("revision")) which += "revision=" + UrlEncode(a.vm["revision"].as<std::string>()) + "&";
  if (a.vm.count("replica")) which += "replica=" + std::to_string(a.vm["replica"].as<int>()) + "&";
  auto first = CallJson(*a.client, bhttp::verb::get, base + which + "tail=" + std::to_string(tail));
  if (!first.ok()) return Fail("logs", first.status());
  auto print = [&](const Json& doc) {
    if (a.json) std::cout << Dump(doc, /*pretty=*/false) << "\n";
    else std::cout << Str(doc, "text");
    std::cout.flush();
  };
  print(*first);
  if (!a.vm.count("follow")) return 0;
  // Stay on the replica the first answer resolved to.
  which = "revision=" + UrlEncode(Str(*first, "revision")) + "&replica=" + std::to_string(Int(*first, "replica")) + "&";
  uint64_t offset = (*first)["offset"].GetUint64();
  CatchInterrupts();
  while (Nap(std::chrono::milliseconds(500))) {
    auto next = CallJson(*a.client, bhttp::verb::get, base + which + "offset=" + std::to_string(offset));
    if (!next.ok()) return Fail("logs", next.status());
    if (!Str(*next, "text").empty()) print(*next);
    offset = (*next)["offset"].GetUint64();
  }
  return 0;
}

}  // namespace ferry::cli
