#include "engine/deployment_controller.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "engine/admin_api.h"

namespace ferry::engine {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A stand-in for `ferry serve`: answers the readiness probe for the model folders of its
// --model-repository flags, a model whose folder holds a file FAIL as UNAVAILABLE, and
// listens on its --grpc-port (the probe waits for it to accept connections).
constexpr const char* kFakeReplica = R"(#!/usr/bin/python3
import json, os, signal, socket, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
args = dict(a[2:].split("=", 1) for a in sys.argv[2:] if a.startswith("--") and "=" in a)
repos = [a.split("=", 1)[1] for a in sys.argv[2:] if a.startswith("--model-repository=")]
models = {}
for r in repos:
    for m in sorted(os.listdir(r)):
        models[m] = os.path.exists(os.path.join(r, m, "FAIL"))
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def answer(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self.answer(200, {"ready": True})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(200, [{"name": m, "state": "UNAVAILABLE" if bad else "READY", "reason": "broken" if bad else ""}
                          for m, bad in models.items()])
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
if "grpc-port" in args:
    grpc = socket.socket()
    grpc.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    grpc.bind(("127.0.0.1", int(args["grpc-port"])))
    grpc.listen(16)
print("fake replica on port", args["http-port"], flush=True)
HTTPServer(("127.0.0.1", int(args["http-port"])), H).serve_forever()
)";

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "needs /usr/bin/python3 for the fake replicas";
    dir_ = fs::temp_directory_path() / ("ferry_controller_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    for (const char* m : {"models/m1", "models/m2", "other/m1", "bad/m1", "third/m3"}) fs::create_directories(dir_ / m);
    std::ofstream(dir_ / "bad" / "m1" / "FAIL") << "x";
    std::ofstream(dir_ / "replica.py") << kFakeReplica;
    fs::permissions(dir_ / "replica.py", fs::perms::owner_all);
    store_ = std::move(StateStore::Open((dir_ / "state").string())).value();
    SupervisorOptions o;
    o.binary = (dir_ / "replica.py").string();
    o.state_dir = (dir_ / "state").string();
    o.probe_timeout = 500ms;
    supervisor_ = std::make_unique<Supervisor>(o, store_.get(), SystemClock::Get());
    controller_ = std::make_unique<DeploymentController>(supervisor_.get(), store_.get(), nullptr,
                                                         SystemClock::Get(), o.state_dir);
    ASSERT_TRUE(controller_->Init({}).ok());
  }
  void TearDown() override {
    if (supervisor_) supervisor_->StopAll(3s);
    controller_.reset();
    supervisor_.reset();
    store_.reset();
    fs::remove_all(dir_);
  }

  // One deployment `d` whose revision v1 serves `models` (folders under dir_).
  std::string Spec(const std::string& models, const std::string& extra = "") {
    return "deployments:\n- name: d\n  revisions:\n  - name: v1\n    models: [" + models +
           "]\n  restart: {initial_backoff: 100ms, crash_loop_failures: 1}\n  drain: {grace: 1s, kill_after: 1s}\n" +
           extra;
  }
  Result<std::vector<ApplyOutcome>> Apply(const std::string& text) {
    auto spec = ParseSpecIn(text, "spec.yaml", dir_.string());
    if (!spec.ok()) return spec.status();
    return controller_->Apply(std::move(spec->deployments), (dir_ / "spec.yaml").string(), false, nullptr);
  }

  // Ticks as the engine's control loop does until `pred` holds.
  template <typename Pred>
  bool TickUntil(Pred pred, std::chrono::milliseconds limit = 15000ms) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      controller_->Tick();
      supervisor_->Tick();
      if (pred()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }
  std::string Json() {
    rapidjson::StringBuffer sb;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    controller_->WriteStatus(w, supervisor_->StatusReport());
    w.EndObject();
    return sb.GetString();
  }
  bool Has(const std::string& text) { return Json().find(text) != std::string::npos; }
  // Routable endpoints of deployment d's serving revisions in the route table.
  std::vector<std::string> Routed() {
    std::vector<std::string> ids;
    auto table = controller_->Routes();
    for (const auto& d : table->deployments)
      for (const auto& r : d->revisions)
        for (const auto& e : r.replicas)
          if (e->routable) ids.push_back(e->id);
    return ids;
  }
  std::vector<std::string> RolloutKinds() {
    std::vector<std::string> kinds;
    for (const auto& e : *store_->RolloutEvents("d", 50)) kinds.insert(kinds.begin(), e.kind);
    return kinds;
  }

