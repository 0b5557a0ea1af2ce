#pragma once

#include <boost/program_options.hpp>

#include <string>
#include <vector>

namespace ferry::cli {

struct ParsedOptions {
  boost::program_options::variables_map vm;
  int exit_code = -1;  // >= 0: stop and return it (0 after --help, 2 on a usage error)
};

// Parses a subcommand's flags, then the environment: `--foo-bar` may also come from
// `<env_prefix>FOO_BAR` (a flag wins). Prints the help for --help and the error plus the
// help on bad usage. Applies --log-level when `desc` has it.
// Repeated, comma-separated list flags ("--carry a,b --carry c") as one list; empty
// parts dropped.
std::vector<std::string> SplitCommaList(const std::vector<std::string>& values);

ParsedOptions ParseOptions(int argc, char** argv, const boost::program_options::options_description& desc,
                           const std::string& env_prefix, const std::string& command);

}  // namespace ferry::cli
