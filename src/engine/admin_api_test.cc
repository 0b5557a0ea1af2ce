#include "engine/admin_api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ferry::engine {
namespace {
namespace fs = std::filesystem;
namespace bhttp = boost::beast::http;

// Records what the API hands to the control thread and answers as told.
class FakeBackend : public AdminBackend {
 public:
  std::string StatusJson() override { return R"({"revisions":[]})"; }
  std::optional<std::string> DeploymentJson(const std::string& name) override {
    if (name != "d") return std::nullopt;
    return std::string(R"({"name":"d"})");
  }
  Result<LogTarget> ResolveLogs(const std::string& name, const std::optional<std::string>& revision,
                                std::optional<int> replica) override {
    if (name != "d") return NotFound("deployment '" + name + "' is not deployed");
    return LogTarget{revision.value_or("v1"), replica.value_or(0), log_path};
  }
  void Submit(AdminCommand command, std::function<void(Result<std::string>)> done) override {
    commands.push_back(std::move(command));
    if (answer.ok()) done(std::string(R"({"ok":true})"));
    else done(answer);
  }
  std::vector<AdminCommand> commands;
  Status answer;
  std::string log_path;
};

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_admin_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "specs" / "models" / "m" / "1");
    store_ = std::move(StateStore::Open((dir_ / "state").string())).value();
    ASSERT_TRUE(store_->PutDeployment("d", "name: d\n", "/x/spec.yaml").ok());
    ASSERT_TRUE(store_->RecordScaleEvent({0, "d", "v1", 1, 2, "load"}).ok());
    ASSERT_TRUE(store_->RecordRestart({0, "d", "v1", 0, 77, "exit status 3", "boom\n"}).ok());
    ASSERT_TRUE(store_->RecordRolloutEvent({0, "d", 2, "failed", "generation 2 failed: no"}).ok());
    backend_.log_path = (dir_ / "replica-0.log").string();
    std::ofstream(backend_.log_path) << "one\ntwo\nthree\n";
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  frontend::http::Response Call(bhttp::verb verb, const std::string& target, const std::string& body = "") {
    frontend::http::Request req{verb, target, 11};
    req.body() = body;
    frontend::http::Response out;
    bool answered = false;
    AdminApi::Handle(req, &backend_, store_.get(), [&](frontend::http::Response r) {
      out = std::move(r);
      answered = true;
    });
    EXPECT_TRUE(answered) << target;
    return out;
  }
  frontend::http::Response Get(const std::string& target) { return Call(bhttp::verb::get, target); }
  std::string Base() { return (dir_ / "specs").string(); }

  fs::path dir_;
  std::unique_ptr<StateStore> store_;
  FakeBackend backend_;
};

TEST_F(AdminApiTest, ReadsStatusDeploymentsEventsAndLogs) {
  EXPECT_EQ(Get("/v1/status").body(), R"({"revisions":[]})");
  auto list = Get("/v1/deployments");
  EXPECT_EQ(list.result_int(), 200);
  EXPECT_NE(list.body().find(R"("name":"d","generation":1,"active_generation":0,"pinned":null,"spec_file":"/x/spec.yaml")"),
            std::string::npos)
      << list.body();
  EXPECT_EQ(Get("/v1/deployments/d").body(), R"({"name":"d"})");
  auto events = Get("/v1/deployments/d/events?limit=5");
  EXPECT_EQ(events.result_int(), 200);
  EXPECT_NE(events.body().find(R"("from":1,"to":2,"reason":"load")"), std::string::npos) << events.body();
  EXPECT_NE(events.body().find(R"("pid":77,"exit":"exit status 3","log_tail":"boom\n")"), std::string::npos)
      << events.body();
  EXPECT_NE(events.body().find(R"("generation":2,"kind":"failed","message":"generation 2 failed: no")"),
            std::string::npos)
      << events.body();
  auto logs = Get("/v1/deployments/d/logs?tail=2&revision=v1&replica=0");
  EXPECT_EQ(logs.result_int(), 200);
  EXPECT_NE(logs.body().find(R"("revision":"v1","replica":0)"), std::string::npos) << logs.body();
  EXPECT_NE(logs.body().find(R"("offset":14,"rotated":false,"truncated":false,"text":"two\nthree\n")"),
            std::string::npos)
      << logs.body();
  auto follow = Get("/v1/deployments/d/logs?offset=8");
  EXPECT_NE(follow.body().find(R"("text":"three\n")"), std::string::npos) << follow.body();
}