  fs::path dir_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<Supervisor> supervisor_;
  std::unique_ptr<DeploymentController> controller_;
};

TEST_F(ControllerTest, ARollingUpdateRoutesToTheNewReplicasOnlyOnceTheyAreReadyThenDrainsTheOld) {
  auto created = Apply(Spec("models/m1"));
  ASSERT_TRUE(created.ok()) << created.status().message();
  EXPECT_EQ((*created)[0].change, "created");
  ASSERT_TRUE(TickUntil([&] { return Has(R"("state": "done")"); })) << Json();
  EXPECT_EQ(Routed(), std::vector<std::string>{"d/v1/0"});

  // New models: a new instance of v1 starts beside the old one, unrouted.
  auto update = Apply(Spec("models/m1, models/m2"));
  ASSERT_TRUE(update.ok()) << update.status().message();
  EXPECT_EQ((*update)[0].change, "rolling");
  EXPECT_EQ((*update)[0].generation, 2);
  EXPECT_EQ((*update)[0].message, "replaces v1 (models)");
  EXPECT_TRUE(Has(R"("role": "incoming")")) << Json();
  bool saw_both = false;
  ASSERT_TRUE(TickUntil([&] {
    // Until the cut-over only the old replica is routed, even once the new one is ready.
    auto routed = Routed();
    if (Has(R"("role": "incoming")")) {
      EXPECT_EQ(routed, std::vector<std::string>{"d/v1/0"});
      saw_both = saw_both || supervisor_->ReadyCount("d", "v1@2") == 1;
    }
    return Has(R"("serving_generation": 2)");
  })) << Json();
  // The new replica got index 1 (the old one holds 0), so each has its own log file.
  EXPECT_EQ(Routed(), std::vector<std::string>{"d/v1/1"});
  EXPECT_TRUE(Has(R"("role": "retiring")")) << "the old instance drains";
  ASSERT_TRUE(TickUntil([&] { return !Has(R"("role": "retiring")"); })) << Json();
  auto report = supervisor_->StatusReport();
  ASSERT_EQ(report.size(), 1u);
  EXPECT_EQ(report[0].key, "v1@2");
  EXPECT_EQ(RolloutKinds(), (std::vector<std::string>{"created", "rolled_out", "rolling", "rolled_out"}));
  auto stored = store_->Deployments();
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ((*stored)[0].active_generation, 2);
  EXPECT_EQ((*stored)[0].active_yaml, (*stored)[0].spec_yaml);
}

TEST_F(ControllerTest, AnUpdateThatCannotLoadLeavesTheOldReplicasServingAndSaysWhy) {
  ASSERT_TRUE(Apply(Spec("models/m1")).ok());
  ASSERT_TRUE(TickUntil([&] { return Has(R"("state": "done")"); })) << Json();
  auto bad = Apply(Spec("bad/m1"));
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ((*bad)[0].change, "rolling");
  ASSERT_TRUE(TickUntil([&] { return Has(R"("state": "failed")"); })) << Json();
  EXPECT_TRUE(Has("generation 2 failed: revision 'v1' (v1@2) is crash-looping")) << Json();
  EXPECT_TRUE(Has("model 'm1' failed to load: broken")) << Json();
  EXPECT_TRUE(Has("generation 1 keeps serving")) << Json();
  EXPECT_EQ(Routed(), std::vector<std::string>{"d/v1/0"});
  ASSERT_TRUE(TickUntil([&] { return supervisor_->StatusReport().size() == 1; })) << "the new instance stops";
  auto stored = store_->Deployments();
  EXPECT_EQ((*stored)[0].generation, 2) << "the failed spec is the desired one";
  EXPECT_EQ((*stored)[0].active_generation, 1) << "an engine restart starts the one that worked";
  // The same spec again is a retry; a fixed one rolls out.
  auto again = Apply(Spec("bad/m1"));
  EXPECT_EQ((*again)[0].change, "retrying");
  auto fixed = Apply(Spec("other/m1"));
  EXPECT_EQ((*fixed)[0].change, "rolling");
  EXPECT_EQ((*fixed)[0].generation, 3);
  ASSERT_TRUE(TickUntil([&] { return Has(R"("serving_generation": 3)"); })) << Json();
  EXPECT_EQ(RolloutKinds(), (std::vector<std::string>{"created", "rolled_out", "rolling", "failed", "retrying",
                                                     "superseded", "rolling", "rolled_out"}));
}

