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
  if (out.vm.count("log-format")) {
    LogFormat format;
    if (!ParseLogFormat(out.vm["log-format"].as<std::string>(), &format)) {
      std::cerr << "ferry " << command << ": --log-format must be text or json\n";
      out.exit_code = 2;
      return out;
    }
    SetLogFormat(format);
  }
  return out;
}

}  // namespace ferry::cli
