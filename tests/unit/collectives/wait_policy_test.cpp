// The wait rule: a waiting rank may poll only while every rank's threads on the machine have a
// core of their own; and where a rank learns how many ranks share its machine.
#include "collectives/wait_policy.h"

#include <gtest/gtest.h>

#include <cstdlib>

using clusterctl::collectives::CoreShare;
using clusterctl::collectives::ranks_fit_cores;
using clusterctl::collectives::this_machine_share;

TEST(WaitPolicy, PollsOnlyWhileRanksTimesThreadsFitTheCores) {
  EXPECT_TRUE(ranks_fit_cores({1, 1, 1}));
  EXPECT_TRUE(ranks_fit_cores({2, 1, 2}));    // 2 single-thread ranks on 2 cores
  EXPECT_TRUE(ranks_fit_cores({4, 4, 16}));   // 4 x 4 on 16
  EXPECT_FALSE(ranks_fit_cores({3, 1, 2}));   // the test cluster: 3 namespaces on 2 cores
  EXPECT_FALSE(ranks_fit_cores({2, 2, 2}));   // 2 ranks with a thread per core each
  EXPECT_FALSE(ranks_fit_cores({8, 2, 15}));  // one thread too many
  EXPECT_TRUE(ranks_fit_cores({0, 0, 0}));    // unknown counts are one each
}

class MachineShare : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* v = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    saved_ = v ? v : "";
    had_ = v != nullptr;
  }
  void TearDown() override {
    if (had_)
      setenv("OMPI_COMM_WORLD_LOCAL_SIZE", saved_.c_str(), 1);
    else
      unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  }
  std::string saved_;
  bool had_ = false;
};

TEST_F(MachineShare, TheLaunchersCountWinsThenMpirunsThenOne) {
  setenv("OMPI_COMM_WORLD_LOCAL_SIZE", "2", 1);
  // The launcher counts namespaces of one machine together; mpirun sees each as a host of its own.
  EXPECT_EQ(this_machine_share(3, 1).ranks, 3);
  EXPECT_EQ(this_machine_share(0, 1).ranks, 2);
  unsetenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  EXPECT_EQ(this_machine_share(0, 1).ranks, 1);
  const CoreShare s = this_machine_share(0, 0);
  EXPECT_EQ(s.threads, 1);
  EXPECT_GE(s.cores, 1);
}
