#include "serve/plan.h"

#include <cstring>
#include <type_traits>

#include "starattn/error.h"

namespace starattn::serve {
namespace {

class Writer {
 public:
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const char* p = reinterpret_cast<const char*>(&v);
    out_.insert(out_.end(), p, p + sizeof v);
  }
  void put_ints(const std::vector<int>& v) {
    put<uint64_t>(v.size());
    const char* p = reinterpret_cast<const char*>(v.data());
    out_.insert(out_.end(), p, p + v.size() * sizeof(int));
  }
  void put_ids(const std::vector<uint64_t>& v) {
    put<uint64_t>(v.size());
    for (uint64_t x : v) put(x);
  }
  std::vector<char> take() { return std::move(out_); }

 private:
  std::vector<char> out_;
};

// Every read is checked against what is left, so a short or garbled message is an Error.
class Reader {
 public:
  explicit Reader(const std::vector<char>& in) : in_(in) {}
  template <typename T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    need(sizeof(T));
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  uint64_t count(size_t each) {
    const auto n = get<uint64_t>();
    need(0);
    SA_CHECK(n <= (in_.size() - at_) / each, "control message: a count of ", n,
             " is longer than the message");
    return n;
  }
  std::vector<int> get_ints() {
    std::vector<int> v(count(sizeof(int)));
    if (!v.empty()) std::memcpy(v.data(), in_.data() + at_, v.size() * sizeof(int));
    at_ += v.size() * sizeof(int);
    return v;
  }
  std::vector<uint64_t> get_ids() {
    std::vector<uint64_t> v(count(sizeof(uint64_t)));
    for (uint64_t& x : v) x = get<uint64_t>();
    return v;
  }
  bool at_end() const { return at_ == in_.size(); }

 private:
  void need(size_t n) const {
    SA_CHECK(at_ <= in_.size() && n <= in_.size() - at_, "control message: truncated");
  }
  const std::vector<char>& in_;
  size_t at_ = 0;
};

void put_rc(Writer& w, const RunConfig& rc) {
  w.put<int32_t>(static_cast<int32_t>(rc.attn));
  w.put<int64_t>(rc.block_size);
  w.put<int64_t>(rc.anchor_size);
  w.put<int32_t>(static_cast<int32_t>(rc.anchor));
  w.put<int32_t>(rc.chunk);
  w.put<int32_t>(static_cast<int32_t>(rc.anchor_source));
  w.put<uint64_t>(rc.anchor_seed);
  w.put<int32_t>(static_cast<int32_t>(rc.kv_type));
}

RunConfig get_rc(Reader& r) {
  RunConfig rc;
  const auto attn = r.get<int32_t>();
  SA_CHECK(attn >= 0 && attn <= static_cast<int32_t>(AttnMode::Ring), "control message: attn ",
           attn);
  rc.attn = static_cast<AttnMode>(attn);
  rc.block_size = r.get<int64_t>();
  rc.anchor_size = r.get<int64_t>();
  const auto anchor = r.get<int32_t>();
  SA_CHECK(anchor >= 0 && anchor <= static_cast<int32_t>(AnchorMode::Broadcast),
           "control message: anchor mode ", anchor);
  rc.anchor = static_cast<AnchorMode>(anchor);
  rc.chunk = r.get<int32_t>();
  const auto source = r.get<int32_t>();
  SA_CHECK(source >= 0 && source <= static_cast<int32_t>(AnchorSource::Constant),
           "control message: anchor source ", source);
  rc.anchor_source = static_cast<AnchorSource>(source);
  rc.anchor_seed = r.get<uint64_t>();
  const auto kv = r.get<int32_t>();
  SA_CHECK(kv >= 0 && kv <= static_cast<int32_t>(kLastKvType), "control message: kv type ", kv);
  rc.kv_type = static_cast<KvType>(kv);
  return rc;
}

}  // namespace

std::vector<char> serialize(const Plan& p) {
  Writer w;
  w.put<uint32_t>(Plan::kVersion);
  w.put<uint64_t>(p.encode.size());
  for (const EncodeOrder& e : p.encode) {
    w.put(e.context);
    put_rc(w, e.rc);
    w.put_ints(e.tokens);
  }
  w.put_ids(p.advance);
  w.put_ids(p.drop);
  w.put<uint64_t>(p.step.size());
  for (const StepSeq& s : p.step) {
    w.put(s.sequence);
    w.put(s.context);
    w.put(s.first_pos);
    w.put_ints(s.tokens);
  }
  w.put<uint8_t>(p.shutdown ? 1 : 0);
  return w.take();
}

Plan deserialize(const std::vector<char>& bytes) {
  Reader r(bytes);
  const auto version = r.get<uint32_t>();
  SA_CHECK(version == Plan::kVersion, "control message of version ", version, ", expected ",
           Plan::kVersion, " (every rank must run the same starattn build)");
  Plan p;
  p.encode.resize(r.count(1));
  for (EncodeOrder& e : p.encode) {
    e.context = r.get<uint64_t>();
    e.rc = get_rc(r);
    e.tokens = r.get_ints();
  }
  p.advance = r.get_ids();
  p.drop = r.get_ids();
  p.step.resize(r.count(1));
  for (StepSeq& s : p.step) {
    s.sequence = r.get<uint64_t>();
    s.context = r.get<uint64_t>();
    s.first_pos = r.get<int64_t>();
    s.tokens = r.get_ints();
  }
  p.shutdown = r.get<uint8_t>() != 0;
  SA_CHECK(r.at_end(), "control message: ", "trailing bytes");
  return p;
}

void send_plan(Comm& comm, const Plan& plan) {
  std::vector<char> bytes = serialize(plan);
  uint64_t n = bytes.size();
  comm.broadcast_patiently(&n, sizeof n, 0);
  comm.broadcast(bytes.data(), bytes.size(), 0);
}

Plan receive_plan(Comm& comm) {
  uint64_t n = 0;
  comm.broadcast_patiently(&n, sizeof n, 0);
  SA_CHECK(n <= (uint64_t{1} << 34), "control message of ", n, " bytes");
  std::vector<char> bytes(static_cast<size_t>(n));
  comm.broadcast(bytes.data(), bytes.size(), 0);
  return deserialize(bytes);
}

}  // namespace starattn::serve
