#include "worker/kernels/kernel_table.h"
namespace clusterctl::kernels::detail {
void fill_avx512_vnni(KernelTable&) {}
}
