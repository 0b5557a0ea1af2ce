#include "engine/router.h"

#include <gtest/gtest.h>

#include <map>

namespace ferry::engine {
namespace {

std::shared_ptr<ReplicaEndpoint> Endpoint(const std::string& id, bool routable, int outstanding) {
  auto e = std::make_shared<ReplicaEndpoint>(id, 1);
  e->routable = routable;
  e->outstanding = outstanding;
  return e;
}

DeploymentRoute OneRevision(std::vector<std::shared_ptr<ReplicaEndpoint>> replicas) {
  DeploymentRoute d;
  d.name = "d";
  d.revisions.push_back({"v1", 100, std::move(replicas), std::make_shared<RevisionLoad>()});
  return d;
}

TEST(RouterTest, PowerOfTwoChoicesNeverPicksTheBusiestOfThree) {
  auto d = OneRevision({Endpoint("idle", true, 0), Endpoint("some", true, 3), Endpoint("busy", true, 50)});
  std::minstd_rand rng(7);
  std::map<std::string, int> picks;
  for (int i = 0; i < 3000; ++i) ++picks[Router::Pick(d, nullptr, rng)->id];
  EXPECT_EQ(picks.count("busy"), 0u) << "the busiest is always compared with a less busy one";
  // "idle" wins every pair it is in (2 of 3 pairs): about 2000 picks.
  EXPECT_GT(picks["idle"], picks["some"]);
}

TEST(RouterTest, SkipsReplicasThatAreNotRoutable) {
  auto d = OneRevision({Endpoint("starting", false, 0), Endpoint("ready", true, 100)});
  std::minstd_rand rng(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Router::Pick(d, nullptr, rng)->id, "ready");
  d.revisions[0].replicas[1]->routable = false;
  EXPECT_EQ(Router::Pick(d, nullptr, rng), nullptr);
}

TEST(RouterTest, AvoidsTheFailedReplicaUnlessItIsTheOnlyOne) {
  auto a = Endpoint("a", true, 0);
  auto d = OneRevision({a, Endpoint("b", true, 10)});
  std::minstd_rand rng(3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Router::Pick(d, a.get(), rng)->id, "b");
  d.revisions[0].replicas[1]->routable = false;
  EXPECT_EQ(Router::Pick(d, a.get(), rng)->id, "a") << "a new connection to the same replica beats no retry";
}

TEST(RouterTest, SplitsTrafficByWeightAmongRevisionsThatCanServe) {
  DeploymentRoute d;
  d.revisions.push_back({"stable", 90, {Endpoint("s", true, 0)}, std::make_shared<RevisionLoad>()});
  d.revisions.push_back({"canary", 10, {Endpoint("c", true, 0)}, std::make_shared<RevisionLoad>()});
  d.revisions.push_back({"dark", 0, {Endpoint("x", true, 0)}, std::make_shared<RevisionLoad>()});
  std::minstd_rand rng(11);
  std::map<std::string, int> picks;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    const RevisionRoute* rev = nullptr;
    ASSERT_NE(Router::Pick(d, nullptr, rng, &rev), nullptr);
    ++picks[rev->name];
  }
  EXPECT_EQ(picks.count("dark"), 0u) << "weight 0 gets no traffic";
  EXPECT_NEAR(picks["canary"] / double(n), 0.10, 0.01);
  // A revision with no ready replica gives its share to the others.
  d.revisions[0].replicas[0]->routable = false;
  for (int i = 0; i < 100; ++i) EXPECT_EQ(Router::Pick(d, nullptr, rng)->id, "c");
}

TEST(RouterTest, DeploymentCanStartUnlessEveryWeightedRevisionIsDegraded) {
  DeploymentRoute d;
  d.revisions.push_back({"a", 50, {}, std::make_shared<RevisionLoad>()});
  d.revisions.push_back({"b", 0, {}, std::make_shared<RevisionLoad>()});
  EXPECT_TRUE(d.CanStartReplica());
  d.revisions[0].load->degraded = true;
  EXPECT_FALSE(d.CanStartReplica()) << "b has no traffic, so it does not count";
}

TEST(RouterTest, PublishSwapsSnapshots) {
  Router r;
  auto before = r.Snapshot();
  EXPECT_TRUE(before->by_model.empty());
  auto t = std::make_shared<RouteTable>();
  t->by_model["m"] = std::make_shared<DeploymentRoute>(OneRevision({}));
  r.Publish(t);
  EXPECT_EQ(r.Snapshot()->by_model.count("m"), 1u);
  EXPECT_TRUE(before->by_model.empty()) << "an old snapshot stays as it was";
}

}  // namespace
}  // namespace ferry::engine
