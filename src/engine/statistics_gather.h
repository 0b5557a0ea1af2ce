#pragma once

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/router.h"

namespace ferry::engine {

// The REST gateway's answer to GET /v2/models/{m}[/versions/{v}]/stats: the same GET sent
// to every given replica at once, and their answers summed (protocol::MergeStatistics),
// so a deployment's statistics count every replica's requests rather than those of the
// one a plain forward would reach.
// `done` gets the HTTP status and JSON body: 200 with the sum; the first replica's
// non-200 answer as it is (404 for an unknown version, ...); 502 naming the replica that
// failed to answer within `timeout` or sent something that is not a statistics body.
// Runs on `loop` (not owned; must outlive the exchanges): `done` is called there, once.
void GatherStatistics(boost::asio::io_context* loop, std::string target,
                      std::vector<std::shared_ptr<ReplicaEndpoint>> replicas, std::chrono::milliseconds timeout,
                      std::function<void(int status, std::string body)> done);

}  // namespace ferry::engine