TEST_F(AdminApiTest, ChangesAreParsedHereAndAppliedByTheBackend) {
  const std::string spec = "deployments:\n- name: d\n  revisions:\n  - name: v1\n    models: [models/m]\n";
  auto applied = Call(bhttp::verb::post, "/v1/apply?file=spec.yaml&base=" + Base() + "&prune=1", spec);
  EXPECT_EQ(applied.result_int(), 200) << applied.body();
  ASSERT_EQ(backend_.commands.size(), 1u);
  const AdminCommand& c = backend_.commands[0];
  EXPECT_EQ(c.kind, AdminCommand::Kind::kApply);
  EXPECT_TRUE(c.prune);
  EXPECT_EQ(c.spec_file, Base() + "/spec.yaml") << "its folder anchors the relative paths on restart";
  ASSERT_EQ(c.specs.size(), 1u);
  EXPECT_EQ(c.specs[0].revisions[0].model_folders[0], Base() + "/models/m");

  // JSON, one deployment.
  auto put = Call(bhttp::verb::put, "/v1/deployments/d?base=" + Base(),
                  R"({"name": "d", "revisions": [{"name": "v1", "models": ["models/m"]}]})");
  EXPECT_EQ(put.result_int(), 200) << put.body();
  EXPECT_EQ(backend_.commands.back().specs.at(0).name, "d");

  EXPECT_EQ(Call(bhttp::verb::delete_, "/v1/deployments/d").result_int(), 200);
  EXPECT_EQ(backend_.commands.back().kind, AdminCommand::Kind::kDelete);
  EXPECT_EQ(Call(bhttp::verb::post, "/v1/deployments/d/scale", R"({"replicas": 3})").result_int(), 200);
  EXPECT_EQ(backend_.commands.back().replicas, 3);
  EXPECT_EQ(Call(bhttp::verb::post, "/v1/deployments/d/scale", R"({"auto": true})").result_int(), 200);
  EXPECT_EQ(backend_.commands.back().replicas, std::nullopt);

  // What the control thread reports comes back with its status code.
  backend_.answer = Status(StatusCode::kAlreadyExists, "model 'm' is already served by deployment 'x'");
  auto conflict = Call(bhttp::verb::put, "/v1/deployments/d?base=" + Base(),
                       "name: d\nrevisions: [{name: v1, models: [models/m]}]\n");
  EXPECT_EQ(conflict.result_int(), 409);
  EXPECT_NE(conflict.body().find("already served by deployment 'x'"), std::string::npos);
  backend_.answer = Unavailable("state database '/s/engine.db': write: database is locked");
  EXPECT_EQ(Call(bhttp::verb::delete_, "/v1/deployments/d").result_int(), 500);
  backend_.answer = NotFound("deployment 'x' is not deployed");
  EXPECT_EQ(Call(bhttp::verb::delete_, "/v1/deployments/x").result_int(), 404);
}