TEST_F(ControllerTest, WeightsBoundsAndDroppedRevisionsApplyInPlace) {
  ASSERT_TRUE(Apply(Spec("models/m1")).ok());
  ASSERT_TRUE(TickUntil([&] { return Has(R"("state": "done")"); })) << Json();
  auto up = Apply(Spec("models/m1", "  replicas: {min: 2, max: 2}\n  gateway: {max_in_flight: 7}\n"));
  ASSERT_TRUE(up.ok());
  EXPECT_EQ((*up)[0].change, "in_place");
  EXPECT_EQ((*up)[0].message, "in place: replicas, gateway");
  EXPECT_EQ(controller_->Routes()->deployments[0]->max_in_flight, 7);
  EXPECT_EQ(supervisor_->Desired("d", "v1@1"), 2) << "the old instance grows to the new minimum";
  ASSERT_TRUE(TickUntil([&] { return Routed().size() == 2; })) << Json();
  auto same = Apply(Spec("models/m1", "  replicas: {min: 2, max: 2}\n  gateway: {max_in_flight: 7}\n"));
  EXPECT_EQ((*same)[0].change, "unchanged");
}

TEST_F(ControllerTest, ARenamedRevisionStartsWithAsManyReplicasAsRunNow) {
  ASSERT_TRUE(Apply(Spec("models/m1", "  replicas: {min: 2, max: 3}\n")).ok());
  auto renamed = Apply("deployments:\n- name: d\n  revisions:\n  - name: v2\n    models: [models/m1]\n"
                       "  replicas: {min: 1, max: 3}\n");
  ASSERT_TRUE(renamed.ok()) << renamed.status().message();
  EXPECT_EQ((*renamed)[0].message, "adds v2; drops v1; in place: traffic, replicas, drain, restart");
  EXPECT_EQ(supervisor_->Desired("d", "v2@2"), 2) << "its share (all) of the 2 running, above its initial 1";
  EXPECT_EQ(supervisor_->Desired("d", "v1@1"), 2) << "the old one keeps serving meanwhile";
}

TEST_F(ControllerTest, APinOverridesTheAutoscalerAndIsStored) {
  ASSERT_TRUE(Apply(Spec("models/m1", "  replicas: {min: 1, max: 2}\n")).ok());
  ASSERT_TRUE(TickUntil([&] { return Has(R"("state": "done")"); })) << Json();
  ASSERT_TRUE(controller_->Scale("d", 3).ok());
  EXPECT_EQ(supervisor_->Desired("d", "v1@1"), 3) << "beyond max: a pin overrides the bounds";
  EXPECT_EQ(*(*store_->Deployments())[0].pinned, 3);
  EXPECT_EQ(controller_->Routes()->deployments[0]->min_replicas, 3);
  ASSERT_TRUE(TickUntil([&] { return supervisor_->ReadyCount("d", "v1@1") == 3; })) << Json();
  // The autoscaler would bring an idle revision down to 1; pinned, it is not asked.
  for (int i = 0; i < 20; ++i) controller_->Tick();
  EXPECT_EQ(supervisor_->Desired("d", "v1@1"), 3);
  // A rolling update keeps the pin: the new instance starts 3.
  auto update = Apply(Spec("models/m1, models/m2", "  replicas: {min: 1, max: 2}\n"));
  ASSERT_TRUE(update.ok());
  EXPECT_EQ(supervisor_->Desired("d", "v1@2"), 3);
  ASSERT_TRUE(controller_->Scale("d", std::nullopt).ok());
  EXPECT_FALSE((*store_->Deployments())[0].pinned.has_value());
  EXPECT_EQ(supervisor_->Desired("d", "v1@1"), 2) << "back within [min, max]";
  EXPECT_EQ(controller_->Scale("nope", 1).code(), StatusCode::kNotFound);
  auto events = store_->ScaleEvents("d", 10);
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->back().reason, "pinned through the admin API");
}

