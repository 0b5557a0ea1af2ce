// The shared completion-queue services (health, reflection) served by CallPollers on a
// real gRPC server on loopback, called through the generated stubs.
#include <gtest/gtest.h>

#include <dirent.h>

#include <fstream>
#include <memory>
#include <string>

#include "frontend/grpc/call_pollers.h"
#include "frontend/grpc/health_service.h"
#include "frontend/grpc/reflection_service.h"

namespace ferry::frontend::grpc {
namespace {
namespace hv1 = ::grpc::health::v1;
namespace rv = ::grpc::reflection::v1alpha;

// Names of this process's threads (/proc/self/task/*/comm).
std::vector<std::string> ThreadNames() {
  std::vector<std::string> names;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return names;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream f(std::string("/proc/self/task/") + e->d_name + "/comm");
    std::string name;
    std::getline(f, name);
    names.push_back(name);
  }
  closedir(d);
  return names;
}

class GrpcServicesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", ::grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(health_.service());
    builder.RegisterService(reflection_.service());
    pollers_ = std::make_unique<CallPollers>(&builder, 2);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    pollers_->Start([this](::grpc::ServerCompletionQueue* cq) {
      health_.Arm(cq, pollers_->live());
      reflection_.Arm(cq, pollers_->live());
    });
    channel_ = ::grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), ::grpc::InsecureChannelCredentials());
  }
  void TearDown() override { Stop(); }

  void Stop() {
    if (!server_) return;
    health_.Shutdown();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    pollers_->Drain();
    server_->Wait();
    server_.reset();
  }

  ::grpc::Status Check(const std::string& service, hv1::HealthCheckResponse* resp) {
    ::grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    hv1::HealthCheckRequest req;
    req.set_service(service);
    return hv1::Health::NewStub(channel_)->Check(&ctx, req, resp);
  }

  HealthService health_;
  ReflectionService reflection_{{"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}};
  std::unique_ptr<CallPollers> pollers_;
  std::unique_ptr<::grpc::Server> server_;
  std::shared_ptr<::grpc::Channel> channel_;
  int port_ = 0;
};

TEST_F(GrpcServicesTest, CheckAnswersKnownNamesAndNotFoundForOthers) {
  health_.Set("m", true);
  hv1::HealthCheckResponse resp;
  ASSERT_TRUE(Check("m", &resp).ok());
  EXPECT_EQ(resp.status(), hv1::HealthCheckResponse::SERVING);
  health_.Set("m", false);
  ASSERT_TRUE(Check("m", &resp).ok());
  EXPECT_EQ(resp.status(), hv1::HealthCheckResponse::NOT_SERVING);
  ::grpc::Status s = Check("other", &resp);
  EXPECT_EQ(s.error_code(), ::grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("'other'"), std::string::npos) << s.error_message();
}

TEST_F(GrpcServicesTest, WatchStreamsEveryChangeThenEndsAtShutdown) {
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  hv1::HealthCheckRequest req;
  req.set_service("m");
  auto reader = hv1::Health::NewStub(channel_)->Watch(&ctx, req);
  hv1::HealthCheckResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), hv1::HealthCheckResponse::SERVICE_UNKNOWN);
  health_.Set("m", true);
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), hv1::HealthCheckResponse::SERVING);
  health_.Set("m", true);  // no change: nothing sent
  health_.Set("other", false);  // another name: nothing sent
  health_.Set("m", false);
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), hv1::HealthCheckResponse::NOT_SERVING);
  health_.Set("m", true);
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), hv1::HealthCheckResponse::SERVING);
  health_.Shutdown();
  ASSERT_TRUE(reader->Read(&resp));
  EXPECT_EQ(resp.status(), hv1::HealthCheckResponse::NOT_SERVING);
  EXPECT_FALSE(reader->Read(&resp));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(GrpcServicesTest, CancelledWatchIsFreedBeforeDrainReturns) {
  auto ctx = std::make_unique<::grpc::ClientContext>();
  hv1::HealthCheckRequest req;
  req.set_service("m");
  auto reader = hv1::Health::NewStub(channel_)->Watch(ctx.get(), req);
  hv1::HealthCheckResponse resp;
  ASSERT_TRUE(reader->Read(&resp));
  ctx->TryCancel();
  EXPECT_FALSE(reader->Read(&resp));
  Stop();  // hangs if the watch never frees itself
  EXPECT_EQ(pollers_->live()->count(), 0);
}