TEST_F(AdminApiTest, BadRequestsNameWhatIsWrong) {
  auto expect = [&](frontend::http::Response r, int status, const std::string& text) {
    EXPECT_EQ(r.result_int(), status) << r.body();
    EXPECT_NE(r.body().find(text), std::string::npos) << r.body();
  };
  expect(Get("/v1/deployments/d/events?limit=0"), 400,
         "query parameter 'limit' must be an integer from 1 to 1000, got '0'");
  expect(Get("/v1/deployments/nope/events"), 404, "deployment 'nope' is not deployed");
  expect(Get("/v1/deployments/nope"), 404, "deployment 'nope' is not deployed");
  expect(Get("/v1/other"), 404, "Not Found");
  auto not_allowed = Call(bhttp::verb::post, "/v1/status");
  expect(not_allowed, 405, "Method Not Allowed");
  EXPECT_EQ(not_allowed[bhttp::field::allow], "GET");
  EXPECT_EQ(Call(bhttp::verb::patch, "/v1/deployments/d")[bhttp::field::allow], "GET, PUT, DELETE");
  expect(Get("/v1/apply"), 405, "allowed: POST");

  // Specs: the parser's message, with file, line, column and field.
  expect(Call(bhttp::verb::post, "/v1/apply?file=spec.yaml&base=" + Base(),
              "deployments:\n- name: d\n  revisions:\n  - name: v1\n    models: [models/m]\n  replicas: {min: 3, max: 2}\n"),
         400, "spec.yaml:6:27: deployments[0].replicas.max: must be at least min (3), got 2");
  expect(Call(bhttp::verb::post, "/v1/apply",
              "deployments:\n- name: d\n  revisions:\n  - name: v1\n    models: [models/m]\n"),
         400, "request:5:14: deployments[0].revisions[0].models[0]: relative path 'models/m' needs a base folder");
  expect(Call(bhttp::verb::post, "/v1/apply?base=relative", "deployments: []"), 400,
         "query parameter 'base' must be an absolute folder, got 'relative'");
  expect(Call(bhttp::verb::post, "/v1/apply?base=/no/such/folder", "deployments: []"), 400,
         "query parameter 'base': folder '/no/such/folder' does not exist");
  expect(Call(bhttp::verb::post, "/v1/apply?prune=maybe", "deployments: []"), 400,
         "query parameter 'prune' must be true or false, got 'maybe'");
  expect(Call(bhttp::verb::post, "/v1/apply", ""), 400, "the body is empty");
  expect(Call(bhttp::verb::post, "/v1/apply", "deployments: []"), 400, "deployments: the list is empty");
  expect(Call(bhttp::verb::post, "/v1/apply", "{\"deployments\": [}"), 400, "invalid YAML");
  expect(Call(bhttp::verb::put, "/v1/deployments/other?base=" + Base(),
              "name: d\nrevisions: [{name: v1, models: [models/m]}]\n"),
         400, "field 'name' ('d') differs from the deployment of the URL ('other')");
  expect(Call(bhttp::verb::put, "/v1/deployments/d?base=" + Base(), "name: d\nrevisions: [{name: v1, model: x}]\n"), 400,
         "request:2:24: revisions[0].model: unknown field");

  // Scale bodies.
  for (const auto& [body, text] : std::vector<std::pair<std::string, std::string>>{
           {"", "the body must be a JSON object such as {\\\"replicas\\\": 3}"},
           {"[3]", "the body must be a JSON object"},
           {R"({"replicas": -1})", "field 'replicas' must be an integer from 0 to 1000, got -1"},
           {R"({"replicas": "3"})", "field 'replicas' must be an integer from 0 to 1000, got \\\"3\\\""},
           {R"({"replicas": 2.5})", "field 'replicas' must be an integer from 0 to 1000, got 2.5"},
           {R"({"replica": 3})", "field 'replica' is unknown (expected 'replicas' or 'auto')"},
           {R"({"auto": false})", "field 'auto' must be true"},
           {R"({"auto": true, "replicas": 1})", "send field 'replicas' or field 'auto', not both"},
           {R"({})", "field 'replicas' is required"}})
    expect(Call(bhttp::verb::post, "/v1/deployments/d/scale", body), 400, text);
  EXPECT_EQ(Call(bhttp::verb::get, "/v1/deployments/d/scale").result_int(), 405);

  // Logs.
  expect(Get("/v1/deployments/d/logs?replica=x"), 400, "query parameter 'replica' must be an integer");
  expect(Get("/v1/deployments/d/logs?tail=0"), 400, "query parameter 'tail' must be an integer from 1 to 100000");
  expect(Get("/v1/deployments/d/logs?tail=5&offset=0"), 400, "'tail' and 'offset' exclude each other");
  expect(Get("/v1/deployments/nope/logs"), 404, "deployment 'nope' is not deployed");
  EXPECT_TRUE(backend_.commands.empty()) << "nothing bad reaches the control thread";
}

TEST(ScrapeTargetsTest, OneGroupForTheEngineAndEachRunningReplica) {
  const std::string status = R"({"pid": 1, "metrics_port": 8092, "revisions": [
    {"deployment": "arith", "revision": "v1", "replicas": [
      {"index": 0, "pid": 10, "metrics_port": 40001},
      {"index": 1, "pid": -1, "metrics_port": 0}]},
    {"deployment": "cls", "revision": "v2", "replicas": [{"index": 3, "pid": 12, "metrics_port": 40003}]}]})";
  EXPECT_EQ(ScrapeTargets(status),
            R"([{"targets":["127.0.0.1:8092"],"labels":{"ferry_role":"engine"}},)"
            R"({"targets":["127.0.0.1:40001"],"labels":{"ferry_role":"replica","deployment":"arith","revision":"v1","replica":"0"}},)"
            R"({"targets":["127.0.0.1:40003"],"labels":{"ferry_role":"replica","deployment":"cls","revision":"v2","replica":"3"}}])");
  EXPECT_EQ(ScrapeTargets("not json"), "[]");
  EXPECT_EQ(ScrapeTargets(R"({"metrics_port": 0, "revisions": []})"), "[]");
}

}  // namespace
}  // namespace ferry::engine
