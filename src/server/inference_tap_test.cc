// The server hands every answered request of a wanted model to the inference tap:
// successes with their outputs, failures with the error, on every path that answers.
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "monitoring/inference_tap.h"
#include "monitoring/monitoring_hub.h"
#include "monitoring/request_sampling.h"
#include "server/server.h"

namespace ferry::server {
namespace {

namespace fs = std::filesystem;

// Answers OUT = IN (FP32).
class EchoInstance : public runtime::ModelInstance {
 public:
  Result<std::vector<Tensor>> Execute(const std::vector<Tensor>& inputs, const std::vector<std::string>&,
                                      runtime::ExecTimings*) override {
    Tensor out = inputs.at(0);
    out.name = "OUT";
    return std::vector<Tensor>{out};
  }
};

class EchoRuntime : public runtime::Runtime {
 public:
  std::string_view name() const override { return "echo"; }
  std::string_view platform() const override { return "echo_platform"; }
  std::string_view default_filename() const override { return "model.echo"; }
  std::string version() const override { return "1"; }
  Status AutoComplete(const fs::path&, inference::ModelConfig*) override { return Status::Ok(); }
  Result<std::unique_ptr<runtime::ModelInstance>> CreateInstance(const fs::path&, const inference::ModelConfig&,
                                                                 const runtime::InstanceOptions&) override {
    return std::unique_ptr<runtime::ModelInstance>(std::make_unique<EchoInstance>());
  }
};

class RecordingTap : public monitoring::InferenceTap {
 public:
  bool Wants(std::string_view model, std::string_view) const override { return model == "watched"; }
  void Offer(monitoring::InferenceRecord record) override {
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(std::move(record));
  }
  std::vector<monitoring::InferenceRecord> Take() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::move(records_);
  }

 private:
  std::mutex mu_;
  std::vector<monitoring::InferenceRecord> records_;
};

void WriteModel(const fs::path& repo, const std::string& name, const std::string& extra = "") {
  fs::create_directories(repo / name / "1");
  std::ofstream(repo / name / "1" / "model.echo") << "x";
  std::ofstream(repo / name / "config.pbtxt") << "name: \"" << name << "\"\nbackend: \"echo\"\n"
      << "input [{ name: \"IN\" data_type: TYPE_FP32 dims: [2] }]\n"
      << "output [{ name: \"OUT\" data_type: TYPE_FP32 dims: [2] }]\n" << extra;
}

Tensor Fp32(std::string name, std::vector<float> values) {
  Tensor t;
  t.name = std::move(name);
  t.datatype = DataType::kFp32;
  t.shape = {static_cast<int64_t>(values.size())};
  t.Own(std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
  return t;
}

class InferenceTapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = fs::temp_directory_path() / ("ferry_tap_test_" + std::to_string(::getpid()));
    fs::remove_all(repo_);
    WriteModel(repo_, "watched");
    WriteModel(repo_, "ignored");
    auto runtimes = std::make_unique<runtime::RuntimeRegistry>();
    runtimes->Register(std::make_unique<EchoRuntime>());
    ServerOptions options;
    options.models.repositories = {repo_};
    auto server = Server::Create(std::move(options), std::move(runtimes));
    ASSERT_TRUE(server.ok()) << server.status().message();
    server_ = std::move(server).value();
    server_->SetInferenceTap(&tap_);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    server_.reset();
    fs::remove_all(repo_);
  }

  Result<InferResponse> Infer(InferRequest request) {
    std::promise<Result<InferResponse>> answered;
    server_->Infer(std::move(request), [&answered](Result<InferResponse> r) { answered.set_value(std::move(r)); });
    return answered.get_future().get();
  }

  fs::path repo_;
  RecordingTap tap_;
  std::unique_ptr<Server> server_;
};

TEST_F(InferenceTapTest, SuccessCarriesRequestAndResponseTensors) {
  InferRequest request;
  request.model_name = "watched";
  request.id = "req-1";
  request.inputs.push_back(Fp32("IN", {1.5f, -2.0f}));
  ASSERT_TRUE(Infer(std::move(request)).ok());
  server_->Shutdown();  // every answer is handed over before the callback, so nothing is pending
  auto records = tap_.Take();
  ASSERT_EQ(records.size(), 1u);
  const auto& r = records[0];
  EXPECT_EQ(r.model, "watched");
  EXPECT_EQ(r.version, "1");
  EXPECT_EQ(r.request_id, "req-1");
  EXPECT_EQ(r.code, StatusCode::kOk);
  EXPECT_TRUE(r.error.empty());
  EXPECT_GT(r.received_wall_ms, 0u);
  ASSERT_EQ(r.inputs.size(), 1u);
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].name, "OUT");
  EXPECT_EQ(r.outputs[0].bytes(), r.inputs[0].bytes());
}

