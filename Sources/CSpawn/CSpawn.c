#define _GNU_SOURCE
#include <fcntl.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "CSpawn.h"

int cspawn_addclosefrom(void *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, from);
}

int cspawn_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

short cspawn_setsid_flag(void) { return POSIX_SPAWN_SETSID; }

int cspawn_pidfd_open(int pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
