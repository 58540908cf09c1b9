// The HTTP side of `starattn serve` on rank 0: cpp-httplib's listener and thread pool, the
// OpenAI-compatible routes, API keys and body limits. Handlers never touch the engine or MPI:
// they build jobs, hand them to the Scheduler and wait for its news.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "serve/context_registry.h"
#include "serve/metrics.h"
#include "serve/requests.h"
#include "serve/scheduler.h"

namespace httplib {
class Server;
}

namespace starattn::serve {

struct HttpOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;                  // "" = no key needed
  size_t max_body = size_t{64} << 20;   // bytes
  int threads = 0;                      // HTTP worker threads; 0 = enough for the queue
};

class HttpServer {
 public:
  HttpServer(const HttpOptions& options, const ServedModel& model, Scheduler& scheduler,
             ContextRegistry& registry, Metrics& metrics);
  ~HttpServer();

  // Binds (throws starattn::Error when the address cannot be had) and serves on a thread.
  void start();
  // Stops listening and waits for the handlers to return.
  void stop();
  int port() const { return port_; }
  // Refuse new work (503) from now on: the server is stopping.
  void set_stopping() { stopping_ = true; }

 private:
  void routes();

  HttpOptions opt_;
  ServedModel model_;
  Scheduler& scheduler_;
  ContextRegistry& registry_;
  Metrics& metrics_;
  std::unique_ptr<httplib::Server> svr_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace starattn::serve
