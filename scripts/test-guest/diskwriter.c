// Test guest writer: appends numbered 4 KiB records to a block device with O_DIRECT and prints
// "ACK n" on stdout (the serial console) after each write (+ fdatasync, by default) returned. On start it scans the
// disk for the last valid record and continues after it ("RESUME n"). Built static at test time.
//
// Usage: diskwriter [DEVICE [INTERVAL_MS [RUN [SYNC]]]]. RUN (default 0) is stamped into every record this boot
// writes, so a checker tells a record of this boot from one an earlier boot left at the same place. SYNC 0 skips the
// fdatasync: "ACK n" then means only that the O_DIRECT write completed (what protocol C alone must make durable
// against the loss of one host); the default 1 syncs after every write.
//
// Record n (1-based) lives in block n-1, little-endian (x86):
//   u32 magic "CLVR" (0x434c5652), u32 run, u64 n, u64 checksum, then byte i = (n * 31 + i + run * 131) mod 256
//   checksum = fnv1a-64(bytes 24..4095) ^ n ^ (run << 32)
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#define BLOCK 4096
#define MAGIC 0x434c5652u /* "CLVR" */

struct record { uint32_t magic; uint32_t run; uint64_t seq; uint64_t checksum; };

static uint64_t fnv1a(const unsigned char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) { h ^= p[i]; h *= 1099511628211ull; }
    return h;
}

static uint64_t checksum(const unsigned char *b, uint64_t seq, uint32_t run) {
    return fnv1a(b + sizeof(struct record), BLOCK - sizeof(struct record)) ^ seq ^ ((uint64_t)run << 32);
}

// Fills a block for sequence seq (1-based) written by run, checksummed over everything after the header.
static void fill(unsigned char *b, uint64_t seq, uint32_t run) {
    for (size_t i = sizeof(struct record); i < BLOCK; i++) b[i] = (unsigned char)(seq * 31 + i + run * 131u);
    struct record *r = (struct record *)b;
    r->magic = MAGIC; r->run = run; r->seq = seq;
    r->checksum = checksum(b, seq, run);
}

// A whole record for seq, written by any run.
static int valid(const unsigned char *b, uint64_t seq) {
    const struct record *r = (const struct record *)b;
    return r->magic == MAGIC && r->seq == seq && r->checksum == checksum(b, seq, r->run);
}

int main(int argc, char **argv) {
    const char *dev = argc > 1 ? argv[1] : "/dev/vda";
    long interval_ms = argc > 2 ? atol(argv[2]) : 50;
    uint32_t run = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 0;
    int sync = argc > 4 ? atoi(argv[4]) : 1;
    int fd = open(dev, O_RDWR | O_DIRECT);
    if (fd < 0) { perror(dev); return 1; }
    off_t size = lseek(fd, 0, SEEK_END);
    uint64_t capacity = (uint64_t)size / BLOCK;
    unsigned char *b;
    if (posix_memalign((void **)&b, BLOCK, BLOCK) != 0) return 1;
    // Record n lives in block n-1: the last record present is the last valid one in sequence.
    uint64_t last = 0;
    while (last < capacity && pread(fd, b, BLOCK, (off_t)last * BLOCK) == BLOCK && valid(b, last + 1)) last++;
    printf("RESUME %llu\n", (unsigned long long)last);
    fflush(stdout);
    struct timespec pause = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
    for (uint64_t seq = last + 1; seq <= capacity; seq++) {
        fill(b, seq, run);
        if (pwrite(fd, b, BLOCK, (off_t)(seq - 1) * BLOCK) != BLOCK) { perror("pwrite"); return 1; }
        if (sync && fdatasync(fd) != 0) { perror("fdatasync"); return 1; }
        printf("ACK %llu\n", (unsigned long long)seq);
        fflush(stdout);
        if (interval_ms > 0) nanosleep(&pause, NULL);
    }
    printf("FULL %llu\n", (unsigned long long)capacity);
    fflush(stdout);
    for (;;) sleep(3600);
}
