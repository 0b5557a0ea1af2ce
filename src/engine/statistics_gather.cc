#include "engine/statistics_gather.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <optional>

#include "frontend/http/http_server.h"
#include "protocol/model_statistics.h"

namespace ferry::engine {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string ErrorBody(std::string_view message) {
  return std::string(frontend::http::JsonError(502, message).body());
}

// All the replicas' exchanges of one gather; the last one to finish answers.
class Gather : public std::enable_shared_from_this<Gather> {
 public:
  Gather(asio::io_context* loop, std::string target, std::vector<std::shared_ptr<ReplicaEndpoint>> replicas,
         std::chrono::milliseconds timeout, std::function<void(int, std::string)> done)
      : loop_(loop), target_(std::move(target)), replicas_(std::move(replicas)),
        deadline_(std::chrono::steady_clock::now() + timeout), done_(std::move(done)),
        answers_(replicas_.size()) {}

  void Start() {
    pending_ = replicas_.size();
    for (size_t i = 0; i < replicas_.size(); ++i) Ask(i);
  }

 private:
  struct Answer {
    std::unique_ptr<beast::tcp_stream> conn;
    bhttp::request<bhttp::empty_body> req;
    beast::flat_buffer buffer;
    bhttp::response<bhttp::string_body> res;
    std::string error;  // why no answer came
  };

  void Ask(size_t i) {
    Answer& a = answers_[i];
    a.conn = std::make_unique<beast::tcp_stream>(*loop_);
    a.conn->expires_at(deadline_);
    a.req = bhttp::request<bhttp::empty_body>(bhttp::verb::get, target_, 11);
    a.req.set(bhttp::field::host, "127.0.0.1");
    a.req.keep_alive(false);
    a.conn->async_connect(
        tcp::endpoint(asio::ip::address_v4::loopback(), replicas_[i]->port),
        [self = shared_from_this(), i](beast::error_code ec) {
          Answer& a = self->answers_[i];
          if (ec) return self->Finished(i, "connect: " + ec.message());
          bhttp::async_write(*a.conn, a.req, [self, i](beast::error_code ec, size_t) {
            Answer& a = self->answers_[i];
            if (ec) return self->Finished(i, "send: " + ec.message());
            bhttp::async_read(*a.conn, a.buffer, a.res, [self, i](beast::error_code ec, size_t) {
              self->Finished(i, ec ? "receive: " + ec.message() : std::string());
            });
          });
        });
  }

  void Finished(size_t i, std::string error) {
    answers_[i].error = std::move(error);
    answers_[i].conn.reset();
    if (--pending_ == 0) Reply();
  }

  void Reply() {
    std::vector<std::vector<protocol::StatisticsSnapshot>> parts;
    for (size_t i = 0; i < answers_.size(); ++i) {
      const auto& a = answers_[i];
      const std::string& id = replicas_[i]->id;
      if (!a.error.empty()) return done_(502, ErrorBody("replica " + id + " did not answer (" + a.error + ")"));
      if (a.res.result_int() != 200) return done_(a.res.result_int(), a.res.body());
      auto stats = protocol::DecodeStatisticsJson(a.res.body());
      if (!stats.ok()) return done_(502, ErrorBody("replica " + id + ": " + stats.status().message()));
      parts.push_back(std::move(stats).value());
    }
    done_(200, protocol::EncodeStatisticsJson(protocol::MergeStatistics(parts)));
  }

  asio::io_context* loop_;
  const std::string target_;
  const std::vector<std::shared_ptr<ReplicaEndpoint>> replicas_;
  const std::chrono::steady_clock::time_point deadline_;
  std::function<void(int, std::string)> done_;
  std::vector<Answer> answers_;
  size_t pending_ = 0;
};

}  // namespace

void GatherStatistics(asio::io_context* loop, std::string target, std::vector<std::shared_ptr<ReplicaEndpoint>> replicas,
                      std::chrono::milliseconds timeout, std::function<void(int status, std::string body)> done) {
  if (replicas.empty()) return done(503, std::string(frontend::http::JsonError(503, "no ready replica").body()));
  std::make_shared<Gather>(loop, std::move(target), std::move(replicas), timeout, std::move(done))->Start();
}

}  // namespace ferry::engine
