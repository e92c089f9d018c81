#include "collectives/session.h"

#include "collectives/error.h"
#include "collectives/local/local_session.h"
#include "collectives/mpi/mpi_communicator.h"

namespace clusterctl::collectives {
namespace {

struct Backend {
  std::string_view name;
  std::unique_ptr<Session> (*open)(int& argc, char**& argv);
};

constexpr Backend kBackends[] = {
    {"mpi", open_mpi_session},
    {"local", [](int&, char**&) { return open_local_session(); }},
};

}  // namespace

std::vector<std::string_view> backend_names() {
  std::vector<std::string_view> names;
  for (const auto& b : kBackends) names.push_back(b.name);
  return names;
}

std::unique_ptr<Session> open_session(std::string_view backend, int& argc, char**& argv) {
  for (const auto& b : kBackends)
    if (b.name == backend) return b.open(argc, argv);
  std::string known;
  for (const auto& b : kBackends) known += (known.empty() ? "" : ", ") + std::string(b.name);
  throw CollectiveError("no collectives backend '" + std::string(backend) + "': use one of " + known);
}

}  // namespace clusterctl::collectives
