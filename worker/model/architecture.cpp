#include "worker/model/architecture.h"

#include "worker/common/error.h"

namespace clusterctl::model {
namespace {

const Architecture* const kArchitectures[] = {
#define CLUSTERCTL_ARCHITECTURE(name) &name##_architecture(),
#include "worker/model/architectures/list.h"
#undef CLUSTERCTL_ARCHITECTURE
};

}  // namespace

const Architecture* lookup_architecture(std::string_view arch) {
  for (const Architecture* a : kArchitectures)
    if (a->name == arch) return a;
  return nullptr;
}

const Architecture& find_architecture(const std::string& arch, const std::string& file) {
  std::string names;
  for (const Architecture* a : kArchitectures) {
    if (a->name == arch) return *a;
    names += (names.empty() ? "" : ", ") + std::string(a->name);
  }
  throw Error(file + ": architecture '" + arch + "' is not supported (supported: " + names +
              "); use a model of one of these families");
}

}  // namespace clusterctl::model
