#include "frontend/http/feedback_handler.h"

#include "frontend/http/v2_handler.h"

namespace ferry::frontend::http {

Response FeedbackResponse(const server::Server& server, const std::string& model, const std::string& version,
                          std::string_view body) {
  auto answer = server.Feedback(model, version, body);
  if (!answer.ok()) return StatusResponse(answer.status());
  Response r{answer->all_joined ? beast_http::status::ok : beast_http::status::bad_request, 11};
  r.set(beast_http::field::content_type, "application/json");
  r.body() = std::move(answer->json);
  return r;
}

}  // namespace ferry::frontend::http
