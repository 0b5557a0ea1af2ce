#pragma once

#include <string>
#include <string_view>

#include "frontend/http/http_server.h"
#include "server/server.h"

namespace ferry::frontend::http {

// POST /v2/models/{m}[/versions/{v}]/feedback (docs/monitoring.md, "Ground-truth
// feedback and live quality"): 200 with the join counts when every item joined its
// prediction; 400 with the same counts and an "error" naming the first item that did
// not; 400 naming the field for a malformed body or a model without feedback
// monitoring; 404 for a model that is not loaded.
// Thread-safety: stateless; any IO thread.
Response FeedbackResponse(const server::Server& server, const std::string& model, const std::string& version,
                          std::string_view body);

}  // namespace ferry::frontend::http
