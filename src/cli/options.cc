#include "cli/options.h"

#include <cctype>
#include <iostream>

#include "core/log.h"

namespace ferry::cli {
namespace po = boost::program_options;

ParsedOptions ParseOptions(int argc, char** argv, const po::options_description& desc, const std::string& env_prefix,
                           const std::string& command) {
  auto env_name = [&env_prefix](const std::string& flag) {
    std::string env = env_prefix;
    for (char c : flag) env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return env;
  };
  ParsedOptions out;
  try {
    po::store(po::parse_command_line(argc, argv, desc), out.vm);
    po::store(po::parse_environment(desc,
                                    [&desc, &env_name](const std::string& env) -> std::string {
                                      for (const auto& opt : desc.options())
                                        if (env_name(opt->long_name()) == env) return opt->long_name();
                                      return "";
                                    }),
              out.vm);
    po::notify(out.vm);
  } catch (const po::error& e) {
    std::cerr << "ferry " << command << ": " << e.what() << "\n\n" << desc << "\n";
    out.exit_code = 2;
    return out;
  }
  if (out.vm.count("help")) {
    std::cout << desc << "\n";
    out.exit_code = 0;
    return out;
  }
  if (out.vm.count("log-level")) {
    LogLevel level;
    if (!ParseLogLevel(out.vm["log-level"].as<std::string>(), &level)) {
      std::cerr << "ferry " << command << ": --log-level must be debug, info, warning or error\n";
      out.exit_code = 2;
      return out;
    }
    SetLogLevel(level);
  }
  return out;
}

std::vector<std::string> SplitCommaList(const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const auto& v : values) {
    size_t start = 0;
    for (;;) {
      const size_t comma = v.find(',', start);
      std::string part = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (!part.empty()) out.push_back(part);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

}  // namespace ferry::cli
