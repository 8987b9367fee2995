// GNU extensions of glibc (and one Linux system call) that Swift's Glibc module does not export (it is imported without _GNU_SOURCE).
// Declared without system headers so this module does not clash with Glibc's; implemented in CSpawn.c.
#ifndef CLEVERVM_CSPAWN_H
#define CLEVERVM_CSPAWN_H

/// posix_spawn_file_actions_addclosefrom_np (glibc 2.34+) on a `posix_spawn_file_actions_t *`: close every
/// descriptor from `from` up in the child.
int cspawn_addclosefrom(void *actions, int from);

/// pipe2(fds, O_CLOEXEC): no window in which another thread's spawn could inherit the pipe.
int cspawn_pipe_cloexec(int fds[2]);

/// POSIX_SPAWN_SETSID: the child starts a new session.
short cspawn_setsid_flag(void);

/// pidfd_open(pid, 0) (Linux 5.3+; glibc has no wrapper before 2.36): a descriptor that becomes readable when
/// the process ends, so a wait with a deadline is one poll(2) instead of a waitpid loop.
int cspawn_pidfd_open(int pid);

#endif
