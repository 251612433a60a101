/* Force-included (-include) into every C/C++ file of llama.cpp by llama-sys when its probe
 * (probe.cpp) finds that the compiler's _tile_loadconfig loses the tile configuration.
 *
 * GCC 12's amxtileintrin.h declares the asm operand of ldtilecfg/sttilecfg as
 * `*((const void **)__config)`: 8 bytes instead of the 64-byte configuration, so the optimiser
 * drops the stores to rows/colsb and the CPU loads garbage (#GP, delivered as SIGSEGV).
 * These definitions emit the same instructions with the whole block as the operand. They take
 * effect only where AMX is targeted and the compiler is GCC; elsewhere this file is empty. */
#if defined(__AMX_TILE__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

typedef struct {
    unsigned char bytes[64];
} llama_sys_tile_config_bytes;

static inline __attribute__((__always_inline__)) void llama_sys_tile_loadconfig(const void *config) {
    __asm__ volatile("ldtilecfg %0" ::"m"(*(const llama_sys_tile_config_bytes *)config));
}

static inline __attribute__((__always_inline__)) void llama_sys_tile_storeconfig(void *config) {
    __asm__ volatile("sttilecfg %0" : "=m"(*(llama_sys_tile_config_bytes *)config));
}

#define _tile_loadconfig llama_sys_tile_loadconfig
#define _tile_storeconfig llama_sys_tile_storeconfig
#endif
