#ifndef SLUICE_PROCESS_LAUNCHER_H
#define SLUICE_PROCESS_LAUNCHER_H

#include <sys/types.h>

/// Starts `path` with `argv` (NULL-terminated) and the parent's environment, its stdout and
/// stderr appended to `log_path` (or /dev/null when NULL), stdin from /dev/null, no other file
/// descriptors, default signal dispositions and an empty signal mask, in its own process
/// group. The child gets SIGKILL when this process dies, however it dies (PR_SET_PDEATHSIG).
/// Returns 0 and the child's pid, or an errno value (a failed exec is reported as its errno).
int sluice_launch(const char *path, char *const argv[], const char *log_path, pid_t *pid);

#endif
