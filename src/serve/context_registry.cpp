#include "serve/context_registry.h"

#include <chrono>
#include <cstdio>

namespace starattn::serve {
namespace {

double steady_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// FNV-1a over bytes: stable across runs and builds (std::hash is not), so ids survive restarts.
uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace

const char* state_name(ContextEntry::State s) {
  return enum_name(kContextStateNames, s);
}

std::string context_id(const RunConfig& rc, const std::vector<int>& tokens) {
  uint64_t h = 0xcbf29ce484222325ull;
  const std::string how = rc.describe();
  h = fnv1a(h, how.data(), how.size());
  h = fnv1a(h, tokens.data(), tokens.size() * sizeof(int));
  char buf[32];
  std::snprintf(buf, sizeof buf, "ctx-%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::shared_ptr<ContextEntry> ContextRegistry::acquire(std::shared_ptr<ContextEntry> fresh) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = by_id_.find(fresh->id);
  std::shared_ptr<ContextEntry> e;
  if (it != by_id_.end()) {
    e = all_.at(it->second);
    e->named = e->named || fresh->named;
  } else {
    // A new key even when a deleted entry had the same id: its KV may not be freed yet.
    uint64_t key = fnv1a(0xcbf29ce484222325ull, fresh->id.data(), fresh->id.size());
    while (all_.count(key) || key == 0) ++key;
    fresh->key = key;
    fresh->state = ContextEntry::State::Pending;
    all_[key] = fresh;
    by_id_[fresh->id] = key;
    e = fresh;
  }
  ++e->users;
  e->last_used = steady_now();
  return e;
}

std::shared_ptr<ContextEntry> ContextRegistry::acquire_id(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return nullptr;
  std::shared_ptr<ContextEntry> e = all_.at(it->second);
  ++e->users;
  e->last_used = steady_now();
  return e;
}

std::shared_ptr<ContextEntry> ContextRegistry::acquire_prefix_of(const std::string& prompt) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<ContextEntry> best;
  for (const auto& [id, key] : by_id_) {
    const std::shared_ptr<ContextEntry>& e = all_.at(key);
    if (e->text.empty() || e->text.size() > prompt.size()) continue;
    if (best && e->text.size() <= best->text.size()) continue;
    if (prompt.compare(0, e->text.size(), e->text) == 0) best = e;
  }
  if (best) {
    ++best->users;
    best->last_used = steady_now();
  }
  return best;
}

void ContextRegistry::release(const std::shared_ptr<ContextEntry>& e) {
  if (!e) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (e->users > 0) --e->users;
  e->last_used = steady_now();
}

std::shared_ptr<ContextEntry> ContextRegistry::find(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : all_.at(it->second);
}

std::vector<std::shared_ptr<ContextEntry>> ContextRegistry::list() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<ContextEntry>> out;
  for (const auto& [id, key] : by_id_) out.push_back(all_.at(key));
  return out;
}

bool ContextRegistry::remove(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  all_.at(it->second)->deleted = true;
  by_id_.erase(it);
  return true;
}

void ContextRegistry::erase_locked(uint64_t key) {
  const auto it = all_.find(key);
  if (it == all_.end()) return;
  if (!it->second->deleted) by_id_.erase(it->second->id);
  all_.erase(it);
}

}  // namespace starattn::serve
