// AVX-512 without VNNI (Skylake-X class): the integer dot products here would need the slower
// maddubs + madd pair, which the AVX2 kernels already do on 256 bits at the same rate on such
// cores, so this level keeps the AVX2 kernels. The VNNI level (avx512_vnni_kernels.cpp) is
// where AVX-512 pays.
#include "worker/kernels/kernel_table.h"

namespace clusterctl::kernels::detail {

void fill_avx512(KernelTable&) {}

}  // namespace clusterctl::kernels::detail