TEST_F(InferenceTapTest, FailuresCarryTheErrorAndUnwantedModelsAreSkipped) {
  InferRequest bad;  // a wrong datatype fails validation
  bad.model_name = "watched";
  bad.id = "req-bad";
  Tensor t = Fp32("IN", {1.0f, 2.0f});
  t.datatype = DataType::kInt32;
  bad.inputs.push_back(t);
  auto answer = Infer(std::move(bad));
  ASSERT_FALSE(answer.ok());

  InferRequest other;
  other.model_name = "ignored";
  other.inputs.push_back(Fp32("IN", {1.0f, 2.0f}));
  ASSERT_TRUE(Infer(std::move(other)).ok());

  // A body that did not decode is reported by the frontend through CountFailure.
  server_->CountFailure("watched", "", InvalidArgument("unexpected token at offset 3"), Frontend::kGrpc, "req-x");

  auto records = tap_.Take();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].request_id, "req-bad");
  EXPECT_EQ(records[0].code, answer.status().code());
  EXPECT_EQ(records[0].error, answer.status().message());
  EXPECT_EQ(records[0].inputs.size(), 1u);
  EXPECT_TRUE(records[0].outputs.empty());
  EXPECT_EQ(records[1].request_id, "req-x");
  EXPECT_EQ(records[1].frontend, Frontend::kGrpc);
  EXPECT_EQ(records[1].code, StatusCode::kInvalidArgument);
  EXPECT_EQ(records[1].error, "unexpected token at offset 3");
  EXPECT_TRUE(records[1].inputs.empty());
}

// Asks for the answers only, of half the requests by id (like a payload log of
// responses at a sample rate of 0.5).
class SamplingTap : public RecordingTap {
 public:
  monitoring::TapDemand Demand(std::string_view model, std::string_view version) const override {
    return Wants(model, version) ? monitoring::TapDemand{true, false, true, 0.5} : monitoring::TapDemand{};
  }
};

TEST(InferenceTapSamplingTest, RecordsHoldWhatTheTapAsksForAndOnlyItsSample) {
  const fs::path repo = fs::temp_directory_path() / ("ferry_tap_sampling_" + std::to_string(::getpid()));
  fs::remove_all(repo);
  WriteModel(repo, "watched");
  auto runtimes = std::make_unique<runtime::RuntimeRegistry>();
  runtimes->Register(std::make_unique<EchoRuntime>());
  ServerOptions options;
  options.models.repositories = {repo};
  SamplingTap tap;  // outlives the server
  auto server = Server::Create(std::move(options), std::move(runtimes));
  ASSERT_TRUE(server.ok());
  (*server)->SetInferenceTap(&tap);
  ASSERT_TRUE((*server)->Start().ok());
  std::set<std::string> sampled;
  for (int i = 0; i < 200; ++i) {
    InferRequest request;
    request.model_name = "watched";
    request.id = "req-" + std::to_string(i);
    if (monitoring::Sampled(request.id, 0.5)) sampled.insert(request.id);
    request.inputs.push_back(Fp32("IN", {1.0f, static_cast<float>(i)}));
    std::promise<Result<InferResponse>> answered;
    (*server)->Infer(std::move(request), [&answered](Result<InferResponse> r) { answered.set_value(std::move(r)); });
    ASSERT_TRUE(answered.get_future().get().ok());
  }
  // Outside the sample the failure path builds no record either.
  for (int i = 0; i < 20; ++i)
    (*server)->CountFailure("watched", "", InvalidArgument("bad body"), Frontend::kHttp, "bad-" + std::to_string(i));
  (*server)->Shutdown();
  std::set<std::string> offered;
  size_t failures = 0, failures_sampled = 0;
  for (int i = 0; i < 20; ++i) failures_sampled += monitoring::Sampled("bad-" + std::to_string(i), 0.5);
  for (const auto& r : tap.Take()) {
    if (r.code != StatusCode::kOk) {
      ++failures;
      EXPECT_TRUE(monitoring::Sampled(r.request_id, 0.5)) << r.request_id;
      continue;
    }
    offered.insert(r.request_id);
    EXPECT_TRUE(r.inputs.empty()) << "inputs were not asked for";
    ASSERT_EQ(r.outputs.size(), 1u);
    EXPECT_EQ(r.outputs[0].name, "OUT");
  }
  EXPECT_EQ(offered, sampled);
  EXPECT_GT(sampled.size(), 60u);
  EXPECT_LT(sampled.size(), 140u);
  EXPECT_EQ(failures, failures_sampled);
  fs::remove_all(repo);
}

