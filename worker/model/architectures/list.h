// The registry of architectures: one line each, named by general.architecture; the line's name
// is the stem of the function its file (architectures/<name>.cpp) defines, <name>_architecture().
// Included with CLUSTERCTL_ARCHITECTURE defined by the includer (architecture.cpp).
CLUSTERCTL_ARCHITECTURE(llama)
CLUSTERCTL_ARCHITECTURE(qwen2)
CLUSTERCTL_ARCHITECTURE(qwen3)
CLUSTERCTL_ARCHITECTURE(qwen3moe)
CLUSTERCTL_ARCHITECTURE(ernie4_5)
CLUSTERCTL_ARCHITECTURE(deepseek2)
