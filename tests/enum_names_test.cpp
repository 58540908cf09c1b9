// Every string <-> enum table (util/enum_names.h) round-trips, and an unknown name is an error
// that lists the accepted ones, in the table's order.
#include "util/enum_names.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "attention/kv_format.h"
#include "engine/generate.h"
#include "engine/run_config.h"
#include "error_of.h"
#include "model/weights.h"
#include "serve/context_registry.h"

namespace starattn {
namespace {

// Each value once, each name once, and parsing a value's name gives the value back.
template <typename E, size_t N>
void expect_round_trip(const EnumName<E> (&table)[N], const char* what) {
  std::set<std::string> names;
  for (const EnumName<E>& e : table) {
    EXPECT_TRUE(names.insert(e.name).second) << what << ": " << e.name << " twice";
    EXPECT_STREQ(enum_name(table, e.value), e.name);
    EXPECT_EQ(parse_enum(table, e.name, what), e.value);
  }
  const std::string msg = test::error_of([&] { parse_enum(table, "nonsense", what); });
  EXPECT_EQ(msg, std::string("unknown ") + what + " 'nonsense' (expected " +
                     enum_names_text(table) + ")");
  EXPECT_EQ(enum_names(table).size(), N);
}

TEST(EnumNames, EveryTableRoundTrips) {
  expect_round_trip(kAttnModeNames, "attention mode");
  expect_round_trip(kAnchorModeNames, "anchor mode");
  expect_round_trip(kAnchorSourceNames, "anchor source");
  expect_round_trip(kKvTypeNames, "KV cache type");
  expect_round_trip(kWeightsTypeNames, "weights type");
  expect_round_trip(kStopReasonNames, "stop reason");
  expect_round_trip(serve::kContextStateNames, "context state");
}

TEST(EnumNames, TheNamedFunctionsUseTheTables) {
  for (const auto& e : kAttnModeNames) {
    EXPECT_EQ(parse_attn_mode(e.name), e.value);
    EXPECT_STREQ(attn_mode_name(e.value), e.name);
  }
  for (const auto& e : kAnchorSourceNames) {
    EXPECT_EQ(parse_anchor_source(e.name), e.value);
    EXPECT_STREQ(anchor_source_name(e.value), e.name);
  }
  for (const auto& e : kKvTypeNames) {
    EXPECT_EQ(parse_kv_type(e.name), e.value);
    EXPECT_STREQ(kv_type_name(e.value), e.name);
  }
  EXPECT_STREQ(kv_type_name(KvType::Act), "act");  // the library's default, no flag of its own
  EXPECT_EQ(test::error_of([] { parse_attn_mode("flash"); }),
            "unknown attention mode 'flash' (expected dense, star or ring)");
  EXPECT_EQ(test::error_of([] { parse_kv_type(nullptr); }),
            "unknown KV cache type '' (expected bf16, fp8, f32 or int8)");
  EXPECT_STREQ(stop_reason_name(static_cast<StopReason>(99)), "length");
  EXPECT_STREQ(attn_mode_name(static_cast<AttnMode>(99)), "?");
}

TEST(EnumNames, ListsReadAsEnglish) {
  constexpr EnumName<int> kTwo[] = {{0, "bf16"}, {1, "fp8"}};
  EXPECT_EQ(enum_names_text(kTwo), "bf16 or fp8");
  EXPECT_EQ(enum_names_text(kKvTypeNames), "bf16, fp8, f32 or int8");
  EXPECT_EQ(enum_names_text(kAnchorSourceNames), "first, previous, random, shuffled or constant");
}

}  // namespace
}  // namespace starattn
