#pragma once

#include <boost/program_options.hpp>

#include <memory>
#include <string>

#include "core/result.h"
#include "server/server.h"

namespace ferry::cli {

// The flags every command that runs models in-process shares (`ferry serve`, `ferry
// batch`): --model-repository, --runtime-dir, --plugin-dir, --default-max-batch-size,
// --intra-op-threads, --python-executable, --python-sdk-path. `env` is the variable
// prefix shown in the help ("FERRY_", "FERRY_BATCH_").
void AddModelOptions(boost::program_options::options_description& desc, const std::string& env);

// Fills `options` (repositories, batching and thread defaults) from those flags.
// INVALID_ARGUMENT naming the flag when one is missing or out of range.
Status ModelOptionsFromFlags(const boost::program_options::variables_map& vm, server::ModelManagerOptions* options);

// The runtime registry those flags describe: the built-in runtimes (modules found in
// --runtime-dir), the Python runtimes, and plugins from --plugin-dir. Logs what it
// registered.
Result<std::unique_ptr<runtime::RuntimeRegistry>> RuntimesFromFlags(const boost::program_options::variables_map& vm);

// OK when `model` (at `version`, empty: the latest) is ready on `server`; otherwise
// UNAVAILABLE saying why it did not load ("model 'm' did not load: <reason>").
Status CheckModelLoaded(const server::Server& server, const std::string& model, const std::string& version);

}  // namespace ferry::cli
