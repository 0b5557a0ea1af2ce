#include "engine/admin_api.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

namespace ferry::engine {
namespace {
namespace fs = std::filesystem;
namespace bhttp = boost::beast::http;

class AdminApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_admin_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    store_ = std::move(StateStore::Open(dir_.string())).value();
    ASSERT_TRUE(store_->PutDeployment("d", "name: d\n", "/x/spec.yaml").ok());
    ASSERT_TRUE(store_->RecordScaleEvent({0, "d", "v1", 1, 2, "load"}).ok());
    ASSERT_TRUE(store_->RecordRestart({0, "d", "v1", 0, 77, "exit status 3", "boom\n"}).ok());
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  frontend::http::Response Get(const std::string& target, bhttp::verb verb = bhttp::verb::get) {
    frontend::http::Request req{verb, target, 11};
    return AdminApi::Handle(req, [] { return std::string(R"({"revisions":[]})"); }, store_.get());
  }
  fs::path dir_;
  std::unique_ptr<StateStore> store_;
};

TEST_F(AdminApiTest, StatusDeploymentsAndEvents) {
  EXPECT_EQ(Get("/v1/status").body(), R"({"revisions":[]})");
  auto list = Get("/v1/deployments");
  EXPECT_EQ(list.result_int(), 200);
  EXPECT_NE(list.body().find(R"("name":"d","generation":1,"spec_file":"/x/spec.yaml")"), std::string::npos)
      << list.body();
  auto events = Get("/v1/deployments/d/events?limit=5");
  EXPECT_EQ(events.result_int(), 200);
  EXPECT_NE(events.body().find(R"("from":1,"to":2,"reason":"load")"), std::string::npos) << events.body();
  EXPECT_NE(events.body().find(R"("pid":77,"exit":"exit status 3","log_tail":"boom\n")"), std::string::npos)
      << events.body();
}

TEST_F(AdminApiTest, BadRequestsNameWhatIsWrong) {
  auto bad = Get("/v1/deployments/d/events?limit=0");
  EXPECT_EQ(bad.result_int(), 400);
  EXPECT_NE(bad.body().find("query parameter 'limit' must be an integer from 1 to 1000, got '0'"), std::string::npos);
  EXPECT_EQ(Get("/v1/deployments/d/events?limit=x").result_int(), 400);
  auto unknown = Get("/v1/deployments/nope/events");
  EXPECT_EQ(unknown.result_int(), 404);
  EXPECT_NE(unknown.body().find("deployment 'nope' is not deployed"), std::string::npos);
  EXPECT_EQ(Get("/v1/other").result_int(), 404);
  EXPECT_EQ(Get("/v1/status", bhttp::verb::post).result_int(), 405);
}

}  // namespace
}  // namespace ferry::engine
