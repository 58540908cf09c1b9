// Local (single-process) Comm: size 1, collectives are the identity, a ring step to self copies,
// and bad arguments fail the same way the MPI comm's do. Multi-rank behaviour is
// tested by tests/mpi/comm_mpi_test.cpp under mpirun.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "starattn/error.h"

namespace starattn {
namespace {

TEST(LocalComm, RankAndSize) {
  auto c = make_local_comm();
  EXPECT_EQ(c->rank(), 0);
  EXPECT_EQ(c->size(), 1);
  c->barrier();
}

TEST(LocalComm, CollectivesAreIdentity) {
  auto c = make_local_comm();
  std::vector<float> v = {1.5f, -2.0f, 3.25f};
  const std::vector<float> orig = v;
  c->allreduce_max(v.data(), v.size());
  EXPECT_EQ(v, orig);
  c->broadcast(v.data(), v.size() * sizeof(float), 0);
  EXPECT_EQ(v, orig);
  c->allreduce_max(nullptr, 0);  // empty is fine
}

TEST(LocalComm, AllgatherCopies) {
  auto c = make_local_comm();
  const std::string s = "abcdef";
  std::string all(s.size(), '\0');
  c->allgather(s.data(), all.data(), s.size());
  EXPECT_EQ(all, s);
  c->allgather(all.data(), all.data(), all.size());  // in place
  EXPECT_EQ(all, s);
}

TEST(LocalComm, SendrecvToSelfIsOneRingStep) {
  auto c = make_local_comm();
  const std::vector<int> out = {1, 2, 3, 4};
  std::vector<int> in(4, 0);
  c->sendrecv(out.data(), 16, 0, in.data(), 16, 0, 5);
  EXPECT_EQ(in, out);
  EXPECT_THROW(c->sendrecv(out.data(), 16, 0, in.data(), 8, 0, 5), Error);  // sizes differ
}

TEST(LocalComm, BadArgumentsThrow) {
  auto c = make_local_comm();
  int x = 0;
  int y = 0;
  EXPECT_THROW(c->broadcast(&x, sizeof x, 1), Error);
  EXPECT_THROW(c->sendrecv(&x, sizeof x, 1, &y, sizeof y, 0, 0), Error);   // no rank 1
  EXPECT_THROW(c->sendrecv(&x, sizeof x, 0, &y, sizeof y, 1, 0), Error);   // no rank 1
  EXPECT_THROW(c->sendrecv(&x, sizeof x, 0, &y, sizeof y, 0, -1), Error);  // negative tag
  EXPECT_THROW(c->allreduce_max(nullptr, 4), Error);
}

TEST(LocalComm, Helpers) {
  auto c = make_local_comm();
  std::vector<int> ids = {5, 6, 7};
  broadcast_vector(*c, ids, 0);
  EXPECT_EQ(ids, (std::vector<int>{5, 6, 7}));
  std::string s = "hello";
  broadcast_string(*c, s, 0);
  EXPECT_EQ(s, "hello");
  check_same_on_all_ranks(*c, "args", "--attn star");  // one rank always agrees with itself
}

TEST(LocalComm, DefaultIsLocalWithoutLauncher) {
  if (std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_SIZE") || std::getenv("PMIX_RANK")) {
    GTEST_SKIP() << "running under an MPI launcher";
  }
  auto c = make_default_comm();
  EXPECT_EQ(c->size(), 1);
}

TEST(LocalCommDeathTest, AbortAllPrintsAndExitsWithCode) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto c = make_local_comm();
  EXPECT_EXIT(c->abort_all("cannot open model", 7), ::testing::ExitedWithCode(7),
              "fatal: cannot open model");
}

}  // namespace
}  // namespace starattn
