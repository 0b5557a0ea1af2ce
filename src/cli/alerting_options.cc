#include "cli/alerting_options.h"

#include "core/log.h"

namespace ferry::cli {
namespace po = boost::program_options;

void AddAlertingOptions(po::options_description& desc, const std::string& env) {
  // clang-format off
  desc.add_options()
    ("alert-rules", po::value<std::string>(), ("ferry's own alert rules (YAML, docs/observability.md), evaluated over this process's metrics [" + env + "ALERT_RULES]").c_str())
    ("alertmanager-url", po::value<std::string>()->default_value(""), ("Alertmanager to send alerts to (POST URL/api/v2/alerts), e.g. http://127.0.0.1:9093 [" + env + "ALERTMANAGER_URL]").c_str())
    ("alert-webhook-url", po::value<std::string>()->default_value(""), ("URL POSTed one JSON message (Alertmanager's webhook format) per alert fired or resolved [" + env + "ALERT_WEBHOOK_URL]").c_str())
    ("alert-interval-ms", po::value<int>()->default_value(15000), ("how often the rules are evaluated [" + env + "ALERT_INTERVAL_MS]").c_str());
  // clang-format on
}

Result<std::unique_ptr<monitoring::AlertLoop>> CreateAlerting(
    const po::variables_map& vm, std::function<std::string()> exposition, const std::string& generator_url,
    std::function<void(const char*, const char*, uint64_t)> counted) {
  const bool targets = !vm["alertmanager-url"].as<std::string>().empty() ||
                       !vm["alert-webhook-url"].as<std::string>().empty();
  if (!vm.count("alert-rules")) {
    if (targets) return InvalidArgument("--alertmanager-url and --alert-webhook-url need --alert-rules");
    return std::unique_ptr<monitoring::AlertLoop>();
  }
  monitoring::AlertLoopOptions o;
  o.rules_file = vm["alert-rules"].as<std::string>();
  o.notifier.alertmanager_url = vm["alertmanager-url"].as<std::string>();
  while (!o.notifier.alertmanager_url.empty() && o.notifier.alertmanager_url.back() == '/')
    o.notifier.alertmanager_url.pop_back();
  o.notifier.webhook_url = vm["alert-webhook-url"].as<std::string>();
  o.notifier.generator_url = generator_url;
  o.interval = std::chrono::milliseconds(vm["alert-interval-ms"].as<int>());
  o.counted = std::move(counted);
  for (const std::string& url : {o.notifier.alertmanager_url, o.notifier.webhook_url})
    if (!url.empty() && url.rfind("http://", 0) != 0)
      return InvalidArgument("alert target '" + url + "' must be an http:// URL");
  FERRY_ASSIGN_OR_RETURN(auto loop, monitoring::AlertLoop::Create(std::move(o), std::move(exposition)));
  FERRY_LOG(kInfo, "alerting", ("rules", loop->rule_count())("file", vm["alert-rules"].as<std::string>()));
  return loop;
}

}  // namespace ferry::cli