TEST_F(GrpcServicesTest, ReflectionListsServicesAndFilesAndAnswersErrorsInBand) {
  ::grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = rv::ServerReflection::NewStub(channel_)->ServerReflectionInfo(&ctx);
  rv::ServerReflectionRequest req;
  rv::ServerReflectionResponse resp;

  req.set_list_services("");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_TRUE(resp.has_list_services_response());
  ASSERT_EQ(resp.list_services_response().service_size(), 2);
  EXPECT_EQ(resp.list_services_response().service(0).name(), "grpc.health.v1.Health");

  req.set_file_containing_symbol("no.such.Symbol");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_TRUE(resp.has_error_response());
  EXPECT_EQ(resp.error_response().error_code(), static_cast<int>(::grpc::StatusCode::NOT_FOUND));
  EXPECT_NE(resp.error_response().error_message().find("no.such.Symbol"), std::string::npos);

  req.set_file_containing_symbol("grpc.health.v1.Health.Check");  // the stream stayed open
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_TRUE(resp.has_file_descriptor_response());
  ASSERT_EQ(resp.file_descriptor_response().file_descriptor_proto_size(), 1);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(resp.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.name(), "protocol/grpc/health.proto");
  EXPECT_EQ(file.service(0).name(), "Health");
  EXPECT_EQ(resp.original_request().file_containing_symbol(), "grpc.health.v1.Health.Check");

  req.set_file_by_filename("protocol/grpc/reflection.proto");
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_TRUE(resp.has_file_descriptor_response());

  req.Clear();
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.error_response().error_code(), static_cast<int>(::grpc::StatusCode::INVALID_ARGUMENT));

  ASSERT_TRUE(stream->WritesDone());
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(ReflectionAnswerTest, FilesComeWithTheirImportsOnce) {
  ReflectionService reflection({});
  rv::ServerReflectionRequest req;
  req.set_host("h");
  req.set_file_by_filename("google/protobuf/descriptor.proto");
  auto resp = reflection.Answer(req);
  EXPECT_EQ(resp.valid_host(), "h");
  ASSERT_EQ(resp.file_descriptor_response().file_descriptor_proto_size(), 1);  // imports nothing
  req.set_all_extension_numbers_of_type("google.protobuf.FileOptions");
  resp = reflection.Answer(req);
  ASSERT_TRUE(resp.has_all_extension_numbers_response()) << resp.DebugString();
  EXPECT_EQ(resp.all_extension_numbers_response().base_type_name(), "google.protobuf.FileOptions");
  req.mutable_file_containing_extension()->set_containing_type("google.protobuf.FileOptions");
  req.mutable_file_containing_extension()->set_extension_number(99999);
  resp = reflection.Answer(req);
  EXPECT_EQ(resp.error_response().error_code(), static_cast<int>(::grpc::StatusCode::NOT_FOUND));
}

// With every service on completion queues, gRPC starts none of its callback-API
// ("nexting_thread") or sync-API ("grpcpp_sync_ser") threads, which would poll the same
// sockets as ferry's threads.
TEST_F(GrpcServicesTest, NoGrpcExecutorThreads) {
  hv1::HealthCheckResponse resp;
  health_.Set("", true);
  ASSERT_TRUE(Check("", &resp).ok());
  for (const auto& name : ThreadNames()) {
    EXPECT_NE(name, "nexting_thread");
    EXPECT_NE(name.rfind("grpcpp_sync", 0), 0u) << name;
  }
}

}  // namespace
}  // namespace ferry::frontend::grpc
