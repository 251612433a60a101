// Configure-time probe used by llama-sys's build script and scripts/build-reference-tools.sh:
// fills a tile configuration the way ggml's AMX kernels do (ggml-cpu/amx/mmq.cpp,
// ggml_tile_config_init), loads it with the compiler's _tile_loadconfig, reads it back with an
// sttilecfg whose operand is the whole 64-byte block, and exits 0 only if what the CPU holds is
// what was written. GCC 12 declares the intrinsic's operand as 8 bytes, drops the stores to
// rows/colsb, and this exits 1 (or dies with SIGSEGV, as ggml does).
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct tile_config {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};
struct tile_config_bytes {
    unsigned char bytes[64];
};

__attribute__((noinline)) static void load(void) {
    alignas(64) tile_config tc = {};
    tc.palette_id = 1;
    for (int i = 0; i < 8; i++) {
        tc.rows[i] = i < 2 ? 8 : 16;
        tc.colsb[i] = (i == 2 || i == 3) ? 32 : 64;
    }
    _tile_loadconfig(&tc);
}

int main(void) {
    // ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, as ggml requests it.
    if (syscall(SYS_arch_prctl, 0x1023, 18) != 0) {
        puts("no AMX permission from the kernel");
        return 3;
    }
    load();
    alignas(64) tile_config_bytes out;
    memset(&out, 0xAA, sizeof out);
    __asm__ volatile("sttilecfg %0" : "=m"(out));
    tile_config got;
    memcpy(&got, &out, sizeof got);
    printf("palette %u rows[0] %u colsb[0] %u colsb[2] %u rows[7] %u\n", got.palette_id, got.rows[0],
           got.colsb[0], got.colsb[2], got.rows[7]);
    int ok = got.palette_id == 1 && got.rows[0] == 8 && got.colsb[0] == 64 && got.colsb[2] == 32 &&
             got.rows[7] == 16 && got.colsb[7] == 64;
    return ok ? 0 : 1;
}