TEST_F(ControllerTest, AModelOfAnotherDeploymentIsAConflictAndADeleteDrains) {
  ASSERT_TRUE(Apply(Spec("models/m1")).ok());
  auto clash = Apply("deployments:\n- name: e\n  revisions:\n  - name: v1\n    models: [other/m1]\n");
  ASSERT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(clash.status().message(),
            "model 'm1' is already served by deployment 'd'; deployment 'e' cannot serve it too (the gateway routes a "
            "model name to one deployment)");
  EXPECT_EQ(store_->Deployments()->size(), 1u) << "nothing stored";
  ASSERT_TRUE(TickUntil([&] { return Routed().size() == 1; })) << Json();
  ASSERT_TRUE(controller_->Delete("d").ok());
  EXPECT_TRUE(controller_->Routes()->deployments.empty()) << "unrouted at once";
  EXPECT_TRUE(store_->Deployments()->empty());
  ASSERT_TRUE(TickUntil([&] { return supervisor_->StatusReport().empty(); })) << "its replica drains and stops";
  EXPECT_EQ(controller_->Delete("d").code(), StatusCode::kNotFound);
  // The name and the model are free again.
  ASSERT_TRUE(Apply("deployments:\n- name: e\n  revisions:\n  - name: v1\n    models: [other/m1]\n").ok());
}

TEST_F(ControllerTest, PruneDeletesWhatTheSpecLacks) {
  const std::string two = Spec("models/m1") + "- name: e\n  revisions:\n  - name: v1\n    models: [third/m3]\n";
  ASSERT_TRUE(Apply(two).ok());
  auto spec = ParseSpecIn(Spec("models/m1"), "spec.yaml", dir_.string());
  ASSERT_TRUE(spec.ok());
  std::vector<std::string> deleted;
  auto r = controller_->Apply(std::move(spec->deployments), "spec.yaml", /*prune=*/true, &deleted);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)[0].change, "unchanged");
  EXPECT_EQ(deleted, std::vector<std::string>{"e"});
  EXPECT_EQ(controller_->Names(), std::vector<std::string>{"d"});
  EXPECT_EQ(store_->Deployments()->size(), 1u);
  ASSERT_TRUE(TickUntil([&] { return supervisor_->StatusReport().size() == 1; })) << "e's replica stops";
}

TEST_F(ControllerTest, AStoreErrorIsReportedAndChangesNothing) {
  ASSERT_TRUE(Apply(Spec("models/m1")).ok());
  // As a full disk would: SQLite cannot grow the file.
  auto pages = store_->ExecForTesting("PRAGMA max_page_count = 1");
  (void)pages;
  std::string big(64 * 1024, 'x');
  auto r = Apply("deployments:\n- name: d\n  revisions:\n  - name: v1\n    models: [models/m1, models/m2]\n"
                 "    env: {PAD: " + big + "}\n");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("database or disk is full"), std::string::npos) << r.status().message();
  EXPECT_EQ(AdminHttpStatus(r.status()), 500);
  EXPECT_EQ((*store_->Deployments())[0].generation, 1);
  EXPECT_FALSE(Has(R"("role": "incoming")")) << "nothing started";
}

}  // namespace
}  // namespace ferry::engine