// A consumer that keeps the settings it was attached with and the records it got.
class KeepingConsumer : public monitoring::RecordConsumer {
 public:
  Status Attach(const monitoring::MonitoredModel& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    attached_[m.model + "/" + m.version] = m;
    if (m.settings.count("test.bad")) return InvalidArgument("monitoring.test.bad: not a number");
    return Status::Ok();
  }
  void Detach(std::string_view model, std::string_view version) override {
    std::lock_guard<std::mutex> lock(mu_);
    attached_.erase(std::string(model) + "/" + std::string(version));
  }
  bool Wants(std::string_view model, std::string_view version) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = attached_.find(std::string(model) + "/" + std::string(version));
    return it != attached_.end() && it->second.settings.count("test.on");
  }
  void Consume(const monitoring::InferenceRecord& r) override {
    std::lock_guard<std::mutex> lock(mu_);
    records_.push_back(r);
  }
  std::map<std::string, monitoring::MonitoredModel> attached() const {
    std::lock_guard<std::mutex> lock(mu_);
    return attached_;
  }
  std::vector<monitoring::InferenceRecord> records() const {
    std::lock_guard<std::mutex> lock(mu_);
    return records_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, monitoring::MonitoredModel> attached_;
  std::vector<monitoring::InferenceRecord> records_;
};

TEST(MonitoringHubWiringTest, VersionsReachTheHubWithTheirSettingsAndRequestsGetIds) {
  const fs::path repo = fs::temp_directory_path() / ("ferry_hub_wiring_" + std::to_string(::getpid()));
  fs::remove_all(repo);
  WriteModel(repo, "watched",
             "parameters [{ key: \"monitoring.test.on\" value: { string_value: \"yes\" } },\n"
             "            { key: \"monitoring.test.window\" value: { string_value: \"50\" } },\n"
             "            { key: \"intra_op_thread_count\" value: { string_value: \"1\" } }]\n");
  WriteModel(repo, "plain");
  WriteModel(repo, "broken", "parameters [{ key: \"monitoring.test.bad\" value: { string_value: \"x\" } }]\n");
  monitoring::MonitoringHub hub({}, nullptr);
  auto owned = std::make_unique<KeepingConsumer>();
  KeepingConsumer* consumer = owned.get();
  hub.AddConsumer(std::move(owned), "test");
  hub.Start();
  auto runtimes = std::make_unique<runtime::RuntimeRegistry>();
  runtimes->Register(std::make_unique<EchoRuntime>());
  ServerOptions options;
  options.models.repositories = {repo};
  options.models.mode = ControlMode::kExplicit;
  auto server = Server::Create(std::move(options), std::move(runtimes));
  ASSERT_TRUE(server.ok());
  (*server)->SetMonitoringHub(&hub, {{"test.window", "10"}, {"test.default", "d"}});
  ASSERT_TRUE((*server)->Start().ok());

  auto attached = consumer->attached();
  ASSERT_TRUE(attached.count("watched/1"));
  const auto& m = attached["watched/1"];
  EXPECT_EQ(m.model_dir, repo / "watched");
  EXPECT_EQ(m.settings, (std::map<std::string, std::string, std::less<>>{
                            {"test.on", "yes"}, {"test.window", "50"}, {"test.default", "d"}}))
      << "the config's monitoring.* over the defaults; other parameters left out";
  EXPECT_TRUE(hub.Wants("watched", "1"));
  EXPECT_FALSE(hub.Wants("plain", "1"));
  // A refused setting is shown in the index; the version serves all the same.
  bool shown = false;
  for (const auto& e : (*server)->RepositoryIndex(false))
    if (e.name == "broken") {
      EXPECT_EQ(e.state, ModelState::kReady);
      EXPECT_EQ(e.reason, "model 'broken' version 1: monitoring: monitoring.test.bad: not a number");
      shown = true;
    }
  EXPECT_TRUE(shown);

  auto infer = [&](const std::string& model, const std::string& id) {
    InferRequest request;
    request.model_name = model;
    request.id = id;
    request.inputs.push_back(Fp32("IN", {1.0f, 2.0f}));
    std::promise<Result<InferResponse>> answered;
    (*server)->Infer(std::move(request), [&answered](Result<InferResponse> r) { answered.set_value(std::move(r)); });
    return answered.get_future().get();
  };
  auto with_id = infer("watched", "mine");
  auto without = infer("watched", "");
  auto unmonitored = infer("plain", "");
  ASSERT_TRUE(with_id.ok() && without.ok() && unmonitored.ok());
  EXPECT_EQ(with_id->id, "mine");
  EXPECT_EQ(without->id.size(), 36u) << "a generated UUID: " << without->id;
  EXPECT_TRUE(unmonitored->id.empty()) << "ids are generated for monitored models only";

  ASSERT_TRUE((*server)->UnloadModel("watched").ok());
  EXPECT_FALSE(hub.Wants("watched", "1"));
  EXPECT_FALSE(consumer->attached().count("watched/1"));
  (*server)->Shutdown();
  hub.Stop();
  auto records = consumer->records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].request_id, "mine");
  EXPECT_EQ(records[1].request_id, without->id);
  server->reset();
  fs::remove_all(repo);
}

}  // namespace
}  // namespace ferry::server
