/* Dirties guest memory at a steady rate, for live-migration benchmarks: dirtier MIB_PER_SECOND BUFFER_MIB.
 * Every 10 ms it writes one byte into each of the next (rate / 100) MiB worth of 4 KiB pages of its buffer,
 * cycling through the buffer, so the migration has to resend that many pages per second. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: dirtier MIB_PER_SECOND BUFFER_MIB\n");
        return 2;
    }
    long rate = atol(argv[1]), size_mib = atol(argv[2]);
    if (rate <= 0 || size_mib <= 0) return 2;
    size_t size = (size_t)size_mib << 20, page = 4096, pages = size / page;
    volatile uint8_t *buffer = malloc(size);
    if (!buffer) {
        perror("dirtier: malloc");
        return 1;
    }
    memset((void *)buffer, 1, size);
    size_t per_tick = ((size_t)rate << 20) / 100 / page, next = 0;
    printf("DIRTIER %ld MiB/s over %ld MiB\n", rate, size_mib);
    fflush(stdout);
    struct timespec tick;
    clock_gettime(CLOCK_MONOTONIC, &tick);
    for (uint8_t round = 0;; round++) {
        for (size_t i = 0; i < per_tick; i++) {
            buffer[next * page] = round;
            next = (next + 1) % pages;
        }
        tick.tv_nsec += 10 * 1000 * 1000;
        if (tick.tv_nsec >= 1000000000L) {
            tick.tv_sec++;
            tick.tv_nsec -= 1000000000L;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &tick, NULL);
    }
}
