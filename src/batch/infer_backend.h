#pragma once

#include <memory>
#include <string>

#include "core/infer_request.h"
#include "core/result.h"
#include "repository/model_config.pb.h"

namespace ferry::server {
class Server;
}

namespace ferry::batch {

// A model version as a batch job sees it: the version number it resolved to (pinned for
// every request and recorded in the checkpoint) and its config.
struct ResolvedModel {
  std::string version;
  inference::ModelConfig config;
};

// Where a batch job's requests go: the Server facade in this process, or a remote V2
// endpoint (RemoteV2Backend). Thread-safety: Infer may be called from several threads;
// `done` runs once per request, on a thread of the backend's, and must not block.
class InferBackend {
 public:
  virtual ~InferBackend() = default;
  // `version` empty: the latest ready version. Errors name the model.
  virtual Result<ResolvedModel> Resolve(const std::string& model, const std::string& version) = 0;
  virtual void Infer(InferRequest request, InferCallback done) = 0;
  // Whether an Infer error means the job cannot go on (a remote endpoint that stayed
  // unreachable through every retry) rather than that the rows failed.
  virtual bool StopsTheJob(const Status&) const { return false; }
};

// The in-process backend over `server` (started, with the model loaded; not owned).
std::unique_ptr<InferBackend> InProcessBackend(server::Server& server);

}  // namespace ferry::batch
