// The collectives factory: a backend is asked for by name; an unknown name is refused with the
// names that exist.
#include <gtest/gtest.h>

#include <algorithm>

#include "collectives/error.h"
#include "collectives/session.h"

namespace clusterctl::collectives {
namespace {

TEST(CollectivesSession, LocalBackendIsOneRankWithNoOpCollectives) {
  int argc = 1;
  char name[] = "test";
  char* args[] = {name, nullptr};
  char** argv = args;
  auto session = open_session("local", argc, argv);
  EXPECT_EQ(session->rank(), 0);
  EXPECT_EQ(session->size(), 1);
  EXPECT_FALSE(session->host().empty());
  auto comm = session->make_communicator();
  EXPECT_EQ(comm->backend_name(), "local");
  float x[2] = {1.5f, -2.0f};
  comm->allreduce_sum(x, 2);
  EXPECT_EQ(x[0], 1.5f);
  EXPECT_EQ(x[1], -2.0f);
}

TEST(CollectivesSession, UnknownBackendNamesTheKnownOnes) {
  const auto names = backend_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "mpi"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "local"), names.end());
  int argc = 0;
  char** argv = nullptr;
  try {
    open_session("carrier-pigeon", argc, argv);
    FAIL() << "an unknown backend was opened";
  } catch (const CollectiveError& e) {
    EXPECT_STREQ(e.what(), "no collectives backend 'carrier-pigeon': use one of mpi, local");
  }
}

TEST(CollectivesSession, RankNameIsHowMessagesNameARank) { EXPECT_EQ(rank_name(2, "node-b"), "rank 2 on node-b"); }

}  // namespace
}  // namespace clusterctl::collectives
