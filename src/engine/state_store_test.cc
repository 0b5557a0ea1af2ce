#include "engine/state_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>

namespace ferry::engine {
namespace {
namespace fs = std::filesystem;

class StateStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ferry_store_test_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(StateStoreTest, DeploymentsSurviveReopen) {
  {
    auto store = StateStore::Open(dir_.string());
    ASSERT_TRUE(store.ok()) << store.status().message();
    ASSERT_TRUE((*store)->PutDeployment("b", "name: b\n", "/x/spec.yaml").ok());
    ASSERT_TRUE((*store)->PutDeployment("a", "name: a\n", "/x/spec.yaml").ok());
    ASSERT_TRUE((*store)->PutDeployment("a", "name: a\n", "/x/spec.yaml").ok());  // unchanged
    ASSERT_TRUE((*store)->PutDeployment("b", "name: b\nreplicas: 2\n", "/y/spec.yaml").ok());
  }
  auto store = StateStore::Open(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto deps = (*store)->Deployments();
  ASSERT_TRUE(deps.ok());
  ASSERT_EQ(deps->size(), 2u);
  EXPECT_EQ((*deps)[0].name, "a");
  EXPECT_EQ((*deps)[0].generation, 1) << "an identical update is not a new generation";
  EXPECT_EQ((*deps)[1].name, "b");
  EXPECT_EQ((*deps)[1].generation, 2);
  EXPECT_EQ((*deps)[1].spec_yaml, "name: b\nreplicas: 2\n");
  EXPECT_EQ((*deps)[1].spec_file, "/y/spec.yaml");
  EXPECT_GT((*deps)[1].updated_ms, 0);
  ASSERT_TRUE((*store)->DeleteDeployment("a").ok());
  EXPECT_EQ((*store)->DeleteDeployment("a").code(), StatusCode::kNotFound);
  EXPECT_EQ((*store)->Deployments()->size(), 1u);
}

TEST_F(StateStoreTest, UsesWalJournal) {
  auto store = StateStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "engine.db").c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)), "wal");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST_F(StateStoreTest, EventsComeBackNewestFirst) {
  auto store = StateStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  for (int i = 1; i <= 3; ++i)
    ASSERT_TRUE((*store)->RecordScaleEvent({0, "d", "v1", i, i + 1, "load " + std::to_string(i)}).ok());
  ASSERT_TRUE((*store)->RecordScaleEvent({0, "other", "v1", 1, 0, "idle"}).ok());
  ASSERT_TRUE((*store)->RecordRestart({0, "d", "v1", 1, 4242, "killed by signal 9", "last line\n"}).ok());
  auto events = (*store)->ScaleEvents("d", 2);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].reason, "load 3");
  EXPECT_EQ((*events)[0].from, 3);
  EXPECT_EQ((*events)[0].to, 4);
  EXPECT_EQ((*events)[1].reason, "load 2");
  auto restarts = (*store)->Restarts("d", 10);
  ASSERT_TRUE(restarts.ok());
  ASSERT_EQ(restarts->size(), 1u);
  EXPECT_EQ((*restarts)[0].pid, 4242);
  EXPECT_EQ((*restarts)[0].exit, "killed by signal 9");
  EXPECT_EQ((*restarts)[0].log_tail, "last line\n");
}

TEST_F(StateStoreTest, SecondEngineOnTheSameFolderIsRefused) {
  auto first = StateStore::Open(dir_.string());
  ASSERT_TRUE(first.ok());
  auto second = StateStore::Open(dir_.string());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("in use by another ferry engine"), std::string::npos)
      << second.status().message();
}

TEST_F(StateStoreTest, LockedDatabaseIsAClearError) {
  auto store = StateStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "engine.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr), SQLITE_OK);
  Status s = (*store)->PutDeployment("d", "name: d\n", "spec.yaml");
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find((dir_ / "engine.db").string()), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("locked"), std::string::npos) << s.message();
  EXPECT_TRUE((*store)->PutDeployment("d", "name: d\n", "spec.yaml").ok()) << "works again once released";
}

