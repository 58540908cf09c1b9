#include "serve/job.h"

namespace starattn::serve {

Job::News Job::wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] {
    return !pending_.text.empty() || !pending_.tokens.empty() || pending_.done;
  });
  News out = std::move(pending_);
  pending_ = News{};
  // A finished job keeps saying so to every later wait.
  if (out.done) {
    pending_.done = true;
    pending_.finish_reason = out.finish_reason;
    pending_.usage = out.usage;
    pending_.status = out.status;
    pending_.error_type = out.error_type;
    pending_.error = out.error;
  }
  return out;
}

void Job::push(const std::string& text) {
  if (text.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.text += text;
  }
  cv_.notify_all();
}

void Job::push_token(TokenChoice t) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.tokens.push_back(std::move(t));
  }
  cv_.notify_all();
}

void Job::finish(const std::string& reason, const Usage& usage) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return;
    ended_ = true;
    pending_.done = true;
    pending_.finish_reason = reason;
    pending_.usage = usage;
  }
  cv_.notify_all();
}

void Job::fail(int status, const std::string& type, const std::string& message) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ended_) return;
    ended_ = true;
    pending_.done = true;
    pending_.status = status;
    pending_.error_type = type;
    pending_.error = message;
  }
  cv_.notify_all();
}

bool Job::ended() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ended_;
}

}  // namespace starattn::serve
