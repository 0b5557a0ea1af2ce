#include <cstring>
#include <iostream>

#include "cli/batch.h"
#include "cli/admin_commands.h"
#include "cli/engine.h"
#include "cli/profile.h"
#include "cli/runtimes.h"
#include "cli/serve.h"
#include "cli/stream.h"

namespace {

void Usage(std::ostream& out) {
  out << "ferry: serve trained models over the Open Inference Protocol (KServe V2)\n\n"
         "usage: ferry <command> [options]\n\n"
         "commands:\n"
         "  serve      run the inference server on a model repository\n"
         "  runtimes   list the runtimes built in and the plugins found\n"
         "  engine     run deployments of replicas behind a gateway (docs/engine.md)\n"
         "  batch      run a model over a CSV, JSONL or .npy file, resumably (docs/batch.md)\n"
#ifdef FERRY_WITH_KAFKA
         "  stream     run a model over Kafka messages, exactly once (docs/streaming.md)\n"
#endif
         "  profile    build a model's reference profile from its training data (docs/monitoring.md)\n"
         "  deploy     create or update a running engine's deployments from a spec\n"
         "  status     a running engine's deployments, revisions and replicas\n"
         "  scale      pin a deployment's replicas, or autoscale it again\n"
         "  delete     drain and stop a deployment\n"
         "  logs       print or follow a replica's log\n"
         "  version    print the version\n\n"
         "Run 'ferry <command> --help' for the options of a command.\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage(std::cerr);
    return 2;
  }
  if (!std::strcmp(argv[1], "serve")) return ferry::cli::Serve(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "runtimes")) return ferry::cli::Runtimes(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "batch")) return ferry::cli::Batch(argc - 1, argv + 1);
#ifdef FERRY_WITH_KAFKA
  if (!std::strcmp(argv[1], "stream")) return ferry::cli::Stream(argc - 1, argv + 1);
#endif
  if (!std::strcmp(argv[1], "profile")) return ferry::cli::Profile(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "engine")) return ferry::cli::Engine(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "deploy")) return ferry::cli::Deploy(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "status")) return ferry::cli::StatusCommand(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "scale")) return ferry::cli::Scale(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "delete")) return ferry::cli::Delete(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "logs")) return ferry::cli::Logs(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "version") || !std::strcmp(argv[1], "--version")) {
#ifdef FERRY_ALLOCATOR
    std::cout << "ferry " << FERRY_VERSION << " (allocator: " << FERRY_ALLOCATOR << ")\n";
#else
    std::cout << "ferry " << FERRY_VERSION << " (allocator: glibc malloc)\n";
#endif
    return 0;
  }
  if (!std::strcmp(argv[1], "help") || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    Usage(std::cout);
    return 0;
  }
  std::cerr << "ferry: unknown command '" << argv[1] << "'\n\n";
  Usage(std::cerr);
  return 2;
}