TEST_F(StateStoreTest, PinsActiveSpecsAndRolloutEventsSurviveReopen) {
  {
    auto store = StateStore::Open(dir_.string());
    ASSERT_TRUE(store.ok());
    auto out = (*store)->WriteDeployments({{"a", "name: a\n", "/x/s.yaml"}, {"b", "name: b\n", "/x/s.yaml"}}, {});
    ASSERT_TRUE(out.ok());
    EXPECT_TRUE((*out)[0].created && (*out)[0].changed);
    ASSERT_TRUE((*store)->SetActive("a", "name: a\n", "/x/s.yaml", 1).ok());
    ASSERT_TRUE((*store)->SetReplicaPin("a", 3).ok());
    ASSERT_TRUE((*store)->RecordRolloutEvent({0, "a", 1, "rolled_out", "ok"}).ok());
    EXPECT_EQ((*store)->SetReplicaPin("nope", 1).code(), StatusCode::kNotFound);
    auto again = (*store)->WriteDeployments({{"a", "name: a\nreplicas: 2\n", "/x/s.yaml"}}, {"b"});
    ASSERT_TRUE(again.ok());
    EXPECT_EQ((*again)[0].generation, 2);
    EXPECT_TRUE((*again)[0].changed && !(*again)[0].created);
    // All or nothing: a delete of an unknown name undoes the put before it.
    auto bad = (*store)->WriteDeployments({{"a", "name: a\nreplicas: 3\n", "/x/s.yaml"}}, {"nope"});
    EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  }
  auto store = StateStore::Open(dir_.string());
  ASSERT_TRUE(store.ok());
  auto deps = (*store)->Deployments();
  ASSERT_TRUE(deps.ok());
  ASSERT_EQ(deps->size(), 1u);
  const StoredDeployment& a = (*deps)[0];
  EXPECT_EQ(a.spec_yaml, "name: a\nreplicas: 2\n") << "the failed transaction changed nothing";
  EXPECT_EQ(a.generation, 2);
  EXPECT_EQ(a.active_yaml, "name: a\n");
  EXPECT_EQ(a.active_generation, 1);
  EXPECT_EQ(a.pinned, 3);
  ASSERT_TRUE((*store)->SetReplicaPin("a", std::nullopt).ok());
  EXPECT_FALSE((*(*store)->Deployments())[0].pinned.has_value());
  auto events = (*store)->RolloutEvents("a", 5);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].kind, "rolled_out");
}

TEST_F(StateStoreTest, AFirstSchemaDatabaseIsUpgradedWithItsSpecsActive) {
  fs::create_directories(dir_);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "engine.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TABLE deployments (name TEXT PRIMARY KEY, spec_yaml TEXT NOT NULL, spec_file TEXT NOT "
                         "NULL, generation INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
                         "INSERT INTO deployments VALUES ('old', 'name: old\n', '/x/s.yaml', 4, 0);"
                         "PRAGMA user_version=1;",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = StateStore::Open(dir_.string());
  ASSERT_TRUE(store.ok()) << store.status().message();
  auto deps = (*store)->Deployments();
  ASSERT_TRUE(deps.ok()) << deps.status().message();
  ASSERT_EQ(deps->size(), 1u);
  EXPECT_EQ((*deps)[0].active_yaml, "name: old\n");
  EXPECT_EQ((*deps)[0].active_generation, 4);
  EXPECT_FALSE((*deps)[0].pinned.has_value());
}

TEST_F(StateStoreTest, UncreatableFolderIsAClearError) {
  fs::create_directories(dir_);
  std::ofstream(dir_ / "file") << "x";
  auto store = StateStore::Open((dir_ / "file" / "state").string());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("cannot be created"), std::string::npos) << store.status().message();
}

}  // namespace
}  // namespace ferry::engine
