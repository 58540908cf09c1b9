#include "serve/http_server.h"

#include <httplib.h>

#include <chrono>
#include <cstdio>

#include "starattn/error.h"

namespace starattn::serve {
namespace {

using httplib::Request;
using httplib::Response;
using nlohmann::json;
using Handled = httplib::Server::HandlerResponse;

int64_t unix_time() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void send_json(Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(Response& res, const HttpError& e) {
  send_json(res, e.status, error_json(e));
  if (e.status == 503) res.set_header("Retry-After", "1");
}

std::string sse(const json& j) {
  return "data: " + dump(j) + "\n\n";
}

json context_json(const ContextEntry& e, const std::vector<size_t>& bytes) {
  size_t total = 0;
  for (size_t b : bytes) total += b;
  return {{"id", e.id},
          {"object", "context"},
          {"created", static_cast<int64_t>(e.created)},
          {"tokens", e.tokens.size()},
          {"chat", e.chat},
          {"state", state_name(e.state)},
          {"seconds", e.phase1_seconds},
          {"in_use", e.users},
          {"kv_bytes", total}};
}

}  // namespace

HttpServer::HttpServer(const HttpOptions& options, const ServedModel& model, Scheduler& scheduler,
                       ContextRegistry& registry, Metrics& metrics)
    : opt_(options),
      model_(model),
      scheduler_(scheduler),
      registry_(registry),
      metrics_(metrics),
      svr_(std::make_unique<httplib::Server>()) {
  routes();
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::start() {
  if (opt_.port == 0) {
    port_ = svr_->bind_to_any_port(opt_.host);
    SA_CHECK(port_ > 0, "serve: cannot listen on ", opt_.host, " (any port)");
  } else {
    SA_CHECK(svr_->bind_to_port(opt_.host, opt_.port), "serve: cannot listen on ", opt_.host, ":",
             opt_.port, " (in use, or not an address of this host)");
    port_ = opt_.port;
  }
  thread_ = std::thread([this] { svr_->listen_after_bind(); });
}

void HttpServer::stop() {
  if (svr_) svr_->stop();
  if (thread_.joinable()) thread_.join();
}

void HttpServer::routes() {
  httplib::Server& s = *svr_;
  s.set_payload_max_length(opt_.max_body);
  // A streaming answer holds a thread for its whole life, and so does an idle keep-alive
  // connection: enough for every sequence and every queued job, with room to say 503.
  const ServeOptions& so = scheduler_.options();
  const int threads = opt_.threads > 0 ? opt_.threads : std::max(32, so.parallel + so.max_queue + 16);
  s.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // Longer than clients keep an idle connection (httpx, under the openai client: 5 s; aiohttp:
  // 15 s), so the client always lets go first. With equal timeouts the server's clock, started
  // when it sent the reply, runs out first, and a request sent on the closing connection is
  // lost to the client as a reset.
  s.set_keep_alive_timeout(30);
  s.set_keep_alive_max_count(1000);
  s.set_read_timeout(30);

  s.set_pre_routing_handler([this](const Request& req, Response& res) {
    if (opt_.api_key.empty() || req.path.rfind("/v1/", 0) != 0) return Handled::Unhandled;
    if (req.get_header_value("Authorization") == "Bearer " + opt_.api_key)
      return Handled::Unhandled;
    send_error(res, HttpError(401, "authentication_error",
                              "a missing or wrong API key: send 'Authorization: Bearer KEY'", "",
                              "invalid_api_key"));
    return Handled::Handled;
  });
  s.set_error_handler([this](const Request& req, Response& res) {
    if (!res.body.empty()) return;
    std::string msg = "HTTP error " + std::to_string(res.status);
    if (res.status == 404) msg = "no route " + req.method + " " + req.path;
    if (res.status == 413)
      msg = "the request body is larger than the server's limit of " +
            std::to_string(opt_.max_body) + " bytes (--max-body)";
    if (res.status == 400) msg = "a malformed HTTP request";
    send_error(res, HttpError(res.status,
                              res.status == 404   ? "not_found_error"
                              : res.status >= 500 ? "server_error"
                                                  : "invalid_request_error",
                              msg));
  });
  s.set_exception_handler([](const Request&, Response& res, std::exception_ptr ep) {
    try {
      std::rethrow_exception(ep);
    } catch (const HttpError& e) {
      send_error(res, e);
    } catch (const std::exception& e) {
      send_error(res, HttpError(500, "server_error", e.what()));
    } catch (...) {
      send_error(res, HttpError(500, "server_error", "unknown error"));
    }
  });
  s.set_logger([this](const Request& req, const Response& res) {
    if (res.status >= 500) {
      metrics_.requests_server_error++;
    } else if (res.status >= 400) {
      metrics_.requests_client_error++;
    }
    std::string detail;
    if (res.status >= 400) {
      try {
        detail = " " + json::parse(res.body).at("error").at("message").get<std::string>();
      } catch (...) {
      }
    }
    std::fprintf(stderr, "serve: %s %s %d%s\n", req.method.c_str(), req.path.c_str(), res.status,
                 detail.c_str());
  });

  s.Get("/health", [this](const Request&, Response& res) {
    if (stopping_) {
      send_json(res, 503, {{"status", "stopping"}});
      res.set_header("Retry-After", "1");
    } else {
      send_json(res, 200, {{"status", "ok"}});
    }
  });
  s.Get("/metrics", [this](const Request&, Response& res) {
    res.set_content(render_prometheus(metrics_), "text/plain; version=0.0.4");
  });
  s.Get("/v1/models", [this](const Request&, Response& res) {
    send_json(res, 200,
              {{"object", "list"},
               {"data", json::array({{{"id", model_.id},
                                      {"object", "model"},
                                      {"created", unix_time()},
                                      {"owned_by", "starattn"},
                                      {"max_model_len", model_.max_positions}}})}});
  });

  // Contexts: encode once, ask many times.
  s.Post("/v1/contexts", [this](const Request& req, Response& res) {
    if (stopping_) throw HttpError(503, "server_error", "the server is shutting down");
    const ContextRequest cr = parse_context_request(req.body);
    if (!cr.model.empty() && cr.model != model_.id)
      throw HttpError(404, "not_found_error", "no model '" + cr.model + "'", "model");
    auto job = std::make_shared<Job>();
    job->kind = Job::Kind::Encode;
    const bool chat = cr.chat.value_or(static_cast<bool>(model_.render));
    job->context = registry_.acquire(make_context_entry(model_, cr.text, chat, cr.system));
    const bool cached = [&] {
      std::lock_guard<std::mutex> lock(registry_.mutex());
      return job->context->state == ContextEntry::State::Ready;
    }();
    try {
      scheduler_.submit(job);
    } catch (...) {
      registry_.release(job->context);
      throw;
    }
    Job::News news;
    do {
      news = job->wait(std::chrono::milliseconds(1000));
    } while (!news.done);
    if (news.status != 0) throw HttpError(news.status, news.error_type, news.error);
    json j = context_json(*job->context, scheduler_.context_bytes(*job->context));
    j["cached"] = cached;
    send_json(res, 200, j);
  });
  s.Get("/v1/contexts", [this](const Request&, Response& res) {
    json data = json::array();
    for (const auto& e : registry_.list()) {
      std::lock_guard<std::mutex> lock(registry_.mutex());
      data.push_back(context_json(*e, scheduler_.context_bytes(*e)));
    }
    send_json(res, 200, {{"object", "list"}, {"data", data}});
  });
  s.Get(R"(/v1/contexts/([^/]+))", [this](const Request& req, Response& res) {
    const std::string id = req.matches[1];
    const std::shared_ptr<ContextEntry> e = registry_.find(id);
    if (!e) throw HttpError(404, "not_found_error", "no context '" + id + "'");
    std::lock_guard<std::mutex> lock(registry_.mutex());
    send_json(res, 200, context_json(*e, scheduler_.context_bytes(*e)));
  });
  s.Delete(R"(/v1/contexts/([^/]+))", [this](const Request& req, Response& res) {
    const std::string id = req.matches[1];
    if (!registry_.remove(id)) throw HttpError(404, "not_found_error", "no context '" + id + "'");
    send_json(res, 200, {{"id", id}, {"object", "context"}, {"deleted", true}});
  });

  const auto completions = [this](bool chat) {
    return [this, chat](const Request& req, Response& res) {
      if (stopping_) throw HttpError(503, "server_error", "the server is shutting down");
      const CompletionRequest r = parse_completion_request(req.body, chat);
      if (!r.model.empty() && r.model != model_.id)
        throw HttpError(404, "not_found_error", "no model '" + r.model + "'", "model");
      std::shared_ptr<Job> job = make_generate_job(model_, registry_, r);
      try {
        scheduler_.submit(job);
      } catch (...) {
        registry_.release(job->context);
        throw;
      }
      const std::string id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(next_id_++);
      const int64_t created = unix_time();
      if (!r.stream) {
        std::string text;
        std::vector<TokenChoice> tokens;
        Job::News news;
        do {
          news = job->wait(std::chrono::milliseconds(1000));
          text += news.text;
          tokens.insert(tokens.end(), news.tokens.begin(), news.tokens.end());
        } while (!news.done);
        if (news.status != 0) throw HttpError(news.status, news.error_type, news.error);
        send_json(res, 200,
                  completion_json(r, id, created, model_.id, text, news.finish_reason, news.usage,
                                  logprobs_json(r, *model_.tok, tokens)));
        return;
      }
      res.set_header("Cache-Control", "no-cache");
      res.set_header("X-Accel-Buffering", "no");
      auto started = std::make_shared<bool>(false);
      auto offset = std::make_shared<size_t>(0);  // text bytes sent, for completions' offsets
      res.set_chunked_content_provider(
          "text/event-stream",
          [this, r, job, id, created, started, offset](size_t, httplib::DataSink& sink) {
            auto write = [&](const std::string& s) { return sink.write(s.data(), s.size()); };
            if (!*started) {
              *started = true;
              const std::string role = "assistant";
              if (r.chat && !write(sse(chunk_json(r, id, created, model_.id, &role, "", "")))) {
                job->cancel();
                return false;
              }
            }
            const Job::News news = job->wait(std::chrono::milliseconds(1000));
            const bool fresh = !news.text.empty() || !news.tokens.empty();
            if (fresh && !write(sse(chunk_json(r, id, created, model_.id, nullptr, news.text, "",
                                              logprobs_json(r, *model_.tok, news.tokens,
                                                            *offset))))) {
              job->cancel();  // the client has gone: free its sequence at the next step
              return false;
            }
            *offset += news.text.size();
            if (!news.done) {
              // Nothing new for a while (a context is being encoded): an SSE comment, which
              // clients ignore, finds out whether the client is still there.
              if (!fresh && !write(": keep-alive\n\n")) {
                job->cancel();
                return false;
              }
              return true;
            }
            if (news.status != 0) {
              write(sse(error_json(HttpError(news.status, news.error_type, news.error))));
            } else {
              write(sse(chunk_json(r, id, created, model_.id, nullptr, "", news.finish_reason)));
              if (r.include_usage) write(sse(usage_chunk_json(r, id, created, model_.id, news.usage)));
            }
            write("data: [DONE]\n\n");
            sink.done();
            return true;
          },
          [job](bool) {
            if (!job->ended()) job->cancel();
          });
    };
  };
  s.Post("/v1/chat/completions", completions(true));
  s.Post("/v1/completions", completions(false));
}

}  // namespace starattn::serve
